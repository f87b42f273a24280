//! moocard image pipeline and job runner.
#![forbid(unsafe_code)]

pub mod pipeline;
pub mod runner;
