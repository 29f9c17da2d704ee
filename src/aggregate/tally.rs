//! Frequency tallies: the counts behind `by_cause.csv`, `by_upstream.csv`, `by_host.csv`,
//! `by_uri.csv` and `by_client.csv`, kept per (scope, key) while the tagged request rows are
//! read once, then handed to polars as one small frame per table.
//!
//! Input: one call of `add` per request row and scope (keys and verdict cells borrowed from
//! the request frame, scopes as ranks: 0 = `all`, k + 1 = the k-th incident). Output: frames
//! with one row per group, in key order, whose columns are what `freq`'s polars group-bys
//! produced from the rows expanded by scope (the sorting, top-cause choice and joins stay in
//! `freq`). Invariants: memory grows with the distinct keys, not with the rows or the scopes
//! (the expanded frame held 11 string cells per row and scope: 170 MiB at 8 GiB); counts are
//! exact; `first`/`last` follow the stable time order polars used (no time first, then ties
//! by row order).

use super::Cols;
use polars::prelude::*;
// Fx hashing: the keys are short and ours (SipHash was most of a tally's time, perf); the
// tallies are sorted before they leave, so no output depends on the hash order.
use rustc_hash::FxHashMap as HashMap;

type Cell<'a> = Option<&'a str>;

/// The verdict cells of one request row.
#[derive(Clone, Copy)]
pub struct Verdict<'a> {
    pub outcome: Cell<'a>,
    pub class: Cell<'a>,
    pub cause: Cell<'a>,
}

impl Verdict<'_> {
    /// failed, retried, refused: the three outcome counts of every table.
    fn counts(&self) -> [u64; 3] {
        match self.outcome {
            Some("failed") => [1, 0, 0],
            Some("retried") => [0, 1, 0],
            Some("refused") => [0, 0, 1],
            _ => [0; 3],
        }
    }
}

fn add3(a: &mut [u64; 3], b: [u64; 3]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Per (scope, key): the outcome counts, and per cause the rows the top cause is chosen
/// from (every outcome but `retried`, as the filter before `freq`'s top-cause sort).
#[derive(Default)]
pub struct Tally<'a> {
    counts: HashMap<(u64, &'a str), [u64; 3]>,
    causes: HashMap<(u64, &'a str, Cell<'a>, Cell<'a>), u32>,
    /// `by_uri.csv`'s example: the first request's URI in row order.
    first: HashMap<(u64, &'a str), Cell<'a>>,
}

impl<'a> Tally<'a> {
    pub fn add(&mut self, rank: u64, key: &'a str, v: Verdict<'a>) {
        add3(self.counts.entry((rank, key)).or_default(), v.counts());
        // A missing outcome compares as null: the filter drops it.
        if v.outcome.is_some_and(|o| o != "retried") {
            *self.causes.entry((rank, key, v.class, v.cause)).or_default() += 1;
        }
    }

    pub fn add_example(&mut self, rank: u64, key: &'a str, example: Cell<'a>) {
        self.first.entry((rank, key)).or_insert(example);
    }

    /// (scope_rank, scope, KEY, failed, retried, refused).
    #[cfg(test)]
    pub fn counts(&self, key: &str, scopes: &[String]) -> PolarsResult<DataFrame> {
        let mut rows: Vec<_> = self.counts.iter().collect();
        rows.sort_unstable_by_key(|(k, _)| **k);
        let mut c = keyed(rows.iter().map(|(k, _)| **k), key, scopes);
        for (j, name) in ["failed", "retried", "refused"].into_iter().enumerate() {
            c.u64(name, rows.iter().map(|(_, n)| n[j]).collect());
        }
        c.frame()
    }

    /// `counts` with each group's top cause (`top_cause`, `top_cause_class`; null where no
    /// failure or refusal has one): the most frequent (cause class, cause) of its candidates,
    /// a refusal only where nothing else is, ties to the smaller class then cause, a missing
    /// class or cause first (the order of polars' null-first sort that chose it before).
    /// Chosen here in one walk over the sorted candidates: the client table's causes frame and
    /// its lazy sort and join were 34 of the 63 MB the frequency tables added on the 8 GiB
    /// bench corpus (188 k client groups, one thread).
    pub fn counts_with_top(&self, key: &str, scopes: &[String]) -> PolarsResult<DataFrame> {
        let rl = crate::model::CauseClass::RL.as_str();
        type Rank<'c> = (Option<bool>, std::cmp::Reverse<u32>, Cell<'c>, Cell<'c>);
        let mut cands: Vec<((u64, &str), Rank)> = self
            .causes
            .iter()
            .map(|(&(r, k, cl, ca), &n)| ((r, k), (cl.map(|c| c == rl), std::cmp::Reverse(n), cl, ca)))
            .collect();
        cands.sort_unstable();
        let mut rows: Vec<_> = self.counts.iter().collect();
        rows.sort_unstable_by_key(|(k, _)| **k);
        // Both sorted by group: the first candidate of each group is its top.
        let mut next = cands.iter().peekable();
        let mut top: Vec<(Cell, Cell)> = Vec::with_capacity(rows.len());
        for (k, _) in &rows {
            while next.next_if(|c| c.0 < **k).is_some() {}
            top.push(next.peek().filter(|c| c.0 == **k).map_or((None, None), |c| (c.1 .3, c.1 .2)));
        }
        drop(cands);
        let mut c = keyed(rows.iter().map(|(k, _)| **k), key, scopes);
        for (j, name) in ["failed", "retried", "refused"].into_iter().enumerate() {
            c.u64(name, rows.iter().map(|(_, n)| n[j]).collect());
        }
        c.str("top_cause", top.iter().map(|t| t.0.map(str::to_string)).collect())
            .str("top_cause_class", top.iter().map(|t| t.1.map(str::to_string)).collect());
        c.frame()
    }

    /// (scope_rank, scope, KEY, cause_class, cause, n).
    #[cfg(test)]
    pub fn causes(&self, key: &str, scopes: &[String]) -> PolarsResult<DataFrame> {
        let mut rows: Vec<_> = self.causes.iter().collect();
        rows.sort_unstable_by_key(|(k, _)| **k);
        let mut c = keyed(rows.iter().map(|((r, k, _, _), _)| (*r, *k)), key, scopes);
        c.str("cause_class", rows.iter().map(|((_, _, cl, _), _)| cl.map(str::to_string)).collect())
            .str("cause", rows.iter().map(|((_, _, _, ca), _)| ca.map(str::to_string)).collect())
            .u32("n", rows.iter().map(|(_, n)| **n).collect());
        c.frame()
    }

    /// (scope_rank, scope, KEY, NAME): the first example per group.
    pub fn examples(&self, key: &str, name: &str, scopes: &[String]) -> PolarsResult<DataFrame> {
        let mut rows: Vec<_> = self.first.iter().collect();
        rows.sort_unstable_by_key(|(k, _)| **k);
        let mut c = keyed(rows.iter().map(|(k, _)| **k), key, scopes);
        c.str(name, rows.iter().map(|(_, e)| e.map(str::to_string)).collect());
        c.frame()
    }
}

/// The three group columns every tally frame starts with.
fn keyed<'k>(keys: impl Iterator<Item = (u64, &'k str)>, key: &str, scopes: &[String]) -> Cols {
    let (ranks, names): (Vec<u64>, Vec<String>) = keys.map(|(r, k)| (r, k.to_string())).unzip();
    let mut c = Cols::default();
    c.u64("scope_rank", ranks.clone())
        .strs("scope", ranks.iter().map(|r| scopes[*r as usize].clone()).collect())
        .strs(key, names);
    c
}

/// `by_cause.csv`'s groups: per (scope, cause_class, cause) the outcome and confidence
/// counts and the first and last time seen.
#[derive(Default)]
pub struct CauseTally<'a> {
    groups: HashMap<(u64, Cell<'a>, Cell<'a>), CauseGroup<'a>>,
}

struct CauseGroup<'a> {
    /// failed, retried, refused, high, medium, low.
    n: [u64; 6],
    first: (Option<i64>, Cell<'a>),
    last: (Option<i64>, Cell<'a>),
}

impl<'a> CauseTally<'a> {
    /// Rows must come in row order (ties of time keep it).
    pub fn add(&mut self, rank: u64, v: Verdict<'a>, confidence: Cell<'a>, ts: Option<i64>, time: Cell<'a>) {
        let g = self.groups.entry((rank, v.class, v.cause)).or_insert(CauseGroup {
            n: [0; 6],
            first: (ts, time),
            last: (ts, time),
        });
        let [f, r, x] = v.counts();
        let conf = |c: &str| u64::from(confidence == Some(c));
        for (a, b) in g.n.iter_mut().zip([f, r, x, conf("high"), conf("medium"), conf("low")]) {
            *a += b;
        }
        // `Option`'s order puts a missing time first, as polars' ascending sort does.
        if ts < g.first.0 {
            g.first = (ts, time);
        }
        if ts >= g.last.0 {
            g.last = (ts, time);
        }
    }

    /// (scope_rank, scope, cause_class, cause, failed, retried, refused, high, medium, low,
    /// first_seen, last_seen).
    pub fn frame(&self, scopes: &[String]) -> PolarsResult<DataFrame> {
        let mut rows: Vec<_> = self.groups.iter().collect();
        rows.sort_unstable_by_key(|(k, _)| **k);
        let mut c = Cols::default();
        c.u64("scope_rank", rows.iter().map(|((r, _, _), _)| *r).collect())
            .strs("scope", rows.iter().map(|((r, _, _), _)| scopes[*r as usize].clone()).collect())
            .str("cause_class", rows.iter().map(|((_, cl, _), _)| cl.map(str::to_string)).collect())
            .str("cause", rows.iter().map(|((_, _, ca), _)| ca.map(str::to_string)).collect());
        for (j, name) in ["failed", "retried", "refused", "high", "medium", "low"].into_iter().enumerate() {
            c.u64(name, rows.iter().map(|(_, g)| g.n[j]).collect());
        }
        c.str("first_seen", rows.iter().map(|(_, g)| g.first.1.map(str::to_string)).collect())
            .str("last_seen", rows.iter().map(|(_, g)| g.last.1.map(str::to_string)).collect());
        c.frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<'a>(outcome: Cell<'a>, cause: &'a str) -> Verdict<'a> {
        Verdict { outcome, class: Some("C"), cause: Some(cause) }
    }

    #[test]
    fn first_and_last_follow_time_then_row_order() {
        let mut t = CauseTally::default();
        let f = v(Some("failed"), "x");
        t.add(0, f, Some("high"), Some(20), Some("b"));
        t.add(0, f, Some("low"), Some(10), Some("a1"));
        t.add(0, f, None, Some(10), Some("a2"));
        t.add(0, f, Some("high"), Some(30), Some("c1"));
        t.add(0, f, Some("high"), Some(30), Some("c2"));
        t.add(1, v(Some("retried"), "x"), None, None, Some("none"));
        let df = t.frame(&["all".into(), "I1".into()]).unwrap();
        let s =
            |c: &str| df.column(c).unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect::<Vec<_>>();
        let u = |c: &str| df.column(c).unwrap().u64().unwrap().iter().map(Option::unwrap).collect::<Vec<_>>();
        assert_eq!(s("scope"), ["all", "I1"]);
        assert_eq!(s("first_seen"), ["a1", "none"]);
        assert_eq!(s("last_seen"), ["c2", "none"]);
        assert_eq!(u("failed"), [5, 0]);
        assert_eq!(u("retried"), [0, 1]);
        assert_eq!((u("high"), u("medium"), u("low")), (vec![3, 0], vec![0, 0], vec![1, 0]));
    }

    #[test]
    fn top_cause_candidates_leave_out_retries_and_missing_outcomes() {
        let mut t = Tally::default();
        t.add(0, "k", v(Some("failed"), "x"));
        t.add(0, "k", v(Some("retried"), "y"));
        t.add(0, "k", v(None, "z"));
        t.add(0, "k", v(Some("refused"), "x"));
        t.add_example(0, "k", Some("/first"));
        t.add_example(0, "k", Some("/second"));
        let scopes = ["all".to_string()];
        let counts = t.counts("key", &scopes).unwrap();
        let u = |c: &str| counts.column(c).unwrap().u64().unwrap().get(0).unwrap();
        assert_eq!((counts.height(), u("failed"), u("retried"), u("refused")), (1, 1, 1, 1));
        let causes = t.causes("key", &scopes).unwrap();
        assert_eq!(causes.height(), 1, "only x: y was retried, z had no outcome");
        assert_eq!(causes.column("n").unwrap().u32().unwrap().get(0), Some(2));
        let ex = t.examples("key", "example", &scopes).unwrap();
        assert_eq!(ex.column("example").unwrap().str().unwrap().get(0), Some("/first"));
    }
}
