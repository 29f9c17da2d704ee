//! Parsers for every log layout, on bytes, borrowing from their input.
//!
//! Input: one line or one multi-line entry. Output: borrowed field views (`AccessLine`,
//! `ErrorLine`, `FpmLine`). Invariants: no allocation per line; no panic on any bytes;
//! `None` means malformed.

pub mod access;
pub mod access_json;
pub mod formats;
pub mod fpm;
pub mod nginx_conf;
pub mod nginx_error;
pub mod php_error;
pub mod record;
