//! Reading the quiet rows back (`quiet`): runs of the mapped temporary file, merged by
//! (time, file rank, line) or walked run by run for their heads.
//!
//! Input: the mapped file and its runs (`quiet::Sink::finish`). Output: `QuietRows` and its
//! readers; the error-log row codec's decoding side (`quiet::Sink::push` is the encoding).
//! Invariants: readers borrow from the map (an error row is an `ErrorRef`); every kind's row
//! begins with its length, time and line (`decode_key`), so one merge serves both kinds. A
//! leaf of `quiet` and `quiet_fpm` (it imports neither).

use crate::model::event::{ErrorRef, OriginRef};
use crate::model::span::Profile;
use crate::model::{Cause, CauseClass, ErrorEvent, Level, Phase, Ts};
use crate::model::{Envelope, Stream};
use std::collections::BinaryHeap;
use std::sync::Arc;

/// The rows a buffer or run holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    Error,
    Fpm,
}

/// Absent optional string.
pub(super) const NONE: u32 = u32::MAX;

/// One run of the temporary file, with the line number its chunk starts after.
#[derive(Clone, Copy, Debug)]
pub(super) struct Run {
    pub(super) kind: Kind,
    pub(super) off: usize,
    pub(super) len: usize,
    pub(super) src: u32,
    pub(super) base: u64,
}

/// The quiet rows of a scan, read back from the (unlinked) temporary file.
#[derive(Clone)]
pub struct QuietRows {
    pub(super) map: Arc<crate::open::Haystack>,
    pub(super) runs: Vec<Run>,
    pub(super) sigs: Vec<&'static str>,
    /// How many error-log rows.
    pub rows: u64,
    /// How many FPM rows.
    pub fpm_rows: u64,
    /// The stamps of both kinds, hour by hour (`model::span`).
    pub profile: Profile,
    /// The least severe level among the error-log rows (`correlate::evidence::ErrorCoverage`).
    pub max_level: Option<Level>,
}

/// The fields of a row readable without decoding it: time, line, cause, where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Head {
    pub ts: Ts,
    pub src: u32,
    pub line: u64,
    pub cause: Cause,
    /// (run, offset in the run) for `QuietRows::get`.
    pub at: (u32, u32),
}

pub(super) fn rd<const N: usize>(b: &[u8], p: usize) -> Option<[u8; N]> {
    b.get(p..p + N)?.try_into().ok()
}

/// Time and relative line of the row at `pos` (any kind), and where the next starts.
fn decode_key(b: &[u8], pos: usize) -> Option<((Ts, u64), usize)> {
    let len = u32::from_le_bytes(rd(b, pos)?) as usize;
    let ts = i64::from_le_bytes(rd(b, pos + 4)?);
    let line = u64::from_le_bytes(rd(b, pos + 12)?);
    (len > 0).then_some(((ts, line), pos + len))
}

/// Time, relative line and cause of the error row at `pos`, and where the next starts.
fn decode_head(b: &[u8], pos: usize) -> Option<((Ts, u64, Cause), usize)> {
    let len = u32::from_le_bytes(rd(b, pos)?) as usize;
    let ts = i64::from_le_bytes(rd(b, pos + 4)?);
    let line = u64::from_le_bytes(rd(b, pos + 12)?);
    let cause = *Cause::ALL.get(*b.get(pos + 20)? as usize)?;
    (len > 0).then_some(((ts, line, cause), pos + len))
}

/// The row at `pos` (line relative to its chunk), borrowed, and where the next starts.
pub(super) fn decode<'b>(b: &'b [u8], pos: usize, sigs: &[&'static str], src: u32) -> Option<(ErrorRef<'b>, usize)> {
    let len = u32::from_le_bytes(rd(b, pos)?) as usize;
    let r = b.get(pos..pos + len)?;
    let u32_at = |p: usize| rd(r, p).map(u32::from_le_bytes);
    // Strings were written from `String`s: they are UTF-8 (checked all the same).
    let string = |p: &mut usize| -> Option<Option<&'b str>> {
        let n = u32::from_le_bytes(rd(r, *p)?);
        *p += 4;
        if n == NONE {
            return Some(None);
        }
        let s = r.get(*p..*p + n as usize)?;
        *p += n as usize;
        std::str::from_utf8(s).ok().map(Some)
    };
    let mut p = 47;
    let (client, server, request) = (string(&mut p)?, string(&mut p)?, string(&mut p)?);
    let (upstream, host, referrer) = (string(&mut p)?, string(&mut p)?, string(&mut p)?);
    let message = string(&mut p)?.unwrap_or_default();
    let flags = *r.get(32)?;
    let origin = if flags & 8 != 0 {
        let envelope = *Envelope::ALL.get(*r.get(p)? as usize)?;
        p += 1;
        let name = string(&mut p)?;
        let stream = Stream::ALL.get(*r.get(p)? as usize).copied();
        p += 1;
        let host = string(&mut p)?;
        Some(OriginRef { envelope, name, stream, host })
    } else {
        None
    };
    let sig = u16::from_le_bytes(rd(r, 45)?);
    let e = ErrorRef {
        ts: i64::from_le_bytes(rd(r, 4)?),
        source: src,
        line: u64::from_le_bytes(rd(r, 12)?),
        lines: u32_at(24)?,
        level: *Level::ALL.get(*r.get(22)? as usize)?,
        pid: u32_at(28)?,
        conn: (flags & 1 != 0).then(|| rd(r, 33).map(u64::from_le_bytes)).flatten(),
        signature: sigs.get(sig as usize).copied().unwrap_or("other"),
        errno: (flags & 2 != 0).then(|| rd(r, 41).map(i32::from_le_bytes)).flatten(),
        phase: *Phase::ALL.get(*r.get(23)? as usize)?,
        class: *CauseClass::ALL.get(*r.get(21)? as usize)?,
        cause: *Cause::ALL.get(*r.get(20)? as usize)?,
        failure: flags & 4 != 0,
        client,
        server,
        request,
        upstream,
        host,
        referrer,
        message,
        origin,
    };
    Some((e, pos + len))
}

impl QuietRows {
    pub(super) fn bytes(&self, r: &Run) -> &[u8] {
        self.map.mapped().and_then(|m| m.get(r.off..r.off + r.len)).unwrap_or(&[])
    }

    /// The runs of one kind, with their places.
    pub(super) fn runs_of(&self, kind: Kind) -> impl Iterator<Item = (usize, &Run)> + '_ {
        self.runs.iter().enumerate().filter(move |(_, r)| r.kind == kind)
    }

    /// Every row's stamp, both kinds (not in time order).
    pub fn stamps(&self) -> impl Iterator<Item = Ts> + '_ {
        self.runs.iter().flat_map(move |r| {
            let b = self.bytes(r);
            let mut pos = 0;
            std::iter::from_fn(move || {
                let ((ts, _), next) = decode_key(b, pos)?;
                pos = next;
                Some(ts)
            })
        })
    }

    /// Every error-log row's head, run by run (not in time order).
    pub fn heads(&self) -> impl Iterator<Item = Head> + '_ {
        self.runs_of(Kind::Error).flat_map(move |(k, r)| {
            let b = self.bytes(r);
            let mut pos = 0;
            std::iter::from_fn(move || {
                let ((ts, line, cause), next) = decode_head(b, pos)?;
                let at = (k as u32, pos as u32);
                pos = next;
                Some(Head { ts, src: r.src, line: line + r.base, cause, at })
            })
        })
    }

    /// The error-log row a head names.
    pub fn get(&self, at: (u32, u32)) -> Option<ErrorRef<'_>> {
        let r = self.runs.get(at.0 as usize)?;
        let (mut e, _) = decode(self.bytes(r), at.1 as usize, &self.sigs, r.src)?;
        e.line += r.base;
        Some(e)
    }

    /// Every error-log row in (time, `rank[source]`, line, source) order: a k-way merge of
    /// the sorted runs.
    pub fn merged<'q>(&'q self, rank: &'q [u32]) -> Merged<'q> {
        Merged { order: Order::new(self, Kind::Error, rank) }
    }

    /// Per source, its own place (`all`, `fpm_all`: source order).
    pub(super) fn source_rank(&self) -> Vec<u32> {
        (0..self.runs.iter().map(|r| r.src + 1).max().unwrap_or(0)).collect()
    }

    /// Every error-log row in (time, source, line) order, owned (tests and fuzzing compare
    /// reads).
    pub fn all(&self) -> Vec<ErrorEvent> {
        let rank = self.source_rank();
        self.merged(&rank).map(|e| e.to_event()).collect()
    }
}

/// A run's next row in the merge: (time, file rank, line, source, run).
type HeapKey = (Ts, u32, u64, u32, usize);

/// The k-way merge of one kind's sorted runs by (time, file rank, line, source): yields where
/// each row is, in order. Sources of the same file name (a merge's runs from several
/// machines) share a rank, so their tied rows come in source order, which is the runs' order.
pub(super) struct Order<'q> {
    pub(super) q: &'q QuietRows,
    rank: &'q [u32],
    pos: Vec<usize>,
    /// Smallest next row of each run.
    heap: BinaryHeap<std::cmp::Reverse<HeapKey>>,
}

impl<'q> Order<'q> {
    pub(super) fn new(q: &'q QuietRows, kind: Kind, rank: &'q [u32]) -> Order<'q> {
        let mut o = Order { q, rank, pos: vec![0; q.runs.len()], heap: BinaryHeap::new() };
        for k in q.runs_of(kind).map(|(k, _)| k).collect::<Vec<_>>() {
            o.push(k);
        }
        o
    }

    fn push(&mut self, k: usize) {
        let r = &self.q.runs[k];
        if let Some(((ts, line), _)) = decode_key(self.q.bytes(r), self.pos[k]) {
            let rank = self.rank.get(r.src as usize).copied().unwrap_or(u32::MAX);
            self.heap.push(std::cmp::Reverse((ts, rank, line + r.base, r.src, k)));
        }
    }

    /// The next row's run and its offset in the run.
    pub(super) fn next_at(&mut self) -> Option<(&'q Run, usize)> {
        let std::cmp::Reverse((.., k)) = self.heap.pop()?;
        let r = &self.q.runs[k];
        let at = self.pos[k];
        let (_, next) = decode_key(self.q.bytes(r), at)?;
        self.pos[k] = next;
        self.push(k);
        Some((r, at))
    }
}

/// Rows of `QuietRows::merged`, in order.
pub struct Merged<'q> {
    order: Order<'q>,
}

impl<'q> Iterator for Merged<'q> {
    type Item = ErrorRef<'q>;

    fn next(&mut self) -> Option<ErrorRef<'q>> {
        let (r, at) = self.order.next_at()?;
        let q = self.order.q;
        let (mut e, _) = decode(q.bytes(r), at, &q.sigs, r.src)?;
        e.line += r.base;
        Some(e)
    }
}
