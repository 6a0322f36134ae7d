//! The domain of Ordo: one module per aggregate, each holding its commands, events,
//! errors, state and business rules. Pure: no SQL, no NATS, no HTTP.
//!
//! # Layout
//!
//! - [`common`]: value types parsed at the edge (SKUs, quantities, money, ids, texts) and
//!   [`common::ErrorKind`], the class every aggregate error maps to.
//! - [`customer`]: a customer's profile and postal addresses, all personal data.
//! - [`inventory`]: stock of one SKU or one seat area; reserve, release, commit, return.
//! - [`product`]: catalog products (SPUs) with their SKUs, prices, listing and limits.
//! - [`category`]: the catalog's category tree.
//! - [`cart`]: shopping carts of customers and guests, their merge, and their pricing seam.
//! - [`order`]: orders of goods, from placement to payment, cancellation or refund.
//! - [`payment`]: payments as reported by the provider, including partial refunds.
//! - [`shipment`]: parcels of paid orders: created, picked, shipped with a carrier and a
//!   tracking number, then tracked in transit to delivery (or an exception).
//! - [`aftersale`]: after-sales requests of delivered orders (refund only, return and
//!   refund, exchange), from request and approval to return, refund or replacement.
//! - [`review`]: reviews of delivered order lines: once per line, one follow-up,
//!   moderation by sensitive words, reports that hide a review until an admin decides.
//! - [`shipping`]: the shipping fee rules by province and weight, with free shipping over
//!   a threshold, and the one fee calculation every checkout uses.
//! - [`show`]: shows, their sessions and seat areas.
//! - [`booking`]: bookings of seats, from request to tickets and check-in.
//! - [`promotion`]: price rules applied by themselves within a time window.
//! - [`coupon`]: batches of coupons with their quota, and each claimed coupon's life
//!   (claimed, locked by an order, redeemed, released).
//! - [`pricing`]: the pure pricing engine stacking promotions and coupons on a cart.
//! - [`provider`]: service providers of the marketplace: profile, skills, areas,
//!   certifications and verification.
//! - [`service_order`]: service orders of the marketplace, from publication and review to
//!   first-come acceptance, escrowed payment, work, confirmation, payout and review.
//!
//! Every aggregate uses `()` as its services, names its events after their variants
//! (version "1"), and treats the repeat of a transition that already happened as a
//! no-op, so sagas can retry any step. Every error has a stable `code()` and a `kind()`.
#![forbid(unsafe_code)]

pub mod aftersale;
pub mod booking;
pub mod cart;
pub mod category;
pub mod common;
pub mod coupon;
pub mod customer;
pub mod inventory;
pub mod order;
pub mod payment;
pub mod pricing;
pub mod product;
pub mod promotion;
pub mod provider;
pub mod review;
pub mod service_order;
pub mod shipment;
pub mod shipping;
pub mod show;
