//! Ordo's reactors: side effects driven by events, apart from the read models.
//!
//! # Layout
//! - [`notifications`]: the consumers that turn order, payment and booking events into
//!   inbox entries and their email copies.
//! - [`marketplace`]: the consumer that tells each party of a service order's steps
//!   (matching providers, the customer, the accepting provider).
//! - [`aftersales`]: the consumer that tells a customer of each decision and step of their
//!   after-sales request (approval, rejection, goods received, refund, replacement).
//! - [`reviews`]: the consumer that tells a review's author of its moderation.
//! - [`mail`]: the [`mail::MailSender`] boundary and the spool directory sender.
//! - [`inbox`]: what users read of their inbox (pages, marking read, the entries after a
//!   cursor) and the [`inbox::InboxHub`] that feeds the live SSE streams.
#![forbid(unsafe_code)]

pub mod aftersales;
pub mod inbox;
pub mod mail;
pub mod marketplace;
pub mod notifications;
pub mod reviews;
