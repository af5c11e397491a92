//! # SecureChat relay server
//!
//! The service people self-host: it holds accounts (argon2id passwords, TOTP and e-mail
//! two-factor authentication, recovery codes), public ms_id profiles and friendships, and —
//! from the next milestone — stores and forwards end-to-end encrypted envelopes. It never sees
//! plaintext.
//!
//! Layers: [`api`] (routes, DTOs, extractors, errors) → [`services`] (logic) → [`db`]
//! (diesel over SQLite or PostgreSQL). [`run`] starts the server from a [`Config`].

pub mod api;
pub mod backup;
pub mod clock;
pub mod config;
pub mod db;
pub mod mail;
pub mod metrics;
pub mod server;
pub mod services;
pub mod state;

pub use config::Config;
pub use server::{StartupError, run};
