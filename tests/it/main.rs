//! The one integration-test crate (each file in tests/ would be its own binary linking
//! polars; modules keep it to one).

mod catalog;
mod chains;
mod common;
mod compare;
// The corpus generator of the bench, for the production-shaped week.
#[path = "../../benches/corpus.rs"]
mod corpus;
mod determinism;
mod hostile;
mod hostile_more;
mod peer_vectors;
mod props;
mod quiet;
mod real_logs;
mod reports;
mod spill;
mod week;
mod wrapped;
