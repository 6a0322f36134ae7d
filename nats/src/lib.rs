//! JetStream for Ordo.
