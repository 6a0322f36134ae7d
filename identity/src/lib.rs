//! Who is calling Ordo and what they may do: accounts, passwords, sessions, roles, and the
//! signed credentials of tickets. Nothing here speaks HTTP; the gateway adapts it.
//!
//! # Layout
//!
//! - [`domain`]: the parsed values of an account ([`Email`], [`Password`], [`FullName`],
//!   [`Role`]).
//! - [`caller`]: [`Caller`], whoever a checked access token belongs to.
//! - [`tokens`]: [`JwtKeys`] and the [`Claims`] of access and refresh tokens, with their
//!   lifetimes in [`IdentityConfig`].
//! - `passwords`: Argon2id hashing off the async runtime, a bounded number at once
//!   ([`HasherBusy`] beyond the bound).
//! - [`throttle`]: [`throttle::LoginThrottle`], the per-email back-off after failed logins.
//! - [`service`]: [`IdentityService`], which owns the `users`, `refresh_tokens` and
//!   `revoked_access_tokens` tables.
//! - [`personal_data`]: [`PersonalDataVault`], the per-user keys personal data in events
//!   is sealed with (crypto-shredding); [`IdentityService::erase_user`] deletes one.
//! - [`tickets`]: [`tickets::TicketSigner`], the HMAC-signed payloads of tickets' QR codes
//!   and their images.
//!
//! Access tokens are short-lived and revocable by id; refresh tokens are recorded, spent on
//! use and grouped in families, so that a stolen one works at most once and its reuse ends
//! the session it came from.
#![forbid(unsafe_code)]

pub mod caller;
pub mod domain;
mod passwords;
pub mod personal_data;
pub mod revocations;
pub mod service;
pub mod throttle;
pub mod tickets;
pub mod tokens;

pub use caller::Caller;
pub use domain::{
    Email, EmailError, FullName, FullNameError, Password, PasswordError, Role, SignupRole,
    SignupRoleError,
};
pub use passwords::HasherBusy;
pub use personal_data::PersonalDataVault;
pub use service::{AccountName, IdentityError, IdentityService, Session};
pub use throttle::LoginLocked;
pub use tokens::{Claims, IdentityConfig, JwtKeys, TokenKind, WeakSecret, ISSUER};
