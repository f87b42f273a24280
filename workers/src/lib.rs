//! moocard image pipeline and job runner.
#![forbid(unsafe_code)]

pub mod handler;
pub mod pipeline;
pub mod pool;
pub mod rederive;
pub mod reprocess;
pub mod runner;
