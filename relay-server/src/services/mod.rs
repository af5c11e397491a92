//! Business logic, one module per capability. No HTTP types here; errors are `ApiError`
//! codes so handlers stay thin.

pub mod accounts;
pub mod at_rest;
pub mod attachments;
pub mod code_guard;
pub mod contacts;
pub mod delivery;
pub mod devices;
pub mod events;
pub mod friends;
pub mod hub;
pub mod notify;
pub mod passwords;
pub mod profiles;
pub mod ratelimit;
pub mod rooms;
pub mod tokens;
pub mod twofa;
pub mod validate;
pub mod writer;
