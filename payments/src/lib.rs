//! Ordo's side of the payment provider and the carriers: the HTTP client that reaches the provider (the
//! adapter behind the sagas' `PaymentProvider` port), the signatures of the provider's
//! callbacks, and the sandbox provider that Ordo can serve itself for demos and tests.
//!
//! # Layout
//! - [`client`]: [`HttpProvider`], the provider's REST API (charges, voids, refunds).
//! - [`signature`]: signing and verifying callbacks (HMAC-SHA256 over a timestamp and the
//!   body, refused after five minutes).
//! - [`token_seal`]: [`TokenSeal`], the customer's payment token sealed for events and
//!   opened only to call the provider.
//! - [`carrier`]: [`Carriers`], the carriers behind the fulfilment process's port, and
//!   [`SandboxCarrier`], which posts signed tracking updates of the parcels it follows.
//! - [`sandbox`]: [`Sandbox`], a stand-in provider as an axum router, nested by the gateway
//!   under `/sandbox/provider` when asked for; it charges only payments Ordo recorded.
#![forbid(unsafe_code)]

pub mod carrier;
pub mod client;
pub mod sandbox;
pub mod signature;
pub mod token_seal;

pub use carrier::{Carriers, SandboxCarrier, SandboxCarrierSettings};
pub use client::HttpProvider;
pub use sandbox::{PaymentRecords, RecordedPayment, Sandbox, SandboxSettings};
pub use token_seal::{SealError, TokenSeal};
