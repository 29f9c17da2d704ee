//! The rows of `events.parquet`, a row group at a time (`Groups`): the three kinds' held
//! frames and the quiet rows read back, merged in (time, file, line, record) order and built
//! in that order straight into one builder per column (`Builder`).
//!
//! Input: `Events`. Output: frames with every column of `wide_columns`, at most `size` rows
//! each. Invariants: the groups, one after the other, are the one sorted wide table (each
//! kind's order is kept; equal (time, file, line) go "error" < "fpm" < "request", the order of
//! the record names, then a merge's rows by their places, `Events::places`); a kind's cells
//! are the ones its frame holds or its row function (`events::push_error`, `push_fpm`)
//! writes, every other cell null; only one group's rows are built at a time. Building the
//! group in its final order spares what stacking per-kind frames and gathering them into
//! order cost: the quiet rows' frames and a gather of every column (together half of the
//! file's work).

use super::cells::{Builder, Src};
use super::events::{push_error, push_fpm, Events, RowCtx};
use super::quiet::{Keys, Quiet};
use super::run::EVENT_COLUMNS;
use crate::model::event::FpmEvent;
use crate::scan::quiet::Merged;
use polars::prelude::*;
use std::iter::Peekable;

/// The columns of `events.parquet`, in order: `EVENT_COLUMNS`, then a request's incident
/// columns.
pub fn wide_columns() -> Vec<&'static str> {
    let mut names = EVENT_COLUMNS.to_vec();
    names.extend(["incident", "contributing"]);
    names
}

/// A held kind: its frame's sort keys and columns.
struct Held {
    keys: Keys,
    src: Vec<Src>,
    len: usize,
}

type FpmRows<'e> = Peekable<Box<dyn Iterator<Item = FpmEvent> + Send + 'e>>;

/// The quiet rows read back, both kinds.
struct QuietSide<'e> {
    q: &'e Quiet,
    x: RowCtx<'e>,
    errs: Peekable<Merged<'e>>,
    fpm: FpmRows<'e>,
}

/// The row groups of `events.parquet` (see the module doc).
pub struct Groups<'e> {
    names: Vec<&'static str>,
    size: usize,
    /// Errors, FPM events, requests (in the order of their record names).
    held: [Held; 3],
    next: [usize; 3],
    quiet: Option<QuietSide<'e>>,
    first: bool,
    done: bool,
}

/// Where the next row comes from.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Next {
    Held(usize),
    QuietError,
    QuietFpm,
}

impl<'e> Groups<'e> {
    /// `events.parquet`'s row groups: every kind, every column of the wide table.
    pub fn new(ev: &'e Events, size: usize) -> PolarsResult<Groups<'e>> {
        let names = wide_columns();
        let held = |d: &DataFrame, places: &[u32]| -> PolarsResult<Held> {
            Ok(Held { keys: Keys::of(d, places)?, src: Src::of(d, &names)?, len: d.height() })
        };
        let r = &ev.places;
        let held = [held(&ev.err, &r.err)?, held(&ev.fpm, &r.fpm)?, held(&ev.req, &r.req)?];
        let quiet = ev.quiet.as_deref().map(|q| {
            let errs = q.rows.merged(q.rank()).peekable();
            let fpm: Box<dyn Iterator<Item = FpmEvent> + Send + 'e> = Box::new(q.rows.fpm_merged(q.rank()));
            QuietSide { q, x: q.ctx(), errs, fpm: fpm.peekable() }
        });
        Ok(Groups { names, size: size.max(1), held, next: [0; 3], quiet, first: true, done: false })
    }

    /// The next row group, `None` after the last. The first is returned even when empty (the
    /// file then has the schema and no rows).
    pub fn next_group(&mut self) -> PolarsResult<Option<DataFrame>> {
        if self.done {
            return Ok(None);
        }
        let mut g = Builder::new(&self.names, self.size);
        let mut rows = 0;
        // The kind's number is its record name's rank, which breaks ties of (time, file, line):
        // quiet rows are errors (0) and FPM events (1); then the row's place (`Events::places`).
        while rows < self.size {
            let (held, next) = (&self.held, &self.next);
            let mut best = (0..3)
                .map(|k| (k, &held[k]))
                .filter(|(k, h)| next[*k] < h.len)
                .map(|(k, h)| {
                    let (ts, file, line, place) = h.keys.get(next[k]);
                    ((ts, file, line, k, place), Next::Held(k))
                })
                .min();
            if let Some(QuietSide { q, errs, fpm, .. }) = &mut self.quiet {
                let key = |ts, src, line: u64, k| (ts, q.file(src), line as i64, k, src);
                let e = errs.peek().map(|e| (key(e.ts, e.source, e.line, 0), Next::QuietError));
                let f = fpm.peek().map(|e| (key(e.ts, e.source, e.line, 1), Next::QuietFpm));
                best = best.into_iter().chain(e).chain(f).min();
            }
            let Some((_, from)) = best else { break };
            match (from, &mut self.quiet) {
                (Next::Held(k), _) => {
                    g.held(&self.held[k].src, self.next[k]);
                    self.next[k] += 1;
                }
                (Next::QuietError, Some(QuietSide { x, errs, .. })) => {
                    if let Some(e) = errs.next() {
                        push_error(&mut g, x, e, None);
                    }
                }
                (Next::QuietFpm, Some(QuietSide { x, fpm, .. })) => {
                    if let Some(e) = fpm.next() {
                        push_fpm(&mut g, x, &e);
                    }
                }
                _ => break,
            }
            rows += 1;
        }
        if rows == 0 && !self.first {
            self.done = true;
            return Ok(None);
        }
        self.first = false;
        self.done = rows < self.size;
        g.finish().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every column a row function can write has a place in the wide table: a row that
    /// sets every typed column leaves none of them null (nor `ts`, which follows `ts_ms`).
    #[test]
    fn every_typed_column_is_a_wide_column() {
        use crate::aggregate::cells::{Cells, BOOL_COLS, F64_COLS, INT_COLS, STR_COLS};
        let names = wide_columns();
        let mut g = Builder::new(&names, 1);
        g.row();
        (0..STR_COLS.len()).for_each(|k| g.s(k, Some("x")));
        (0..INT_COLS.len()).for_each(|k| g.i(k, Some(1)));
        (0..F64_COLS.len()).for_each(|k| g.f(k, Some(1.0)));
        (0..BOOL_COLS.len()).for_each(|k| g.b(k, true));
        let d = g.finish().unwrap();
        for c in STR_COLS.iter().chain(INT_COLS).chain(F64_COLS).chain(BOOL_COLS).chain(&["ts"]) {
            assert_eq!(d.column(c).unwrap().null_count(), 0, "{c}");
        }
    }

    /// Events of three kinds, each in its own order, with ties of (time, file, line) across
    /// kinds: the groups, stacked, are the wide table in (time, file, line, record) order,
    /// whatever the group size; a kind's cells are its own, the other columns null.
    #[test]
    fn groups_merge_the_kinds_in_the_documented_order() {
        let wide = df!(
            "record" => ["request", "error", "fpm", "error", "request", "fpm", "error"],
            "ts_ms" => [5i64, 5, 5, 1, 9, 2, 9],
            "file" => ["a.log", "b.log", "a.log", "b.log", "a.log", "c.log", "a.log"],
            "line" => [3i64, 1, 3, 7, 1, 2, 4],
            "status" => [Some(502i64), None, None, None, Some(504), None, None],
            "message" => [None, Some("m1"), Some("f1"), Some("m0"), None, Some("f0"), Some("m2")],
            "pool" => [None, None, Some("www"), None, None, Some("www"), None],
        )
        .unwrap();
        let ev = Events::from_wide(&wide).unwrap().sort().unwrap();
        let expected = [
            ("error", 1i64, "b.log", 7i64),
            ("fpm", 2, "c.log", 2),
            ("error", 5, "a.log", 3),
            ("fpm", 5, "a.log", 3),
            ("request", 5, "a.log", 3),
            ("error", 5, "b.log", 1),
            ("request", 9, "a.log", 1),
            ("error", 9, "a.log", 4),
        ];
        // The error row at (5, a.log, 3) is not in the input: add it.
        let extra = df!(
            "record" => ["error"], "ts_ms" => [5i64], "file" => ["a.log"], "line" => [3i64],
            "status" => [None::<i64>], "message" => [Some("m3")], "pool" => [None::<&str>],
        )
        .unwrap();
        let ev = {
            let mut e = ev;
            e.vstack(&Events::from_wide(&extra).unwrap()).unwrap();
            e.sort().unwrap()
        };
        for size in [1, 2, 3, 100] {
            let mut g = Groups::new(&ev, size).unwrap();
            let mut all: Option<DataFrame> = None;
            let mut groups = 0;
            while let Some(d) = g.next_group().unwrap() {
                assert!(d.height() <= size && d.width() == wide_columns().len());
                groups += 1;
                match &mut all {
                    Some(a) => a.vstack_mut(&d).map(|_| ()).unwrap(),
                    None => all = Some(d),
                }
            }
            let all = all.unwrap();
            assert_eq!(groups, expected.len().div_ceil(size), "size {size}");
            let rec: Vec<_> = all.column("record").unwrap().str().unwrap().iter().map(|v| v.unwrap_or("")).collect();
            let ts: Vec<_> = all.column("ts_ms").unwrap().i64().unwrap().into_no_null_iter().collect();
            let file: Vec<_> = all.column("file").unwrap().str().unwrap().iter().map(|v| v.unwrap_or("")).collect();
            let line: Vec<_> = all.column("line").unwrap().i64().unwrap().into_no_null_iter().collect();
            let got: Vec<_> = (0..all.height()).map(|i| (rec[i], ts[i], file[i], line[i])).collect();
            assert_eq!(got, expected, "size {size}");
            // Requests hold a status, the others null; FPM rows a pool; the stamp column
            // follows ts_ms.
            let status: Vec<Option<i64>> = all.column("status").unwrap().i64().unwrap().iter().collect();
            let pool: Vec<Option<&str>> = all.column("pool").unwrap().str().unwrap().iter().collect();
            for (i, (r, ..)) in expected.iter().enumerate() {
                assert_eq!(status[i].is_some(), *r == "request", "row {i}");
                assert_eq!(pool[i].is_some(), *r == "fpm", "row {i}");
            }
            assert_eq!(all.column("ts").unwrap().dtype(), &crate::aggregate::cells::column_type("ts"));
            assert_eq!(all.column("ts").unwrap().null_count(), all.height());
        }
    }

    /// No events: one empty group with every column (the file keeps its schema).
    #[test]
    fn no_events_make_one_empty_group() {
        let ev = Events::from_wide(&df!("record" => Vec::<&str>::new(), "ts_ms" => Vec::<i64>::new(), "file" => Vec::<&str>::new(), "line" => Vec::<i64>::new()).unwrap()).unwrap();
        let mut g = Groups::new(&ev, 4).unwrap();
        let d = g.next_group().unwrap().unwrap();
        assert_eq!((d.height(), d.width()), (0, wide_columns().len()));
        assert!(g.next_group().unwrap().is_none());
    }
}
