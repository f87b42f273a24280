//! moocard image pipeline and job runner.
