//! The FPM logs' clock against nginx's. When every FPM stamp is off by the same amount (FPM's
//! container runs in another zone than nginx's, or its host's clock drifted), every join
//! between the two logs misses: the requests FPM killed for `request_terminate_timeout` or lost
//! to a crash come out `unexplained`, with no sign why. The moments FPM ends a worker (a
//! signal, a timeout) are moments nginx logs an upstream failure (the reset or the premature
//! close of that worker's connection, in the same second): where those two sets of moments
//! line up at some other shift than zero, that shift is the FPM clock's.
//!
//! Input: the scan's held nginx error lines and FPM events. Output: `Skew`, how far FPM's
//! stamps run ahead of nginx's, or `None` when they line up as logged (within the joins'
//! 2 s) or the evidence is too thin to say. Invariants: deterministic (sorted inputs, ties to
//! the smaller shift); time and memory bounded by `MAX_ANCHORS` FPM moments against the nginx
//! failures within `RANGE_S` of each, and a histogram of `2 * RANGE_S + 1` seconds.

use crate::model::{ErrorEvent, FpmEvent, FpmKind};

/// The largest shift looked for: 26 h, from the zone furthest west (-12:00) to the furthest
/// east (+14:00).
const RANGE_S: i64 = 26 * 3600;
/// The joins' tolerance: a shift within it changes no join, and the window a moment of
/// FPM's is matched in.
const TOLERANCE_S: i64 = 2;
/// FPM moments compared, evenly chosen among them: bounds the pairs counted.
const MAX_ANCHORS: usize = 1000;
/// The fewest FPM moments that must line up at a shift before it is believed.
const MIN_MATCHED: u64 = 10;
/// Distances with the most pairs whose moments are counted exactly.
const CANDIDATES: usize = 64;

/// How far FPM's clock runs ahead of nginx's, and the evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skew {
    /// FPM's stamp minus nginx's for the same moment, in seconds (negative: behind).
    pub ahead_s: i64,
    /// FPM moments with an nginx upstream failure within 2 s once shifted back by `ahead_s`.
    pub matched: u64,
    /// The same, as logged.
    pub as_logged: u64,
    /// FPM moments compared.
    pub anchors: u64,
}

/// Seconds at which FPM ended a worker (its events in time order), at most `MAX_ANCHORS`.
fn anchors(fpm: &[FpmEvent]) -> Vec<i64> {
    let mut v: Vec<i64> = fpm
        .iter()
        .filter(|e| e.ts_exact && matches!(e.kind, FpmKind::ChildSignal | FpmKind::ExecutionTimedOut))
        .map(|e| e.ts.div_euclid(1000))
        .collect();
    v.sort_unstable();
    v.dedup();
    if v.len() > MAX_ANCHORS {
        v = (0..MAX_ANCHORS).map(|i| v[i * v.len() / MAX_ANCHORS]).collect();
    }
    v
}

/// How many of `f` have a second of `n` within the tolerance of `f + d`.
fn matched(f: &[i64], n: &[i64], d: i64) -> u64 {
    f.iter()
        .filter(|&&t| {
            let i = n.partition_point(|&x| x < t + d - TOLERANCE_S);
            n.get(i).is_some_and(|&x| x <= t + d + TOLERANCE_S)
        })
        .count() as u64
}

/// The FPM clock's shift, when the FPM moments line up with nginx's upstream failures at a
/// shift beyond the joins' tolerance, clearly more of them than as logged and clearly above
/// what chance gives at any shift.
pub fn fpm_clock(errors: &[ErrorEvent], fpm: &[FpmEvent]) -> Option<Skew> {
    let f = anchors(fpm);
    let mut n: Vec<i64> = errors.iter().filter(|e| e.failure).map(|e| e.ts.div_euclid(1000)).collect();
    n.sort_unstable();
    n.dedup();
    if (f.len() as u64) < MIN_MATCHED || n.is_empty() {
        return None;
    }
    // Pairs (FPM moment, nginx failure) by their distance in seconds: nginx minus FPM.
    let width = (2 * RANGE_S + 1) as usize;
    let mut hist = vec![0u32; width];
    let mut lo = 0;
    for &t in &f {
        while lo < n.len() && n[lo] < t - RANGE_S {
            lo += 1;
        }
        for &x in n[lo..].iter().take_while(|&&x| x <= t + RANGE_S) {
            hist[(x - t + RANGE_S) as usize] += 1;
        }
    }
    // Each distance's pairs within the tolerance around it.
    let w = TOLERANCE_S as usize;
    let mut score = vec![0u32; width];
    let mut sum: u32 = hist[..w.min(width)].iter().sum();
    for (i, s) in score.iter_mut().enumerate() {
        if let Some(&h) = hist.get(i + w) {
            sum += h;
        }
        *s = sum;
        if i >= w {
            sum -= hist[i - w];
        }
    }
    // The pair counts find where to look; the moments matched decide. The distances of the
    // most pairs (ties: the smaller shift), and those beside them, are counted exactly.
    let mut by_score: Vec<usize> = (0..width).collect();
    let key = |i: usize| (std::cmp::Reverse(score[i]), ((i as i64) - RANGE_S).abs(), i);
    let top = CANDIDATES.min(width);
    by_score.select_nth_unstable_by_key(top - 1, |&i| key(i));
    by_score.truncate(top);
    let mut cands: Vec<i64> = by_score
        .iter()
        .flat_map(|&i| (-TOLERANCE_S..=TOLERANCE_S).map(move |k| i as i64 - RANGE_S + k))
        .filter(|d| d.abs() <= RANGE_S)
        .collect();
    cands.sort_unstable();
    cands.dedup();
    let counted: Vec<(i64, u64)> = cands.iter().map(|&d| (d, matched(&f, &n, d))).collect();
    let most = counted.iter().map(|c| c.1).max()?;
    let d = plateau_centre(&counted, most, &score)?;
    // A whole quarter hour within the tolerance that matches as many is a zone's difference.
    let q = (d as f64 / 900.0).round() as i64 * 900;
    let d = if q != 0 && (q - d).abs() <= TOLERANCE_S && matched(&f, &n, q) == most { q } else { d };
    if d.abs() <= TOLERANCE_S {
        return None;
    }
    // Chance: the median pair count of a distance.
    let mut sorted = score.clone();
    let chance = f64::from(*sorted.select_nth_unstable(width / 2).1);
    let above = f64::from(score[(d + RANGE_S) as usize]) - chance;
    // Within a dense burst of failures many moments find one within 2 s at any small shift,
    // so the test is on the moments left unmatched: the shift must leave at most a third of
    // those the logged stamps leave.
    let (m, m0) = (most, matched(&f, &n, 0));
    let (miss, miss0) = (f.len() as u64 - m, f.len() as u64 - m0);
    let clear = m >= m0 + MIN_MATCHED && 3 * miss <= miss0 && above >= MIN_MATCHED as f64 + 6.0 * chance.sqrt();
    // nginx's failure is at `FPM's stamp + d`: FPM's stamps run `-d` ahead.
    clear.then_some(Skew { ahead_s: -d, matched: m, as_logged: m0, anchors: f.len() as u64 })
}

/// The middle of the run of consecutive distances around the best-scored one that match
/// `most` moments (nginx logs a failure in the second FPM ends the worker or the next, so
/// several distances match all: their middle is the shift, rounded away from zero).
fn plateau_centre(counted: &[(i64, u64)], most: u64, score: &[u32]) -> Option<i64> {
    let sc = |d: i64| score[(d + RANGE_S) as usize];
    let (k, _) = counted
        .iter()
        .enumerate()
        .filter(|(_, c)| c.1 == most)
        .max_by_key(|(_, c)| (sc(c.0), std::cmp::Reverse(c.0.abs()), std::cmp::Reverse(c.0)))?;
    let (mut lo, mut hi) = (k, k);
    while lo > 0 && counted[lo - 1].1 == most && counted[lo - 1].0 == counted[lo].0 - 1 {
        lo -= 1;
    }
    while hi + 1 < counted.len() && counted[hi + 1].1 == most && counted[hi + 1].0 == counted[hi].0 + 1 {
        hi += 1;
    }
    let sum = counted[lo].0 + counted[hi].0;
    Some(if sum >= 0 { (sum + 1).div_euclid(2) } else { -((-sum + 1).div_euclid(2)) })
}

/// Seconds in words: `1 h`, `5 h 30 min`, `97 s`, `2 min 5 s`.
pub fn span_text(s: i64) -> String {
    let (h, m, x) = (s / 3600, s / 60 % 60, s % 60);
    let parts = [(h, "h"), (m, "min"), (x, "s")];
    let words: Vec<String> = parts.iter().filter(|p| p.0 != 0).map(|(n, u)| format!("{n} {u}")).collect();
    if words.is_empty() {
        "0 s".into()
    } else {
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cause, CauseClass, Level, Phase};

    fn fpm_at(secs: &[i64], kind: FpmKind) -> Vec<FpmEvent> {
        secs.iter()
            .enumerate()
            .map(|(i, &s)| FpmEvent {
                ts: s * 1000,
                ts_exact: true,
                source: 0,
                line: i as u64 + 1,
                level: Level::Warn,
                pool: None,
                kind,
                child_pid: None,
                signal: None,
                exit_code: None,
                script: None,
                request: None,
                elapsed_s: None,
                message: String::new(),
                origin: None,
            })
            .collect()
    }

    fn errors_at(secs: &[i64], failure: bool) -> Vec<ErrorEvent> {
        secs.iter()
            .enumerate()
            .map(|(i, &s)| ErrorEvent {
                ts: s * 1000,
                source: 1,
                line: i as u64 + 1,
                lines: 1,
                level: Level::Error,
                pid: 1,
                conn: None,
                signature: "upstream_reset_header",
                errno: Some(104),
                phase: Phase::None,
                class: CauseClass::C7,
                cause: Cause::WorkerCrash,
                failure,
                texts: crate::model::texts::Texts::new([None; 6]),
                message: "".into(),
                origin: None,
            })
            .collect()
    }

    /// A xorshift generator: numbers below `m`.
    fn rng(mut x: u64) -> impl FnMut(u64) -> u64 {
        move |m| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        }
    }

    /// A week of worker crashes at irregular moments, each with nginx's reset in the same or
    /// the next second, and unrelated nginx failures besides.
    fn week(ahead: i64) -> (Vec<ErrorEvent>, Vec<FpmEvent>) {
        let mut next = rng(12345);
        let crashes: Vec<i64> = (0..300).map(|_| 1_800_000_000 + next(7 * 86_400) as i64).collect();
        let mut nginx: Vec<i64> = crashes.iter().map(|&c| c + next(2) as i64).collect();
        nginx.extend((0..3000).map(|_| 1_800_000_000 + next(7 * 86_400) as i64));
        nginx.sort_unstable();
        let mut stamps: Vec<i64> = crashes.iter().map(|c| c + ahead).collect();
        stamps.sort_unstable();
        (errors_at(&nginx, true), fpm_at(&stamps, FpmKind::ChildSignal))
    }

    #[test]
    fn spans_in_words() {
        assert_eq!(span_text(3600), "1 h");
        assert_eq!(span_text(5 * 3600 + 1800), "5 h 30 min");
        assert_eq!(span_text(97), "1 min 37 s");
        assert_eq!(span_text(0), "0 s");
    }

    #[test]
    fn a_zone_mismatch_and_a_drifted_clock_are_found() {
        for ahead in [3600, -7200, 97, -45 * 60, 5 * 3600 + 1800] {
            let (e, f) = week(ahead);
            let s = fpm_clock(&e, &f).unwrap_or_else(|| panic!("{ahead}: not found"));
            // Whole quarter hours exactly (a zone's difference), other shifts within a second
            // (nginx's failure comes in FPM's second or the next).
            if ahead % 900 == 0 {
                assert_eq!(s.ahead_s, ahead);
            } else {
                assert!((s.ahead_s - ahead).abs() <= 1, "{ahead}: {s:?}");
            }
            assert!(s.matched >= 290 && s.as_logged < 30 && s.anchors == 300, "{s:?}");
        }
    }

    /// An outage: a request killed every few seconds for 15 minutes, nginx failing every
    /// second: at a small shift most moments still find a failure within 2 s by chance.
    #[test]
    fn a_small_shift_inside_a_dense_burst_is_found() {
        let start = 1_800_000_000;
        let mut next = rng(99);
        // A kill every 2 to 8 s, nginx's failure in its second or the next, and a tenth of the
        // other seconds failing too: four moments in five find a failure within 2 s as logged.
        let mut kills = vec![start];
        while *kills.last().unwrap() < start + 900 {
            let k = kills.last().unwrap() + 2 + next(7) as i64;
            kills.push(k);
        }
        let mut nginx: Vec<i64> = kills.iter().map(|k| k + next(2) as i64).collect();
        nginx.extend((0..900).filter(|_| next(10) == 0).map(|i| start + i));
        nginx.sort_unstable();
        for ahead in [-97, 30, 7] {
            let stamps: Vec<i64> = kills.iter().map(|k| k + ahead).collect();
            let s = fpm_clock(&errors_at(&nginx, true), &fpm_at(&stamps, FpmKind::ExecutionTimedOut));
            let s = s.unwrap_or_else(|| panic!("{ahead}: not found"));
            assert!((s.ahead_s - ahead).abs() <= 1, "{ahead}: {s:?}");
            assert!(s.matched == s.anchors && s.as_logged > s.anchors * 3 / 5, "{s:?}");
        }
        let s = fpm_clock(&errors_at(&nginx, true), &fpm_at(&kills, FpmKind::ExecutionTimedOut));
        assert_eq!(s, None);
    }

    #[test]
    fn clocks_that_agree_or_thin_evidence_give_nothing() {
        for ahead in [0, 1, -1] {
            let (e, f) = week(ahead);
            assert_eq!(fpm_clock(&e, &f), None, "{ahead}");
        }
        // Nine crashes an hour off: too few to believe.
        let (e, f) = week(3600);
        let few: Vec<FpmEvent> = f.into_iter().take(9).collect();
        assert_eq!(fpm_clock(&e, &few), None);
        // Lines that are not upstream failures, or FPM events that end no worker, say nothing.
        let (e, f) = week(3600);
        let quiet: Vec<ErrorEvent> = e.into_iter().map(|x| ErrorEvent { failure: false, ..x }).collect();
        assert_eq!(fpm_clock(&quiet, &f), None);
        let (e, f) = week(3600);
        let other: Vec<FpmEvent> = f.into_iter().map(|x| FpmEvent { kind: FpmKind::ChildExitCode, ..x }).collect();
        assert_eq!(fpm_clock(&e, &other), None);
        // Crashes nginx saw nothing of (no request in flight): no shift stands out.
        let (_, f) = week(3600);
        let unrelated: Vec<i64> = (0..3000).map(|i| 1_800_000_000 + i * 201).collect();
        assert_eq!(fpm_clock(&errors_at(&unrelated, true), &f), None);
    }
}
