//! The HTTP gateway and composition root of Ordo.
#![forbid(unsafe_code)]

pub mod identity;
pub mod problem;
