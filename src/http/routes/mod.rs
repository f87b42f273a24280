//! One file per resource.

pub mod admin;
pub mod avatar;
pub mod images;
pub mod limits;
pub mod ops;
pub mod profiles;
pub mod public;
pub mod signin;
pub mod uploads;
