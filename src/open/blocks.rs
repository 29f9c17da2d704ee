//! Record-aligned blocks of a decoded stream, and what went wrong while decoding: shared by
//! the gzip reader (`gzip`) and the zstd, xz and bzip2 readers (`stream`).
//!
//! Input: decoded bytes as a decoder produces them, the record-start rule of the file. Output:
//! calls to a sink with blocks that end on record boundaries, and a `Report`. Invariants:
//! memory is one block buffer (grown only to hold one over-long record, at most `MAX_BLOCK`);
//! nothing decoded is withheld (what is left is handed over by `flush`).

use super::MAX_BLOCK;
use crate::chunk::{last_record_start, StartRule};

#[derive(Debug, Clone, PartialEq)]
pub enum ProblemKind {
    /// The stream ends inside a member or frame (rotation or copy in progress, disk full).
    Truncated,
    /// A member or frame could not be decoded; the bytes up to the next header were skipped.
    Corrupt,
    /// Bytes after the last member that are not compressed data.
    TrailingData,
    /// A record longer than `MAX_BLOCK` was split.
    Oversized,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// Offset in the compressed file.
    pub offset: u64,
    pub message: String,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub members: u32,
    pub decoded: u64,
    pub problems: Vec<Problem>,
}

pub(super) struct Blocks<'s, 'r, F: FnMut(&[u8])> {
    pub(super) buf: Vec<u8>,
    pub(super) filled: usize,
    pub(super) multiline: bool,
    pub(super) is_start: StartRule<'r>,
    pub(super) sink: &'s mut F,
    pub(super) oversized_at: Option<u64>,
    pub(super) decoded: u64,
}

impl<F: FnMut(&[u8])> Blocks<'_, '_, F> {
    /// Make room for more output: hand over everything up to the last record boundary, or
    /// grow the buffer if one record fills it.
    pub(super) fn make_room(&mut self) {
        if self.filled < self.buf.len() {
            return;
        }
        match last_record_start(&self.buf[..self.filled], self.multiline, self.is_start) {
            Some(p) if p > 0 => {
                (self.sink)(&self.buf[..p]);
                self.buf.copy_within(p..self.filled, 0);
                self.filled -= p;
            }
            _ if self.buf.len() < MAX_BLOCK => {
                let n = self.buf.len() * 2;
                self.buf.resize(n.min(MAX_BLOCK), 0);
            }
            _ => {
                // One record longer than MAX_BLOCK: cut at its last newline (or anywhere).
                let p = memchr::memrchr(b'\n', &self.buf[..self.filled]).map(|i| i + 1).unwrap_or(self.filled);
                self.oversized_at.get_or_insert(self.decoded);
                (self.sink)(&self.buf[..p]);
                self.buf.copy_within(p..self.filled, 0);
                self.filled -= p;
            }
        }
    }

    pub(super) fn flush(&mut self) {
        if self.filled > 0 {
            (self.sink)(&self.buf[..self.filled]);
            self.filled = 0;
        }
    }
}

impl<'s, 'r, F: FnMut(&[u8])> Blocks<'s, 'r, F> {
    pub(super) fn new(block: usize, multiline: bool, is_start: StartRule<'r>, sink: &'s mut F) -> Self {
        Blocks { buf: vec![0; block.max(4096)], filled: 0, multiline, is_start, sink, oversized_at: None, decoded: 0 }
    }

    /// The problem of an over-long record, if one was split.
    pub(super) fn oversized(&self) -> Option<Problem> {
        self.oversized_at.map(|at| Problem {
            kind: ProblemKind::Oversized,
            offset: at,
            message: format!("a record longer than {} MiB was split", MAX_BLOCK >> 20),
        })
    }
}
