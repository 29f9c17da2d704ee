//! The one integration-test crate (each file in tests/ would be its own binary linking
//! polars; modules keep it to one).

mod common;
mod compare;
mod determinism;
mod peer_vectors;
mod real_logs;
mod reports;
