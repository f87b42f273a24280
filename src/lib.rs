//! moocard server library.
#![forbid(unsafe_code)]

pub mod error_code;
pub use error_code::ErrorCode;
pub mod crop;
pub mod db;
pub mod jobs;
pub mod limits;
