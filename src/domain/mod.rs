//! Domain types: emails, derived identifiers, record keys and avatar state.

pub mod avatar;
pub mod derivation;
pub mod email;
pub mod ids;
pub mod record;
pub mod text;
