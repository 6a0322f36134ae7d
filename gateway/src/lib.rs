//! The HTTP gateway and composition root of Ordo.
#![forbid(unsafe_code)]

pub mod problem;
