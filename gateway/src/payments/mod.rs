//! Talking to the payment provider: callback signatures, the HTTP client Ordo uses to reach
//! the provider, and the sandbox provider that Ordo serves itself for development and tests.

pub mod client;
pub mod sandbox;
pub mod signature;

pub use client::HttpProvider;
