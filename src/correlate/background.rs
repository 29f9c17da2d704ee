//! The background: how often requests fail when nothing is wrong, learnt from the run itself,
//! and how surprising a burst of failures is against it.
//!
//! Input: candidate bursts (groups of failing requests), which of them are taken as outages
//! for now, per-second request counts and per-vhost request totals. Output: `Background`:
//! a failure rate per vhost, and `surprise`: the chance that the background alone gives a
//! burst at least this large (a Poisson tail). Invariants: the rate is estimated outside the
//! outages (they must not inflate it) with a weak prior (one failure per `PRIOR_REQUESTS`
//! requests), so a short run or a quiet server has a small, finite rate; pure arithmetic on
//! sorted inputs: deterministic.

use crate::model::Ts;
use crate::scan::series::PerSec;
use crate::scan::traffic::col;

/// The prior: a healthy server fails about one request in this many (pseudo-counts added to
/// what the run shows; they matter only when the run has few requests).
pub const PRIOR_REQUESTS: f64 = 100_000.0;
/// Strength of the run-wide rate as the prior of each vhost's (in requests).
const VHOST_PRIOR_REQUESTS: f64 = 1_000.0;
/// A burst's expected count is measured over at least this long a window: a burst of a
/// few seconds is judged against a minute of traffic.
pub const MIN_WINDOW_S: i64 = 60;

/// One failing request as the estimate needs it.
#[derive(Clone, Copy, Debug)]
pub struct Failure {
    /// When the request ended, and when it started (`end - $request_time`).
    pub ts: Ts,
    pub start: Ts,
    /// Index of its vhost in the host table (`None`: unknown).
    pub host: Option<u32>,
    /// Index of its cause in `Cause::ALL`.
    pub cause: u16,
}

/// Per-vhost request totals (the run's counters) and the per-second series.
pub struct Traffic<'a> {
    pub per_sec: &'a PerSec,
    /// Requests per vhost index.
    pub host_requests: &'a [u64],
}

impl Traffic<'_> {
    /// Requests that ended in `[s0, s1]` (seconds), at least `floor`.
    fn requests(&self, s0: i64, s1: i64, floor: u64) -> f64 {
        self.per_sec.sum(col::TOTAL, s0, s1).0.max(floor) as f64
    }

    fn total(&self) -> f64 {
        self.per_sec.total(col::TOTAL) as f64
    }
}

/// The earliest start of a burst's requests: its window reaches back to when the first of
/// them began (a slow request fails a minute after it started).
fn first_start(fails: &[Failure], burst: &[usize]) -> Ts {
    burst.iter().map(|&i| fails[i].start.min(fails[i].ts)).min().unwrap_or(0)
}

/// The window a burst's expected count is measured over: its span, widened evenly to at
/// least `MIN_WINDOW_S`.
pub fn window_s(first: Ts, last: Ts) -> (i64, i64) {
    let (mut s0, mut s1) = (first.div_euclid(1000), last.div_euclid(1000));
    let short = MIN_WINDOW_S - (s1 - s0 + 1);
    if short > 0 {
        s0 -= short / 2;
        s1 += short - short / 2;
    }
    (s0, s1)
}

#[derive(Clone, Debug, Default)]
pub struct Background {
    /// Failures per request, run-wide, outside the outages.
    pub rate: f64,
    /// Failures outside the outages: in all, and per vhost index.
    f_out: f64,
    f_host: Vec<f64>,
    /// Failures outside the outages per cause index.
    f_cause: Vec<f64>,
    /// Requests outside the outages.
    r_out: f64,
    /// Per vhost index: its share of the requests.
    host_share: Vec<f64>,
    /// Per failure: inside an outage (not counted).
    inside: Vec<bool>,
}

impl Background {
    /// The rate outside the bursts marked in `outage` (`bursts[i]`: indices into `fails`,
    /// in time order).
    pub fn estimate(fails: &[Failure], bursts: &[Vec<usize>], outage: &[bool], t: &Traffic) -> Background {
        let nh = t.host_requests.len();
        let mut inside = vec![false; fails.len()];
        let mut r_in = 0.0;
        let mut last_s1 = i64::MIN;
        for (b, _) in bursts.iter().zip(outage).filter(|x| *x.1) {
            for &i in b {
                inside[i] = true;
            }
            let (s0, s1) = (fails[b[0]].ts.div_euclid(1000), fails[*b.last().unwrap_or(&b[0])].ts.div_euclid(1000));
            // Bursts are in time order and do not overlap: count each second once.
            let s0 = s0.max(last_s1 + 1);
            if s1 >= s0 {
                r_in += t.requests(s0, s1, 0);
            }
            last_s1 = last_s1.max(s1);
        }
        let r_out = (t.total() - r_in).max(0.0);
        let mut f_host = vec![0.0; nh];
        let mut f_cause = vec![0.0; crate::model::Cause::ALL.len()];
        let mut f_out = 0.0;
        for (_, f) in fails.iter().enumerate().filter(|(i, _)| !inside[*i]) {
            f_out += 1.0;
            if let Some(c) = f_cause.get_mut(f.cause as usize) {
                *c += 1.0;
            }
            if let Some(h) = f.host.filter(|h| (*h as usize) < nh) {
                f_host[h as usize] += 1.0;
            }
        }
        let all: f64 = t.host_requests.iter().sum::<u64>() as f64;
        let host_share = t.host_requests.iter().map(|&r| if all > 0.0 { r as f64 / all } else { 0.0 }).collect();
        let rate = (f_out + 1.0) / (r_out + PRIOR_REQUESTS);
        Background { rate, f_out, f_host, f_cause, r_out, host_share, inside }
    }

    /// Like `expected`, for a burst of one cause against that cause's own background (a
    /// long, sparse outage of one cause stands out from a background of other causes).
    pub fn expected_of_cause(&self, fails: &[Failure], burst: &[usize], t: &Traffic) -> f64 {
        let (Some(&a), Some(&z)) = (burst.first(), burst.last()) else { return 0.0 };
        let cause = fails[a].cause as usize;
        let (s0, s1) = window_s(first_start(fails, burst), fails[z].ts);
        let requests = t.requests(s0, s1, burst.len() as u64);
        let own = burst.iter().filter(|&&i| !self.inside.get(i).copied().unwrap_or(true)).count() as f64;
        let own_requests =
            if own > 0.0 { t.requests(fails[a].ts.div_euclid(1000), fails[z].ts.div_euclid(1000), 0) } else { 0.0 };
        let f_c = self.f_cause.get(cause).copied().unwrap_or(0.0) - own;
        let r_out = (self.r_out - own_requests).max(0.0);
        // The run-wide prior spread over the causes.
        let prior = 1.0 / crate::model::Cause::ALL.len() as f64;
        requests * (f_c.max(0.0) + prior) / (r_out + PRIOR_REQUESTS)
    }

    /// How many of a burst's failures the background predicts: the requests of its window
    /// times the background rate of the vhosts it hit (a vhost with a steady trickle of its
    /// own predicts more than a quiet one). The rate leaves the burst itself out (its own
    /// failures and the requests of its span), so an outage is never judged against a rate
    /// it inflated.
    pub fn expected(&self, fails: &[Failure], burst: &[usize], t: &Traffic) -> f64 {
        let (Some(&a), Some(&z)) = (burst.first(), burst.last()) else { return 0.0 };
        let (s0, s1) = window_s(first_start(fails, burst), fails[z].ts);
        let requests = t.requests(s0, s1, burst.len() as u64);
        let own: Vec<usize> = burst.iter().copied().filter(|&i| !self.inside.get(i).copied().unwrap_or(true)).collect();
        let own_requests = if own.is_empty() {
            0.0
        } else {
            t.requests(fails[a].ts.div_euclid(1000), fails[z].ts.div_euclid(1000), 0)
        };
        let f_out = self.f_out - own.len() as f64;
        let r_out = (self.r_out - own_requests).max(0.0);
        let rate = (f_out + 1.0) / (r_out + PRIOR_REQUESTS);
        let mut hosts: Vec<u32> = burst.iter().filter_map(|&i| fails[i].host).collect();
        hosts.sort_unstable();
        hosts.dedup();
        let known = !hosts.is_empty() && burst.iter().all(|&i| fails[i].host.is_some());
        let per_request = if known {
            hosts
                .iter()
                .map(|&h| {
                    let share = self.host_share.get(h as usize).copied().unwrap_or(0.0);
                    let own_h = own.iter().filter(|&&i| fails[i].host == Some(h)).count() as f64;
                    let f_h = self.f_host.get(h as usize).copied().unwrap_or(0.0) - own_h;
                    let r_h = share * r_out;
                    share * (f_h + rate * VHOST_PRIOR_REQUESTS) / (r_h + VHOST_PRIOR_REQUESTS)
                })
                .sum::<f64>()
                .max(rate * 1e-3)
        } else {
            rate
        };
        requests * per_request
    }
}

/// P(X >= k) for X ~ Poisson(lambda): the chance that the background alone gives `k` or more
/// failures. Summed from `k` upwards in log space (the terms fall off fast past lambda); for
/// `k` at or below lambda the burst is not surprising at all (1).
pub fn surprise(k: u64, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    let lambda = lambda.max(1e-300);
    let k = k as f64;
    if k <= lambda {
        return 1.0;
    }
    let mut log_term = -lambda + k * lambda.ln() - ln_factorial(k);
    let mut sum = 0.0;
    let mut i = k;
    loop {
        let term = log_term.exp();
        sum += term;
        i += 1.0;
        log_term += lambda.ln() - i.ln();
        if term < sum * 1e-12 || i > k + 10_000.0 {
            break;
        }
    }
    sum.min(1.0)
}

/// ln(n!) (Stirling's series past 20).
fn ln_factorial(n: f64) -> f64 {
    if n < 21.0 {
        return (2..=n as u64).map(|i| (i as f64).ln()).sum();
    }
    n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n) - 1.0 / (360.0 * n.powi(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail_against_known_values() {
        // P(X >= 2 | 0.1) = 1 - e^-0.1 (1 + 0.1) = 0.004679.
        assert!((surprise(2, 0.1) - 0.004_679).abs() < 1e-6, "{}", surprise(2, 0.1));
        // P(X >= 10 | 0.1) = e^-0.1 0.1^10 / 10! (1 + 0.1/11 + ...) = 2.516e-17.
        let p = surprise(10, 0.1);
        assert!(p > 2.51e-17 && p < 2.52e-17, "{p}");
        // P(X >= 30 | 20) = 0.02181 (from the CDF).
        assert!((surprise(30, 20.0) - 0.021_81).abs() < 2e-4, "{}", surprise(30, 20.0));
        assert_eq!(surprise(3, 5.0), 1.0);
        assert!(surprise(1_000, 1.0) < 1e-300 || surprise(1_000, 1.0) == 0.0);
        assert!((ln_factorial(25.0) - 58.003_6).abs() < 1e-3);
    }

    #[test]
    fn outages_do_not_inflate_the_rate_and_a_noisy_vhost_predicts_more() {
        let mut per_sec = PerSec::default();
        for s in 0..3_600 {
            let mut c = [0u32; col::N];
            c[col::TOTAL] = 10;
            per_sec.add(s, &c);
        }
        // vhost 0: 90% of the traffic, 2 stray failures; vhost 1: 10%, 300 stray failures;
        // an outage of 200 failures on vhost 0 at 1800 s.
        let mut fails: Vec<Failure> = Vec::new();
        fails.extend([100, 2_000].iter().map(|&s| Failure { ts: s * 1000, start: s * 1000, host: Some(0), cause: 0 }));
        fails.extend((0..300).map(|i| Failure {
            ts: (50 + i * 11) * 1000 + 1,
            start: (50 + i * 11) * 1000 + 1,
            host: Some(1),
            cause: 0,
        }));
        fails.extend((0..200).map(|i| Failure {
            ts: 1_800_000 + i * 100,
            start: 1_800_000 + i * 100,
            host: Some(0),
            cause: 0,
        }));
        fails.sort_by_key(|f| f.ts);
        let outage: Vec<usize> = (0..fails.len())
            .filter(|&i| (1_800_000..1_900_000).contains(&fails[i].ts) && fails[i].host == Some(0))
            .collect();
        let rest: Vec<Vec<usize>> = (0..fails.len()).filter(|i| !outage.contains(i)).map(|i| vec![i]).collect();
        let mut bursts = vec![outage.clone()];
        bursts.extend(rest);
        let t = Traffic { per_sec: &per_sec, host_requests: &[32_400, 3_600] };
        let naive = Background::estimate(&fails, &bursts, &vec![false; bursts.len()], &t);
        let mut flags = vec![false; bursts.len()];
        flags[0] = true;
        let bg = Background::estimate(&fails, &bursts, &flags, &t);
        // (502 + 1) / (36,000 + prior) against (302 + 1) / (35,800 + prior).
        assert!(naive.rate > 1.6 * bg.rate, "{} vs {}", naive.rate, bg.rate);
        // Three failures in a minute: nothing on the noisy vhost, a surprise on the quiet one.
        let q: Vec<Failure> = (0..3)
            .map(|i| Failure { ts: 3_000_000 + i * 1000, start: 3_000_000 + i * 1000, host: Some(0), cause: 0 })
            .collect();
        let n: Vec<Failure> = (0..3)
            .map(|i| Failure { ts: 3_000_000 + i * 1000, start: 3_000_000 + i * 1000, host: Some(1), cause: 0 })
            .collect();
        let (eq, en) = (bg.expected(&q, &[0, 1, 2], &t), bg.expected(&n, &[0, 1, 2], &t));
        assert!(en > 10.0 * eq, "{en} vs {eq}");
        assert!(surprise(3, eq) < 1e-4 && surprise(3, en) > 1e-3, "{} {}", surprise(3, eq), surprise(3, en));
    }
}
