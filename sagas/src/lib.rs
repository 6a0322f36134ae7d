//! Process managers: sagas that drive a business transaction across aggregates by reacting
//! to events and issuing commands, with compensation when a step is refused.
//!
//! # Layout
//! - [`port`]: [`CheckoutPort`] and [`BookingPort`], the commands each saga may issue, with
//!   [`PaymentPort`] the payment commands both share, and [`StorePort`], their
//!   implementation on the command buses.
//! - [`deadlines`]: the periodic deadline scan and step metadata both sagas use.
//! - [`handling`]: the claiming transaction and failure mapping of both sagas' handlers.
//! - [`crash_points`]: the fault injection of the crash tests (`ORDO_CRASH_AFTER_STEP`).
//! - [`repository`]: saga rows and their step log in Postgres.
//! - [`provider`]: [`PaymentProvider`], the payment provider boundary.
//! - [`checkout`]: the checkout of goods: reserve, confirm, pay, commit; or release,
//!   reject, cancel, expire, void and refund.
//! - [`fulfilment`]: the fulfilment of a paid order: create its shipment, mark it shipped
//!   and delivered as the admin and the carrier report, complete it after the auto-confirm
//!   period; with [`fulfilment::Carrier`], the carrier boundary.
//! - [`aftersale`]: after-sales requests: refund the original payment, put returned units
//!   back to stock once, ship an exchange's replacement through fulfilment, close.
//! - [`booking`]: the booking of seats: price from the Show, request, reserve, hold until a
//!   deadline, attach the payment and charge, issue tickets, commit, complete; or reject,
//!   cancel, expire, refund and return the seats.
//! - [`service_order`]: the escrow of a marketplace service order: attach and charge the
//!   payment, hold it, confirm by itself after a deadline, release the payout, or refund.
//! - [`reconciliation`]: a day's payments against the provider's statement: missed
//!   captures applied, every other discrepancy listed.
//! - [`seat_stock`]: the seat stock policy, opening the seats of every session a show adds.
//! - [`show_state`]: the show of each session, the processes' own state kept from the
//!   shows' events.
//!
//! Every command a saga issues carries a deterministic id and targets an idempotent
//! aggregate operation, so a step repeated after a crash or a redelivery is a no-op.
#![forbid(unsafe_code)]

pub mod aftersale;
pub mod booking;
pub mod checkout;
pub mod crash_points;
pub mod deadlines;
pub mod fulfilment;
pub mod handling;
pub mod port;
pub mod provider;
pub mod reconciliation;
pub mod repository;
pub mod seat_stock;
pub mod service_order;
pub mod show_state;

pub use booking::BookingSaga;
pub use checkout::CheckoutSaga;
pub use port::{BookingPort, CheckoutPort, PaymentPort, StepError, StorePort};
pub use provider::{ChargeRequest, MovementKind, PaymentProvider, ProviderError, StatementEntry};
pub use seat_stock::{SeatStockPolicy, SeatStockPort};
pub use service_order::{ServiceOrderPort, ServiceOrderSaga};
