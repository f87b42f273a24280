//! API tests through the real router over a real database (SQLite, or MySQL when
//! `MOOCARD_TEST_MYSQL_URL` is set).

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod auth;
mod encryption;
mod hardening;
mod identity;
mod oidc;
mod operators;
mod ops;
mod profiles;
mod provider;
mod server;
mod uploads;
