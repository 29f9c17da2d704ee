//! The one integration-test crate (each file in tests/ would be its own binary linking
//! polars; modules keep it to one).

mod common;
mod real_logs;

mod determinism;
mod peer_vectors;
