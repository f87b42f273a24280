//! One file per resource.

pub mod limits;
pub mod ops;
pub mod profiles;
pub mod uploads;
