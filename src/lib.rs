//! moocard server library.
#![forbid(unsafe_code)]

pub mod error_code;
pub use error_code::ErrorCode;
pub mod auth;
pub mod config;
pub mod crop;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod keys;
pub mod limits;
pub mod store;
