//! moocard: a profile and avatar server for identity sign-in.
//!
//! This crate is the server library (HTTP API, encrypted store, auth, job contract). The
//! image codecs and the job handlers live in `workers/` (`moocard-worker`), which depends
//! on this crate, never the reverse; its `moocard` binary runs both.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod crop;
pub mod crypto;
pub mod db;
pub mod defaults;
pub mod domain;
pub mod error_code;
pub mod exif;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod limits;
pub mod maintenance;
pub mod masters;
pub mod probe;
pub mod profiles;
pub mod store;
pub mod telemetry;
pub mod uploads;

pub use app::{App, Migrations};
pub use error_code::ErrorCode;
pub use http::server::serve;
