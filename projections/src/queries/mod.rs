//! The read side's queries: every read a client can make of the Postgres read models, one
//! module per read model, each function one question with a typed answer. The gateway's
//! handlers call one of them and map the answer to HTTP; no SQL is written anywhere else
//! for reads.
//!
//! - [`page`]: page sizes and the opaque cursors of every paginated list (search's too).
//!
//! A request the read side refuses (a bad cursor, a page size out of range) is an
//! [`InvalidParameter`] naming the parameter.

pub mod page;

/// A query parameter the read side cannot answer: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct InvalidParameter {
    /// The parameter, as the client spelled it (`cursor`, `limit`, `min_price`...).
    pub field: &'static str,
    /// What is wrong with it, for the client.
    pub detail: String,
}

impl InvalidParameter {
    /// `field` is invalid because of `detail`.
    pub fn new(field: &'static str, detail: impl Into<String>) -> Self {
        Self {
            field,
            detail: detail.into(),
        }
    }
}
