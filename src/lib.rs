//! moocard server library.
