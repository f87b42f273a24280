//! API tests through the real router over a real database (SQLite, or MySQL when
//! `MOOCARD_TEST_MYSQL_URL` is set).

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod auth;
mod encryption;
mod identity;
mod oidc;
mod hardening;
mod operators;
mod ops;
mod profiles;
mod provider;
mod server;
mod uploads;
