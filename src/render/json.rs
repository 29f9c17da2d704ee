//! `summary.json`: the run's metadata (what a stored run is reloaded from), per-file
//! accounting, totals per cause, incidents and diagnostics.
//!
//! Input: a `Run` and its `Report`. Output: pretty-printed JSON with a stable key order.
//! Invariants: the per-file figures reconcile (`lines == parsed + malformed + skipped`) and
//! `totals` is their sum; `generated_at` is the only field that differs between two runs
//! over the same input.

use super::{write_atomic, RenderError};
use crate::aggregate::report::{i64s, strs, Report};
use crate::aggregate::run::{Run, RunMeta};
use crate::model::time::format_rfc3339;
use crate::scan::traffic::col;
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
pub struct Summary<'a> {
    #[serde(flatten)]
    pub meta: &'a RunMeta,
    /// The one field that changes between runs over the same input.
    pub generated_at: String,
    pub time_range: Option<Range>,
    pub totals: Totals,
    pub requests: RequestTotals,
    pub error_line_causes: Vec<CauseCount>,
    pub request_causes: Vec<CauseCount>,
    pub confidence: Confidence,
    /// By impact: rank 1 first.
    pub incidents: Vec<IncidentOut>,
    pub background: BackgroundOut,
}

/// The failures outside every incident.
#[derive(Serialize)]
pub struct BackgroundOut {
    pub failed: u64,
    /// Requests outside every incident's window.
    pub requests: u64,
    pub per_1000_requests: f64,
    /// The rate incident detection measured bursts against (failures that can start an
    /// incident, per 1,000 requests, outside the incidents).
    pub detection_rate_per_1000: f64,
    pub causes: Vec<CauseCount>,
}

#[derive(Serialize)]
pub struct Range {
    pub start: String,
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Serialize, Default)]
pub struct Totals {
    pub files: usize,
    pub bytes: u64,
    pub lines: u64,
    pub parsed: u64,
    pub malformed: u64,
    pub skipped: u64,
}

#[derive(Serialize)]
pub struct RequestTotals {
    /// Access-log requests counted (every status).
    pub total: u64,
    /// Client-facing failures (499 or >= 500).
    pub failed: u64,
    /// Requests the client got an answer for although an upstream attempt failed.
    pub retried: u64,
    /// Requests nginx refused itself (`limit_req`, `limit_conn`): not upstream failures.
    pub refused: u64,
}

#[derive(Serialize)]
pub struct CauseCount {
    pub cause_class: String,
    pub cause: String,
    pub failed: u64,
    pub retried: u64,
    pub refused: u64,
}

#[derive(Serialize, Default)]
pub struct Confidence {
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

#[derive(Serialize)]
pub struct IncidentOut {
    pub incident: String,
    pub rank: usize,
    pub start: String,
    pub end: String,
    pub duration_s: f64,
    pub requests: u64,
    pub failed: u64,
    pub failed_share: f64,
    pub clients: u64,
    pub retried: u64,
    pub peak_per_min: u64,
    pub expected_background: f64,
    pub p_value: f64,
    pub causes: Vec<CauseCount>,
    pub earliest_evidence: Option<String>,
    pub lifecycle: Vec<String>,
    pub contributing: Option<String>,
}

pub fn build<'a>(run: &'a Run, r: &Report) -> Summary<'a> {
    let z = &r.zone;
    let mut tot = Totals { files: run.meta.inputs.len(), ..Default::default() };
    for i in &run.meta.inputs {
        tot.bytes += i.bytes;
        tot.lines += i.lines;
        tot.parsed += i.parsed;
        tot.malformed += i.malformed;
        tot.skipped += i.skipped;
    }
    let mut error_line_causes = Vec::new();
    {
        let df = &r.tables.causes;
        if let (Ok(c), Ok(k), Ok(n)) = (strs(df, "cause_class"), strs(df, "cause"), i64s(df, "count")) {
            for i in 0..df.height() {
                error_line_causes.push(CauseCount {
                    cause_class: c[i].clone().unwrap_or_default(),
                    cause: k[i].clone().unwrap_or_default(),
                    failed: n[i].unwrap_or(0) as u64,
                    retried: 0,
                    refused: 0,
                });
            }
        }
    }
    let mut request_causes = Vec::new();
    let (mut failed, mut retried, mut refused) = (0, 0, 0);
    {
        let df = &r.tables.by_cause;
        let get = |c: &str| i64s(df, c).unwrap_or_default();
        let (scope, cls, cause) = (
            strs(df, "scope").unwrap_or_default(),
            strs(df, "cause_class").unwrap_or_default(),
            strs(df, "cause").unwrap_or_default(),
        );
        let (f, re, rf) = (get("failed"), get("retried"), get("refused"));
        for i in 0..df.height() {
            if scope[i].as_deref() != Some("all") {
                continue;
            }
            let n = |v: &Vec<Option<i64>>| v[i].unwrap_or(0) as u64;
            request_causes.push(CauseCount {
                cause_class: cls[i].clone().unwrap_or_default(),
                cause: cause[i].clone().unwrap_or_default(),
                failed: n(&f),
                retried: n(&re),
                refused: n(&rf),
            });
            failed += n(&f);
            retried += n(&re);
            refused += n(&rf);
        }
    }
    // Confidence of the failing requests (by_cause.csv's counts also cover retried rows).
    let mut conf = Confidence::default();
    {
        let req = &r.events.req;
        let (o, c) = (strs(req, "outcome").unwrap_or_default(), strs(req, "confidence").unwrap_or_default());
        for (o, c) in o.iter().zip(&c) {
            if o.as_deref() == Some("failed") {
                match c.as_deref() {
                    Some("high") => conf.high += 1,
                    Some("medium") => conf.medium += 1,
                    _ => conf.low += 1,
                }
            }
        }
    }
    let total = run.traffic.per_sec.total(col::TOTAL);
    let mut by_rank: Vec<&crate::correlate::Incident> = r.incidents.iter().collect();
    by_rank.sort_by_key(|x| x.rank);
    let incidents = by_rank
        .into_iter()
        .map(|x| IncidentOut {
            incident: x.id.clone(),
            rank: x.rank,
            start: format_rfc3339(x.start, z),
            end: format_rfc3339(x.end, z),
            duration_s: x.duration_s(),
            requests: x.requests,
            failed: x.failed,
            failed_share: x.failed_share(),
            clients: x.clients,
            retried: x.retried,
            peak_per_min: x.peak_per_min,
            expected_background: x.expected,
            p_value: x.p_value,
            causes: x
                .causes
                .iter()
                .map(|(c, k, n)| CauseCount {
                    cause_class: c.as_str().into(),
                    cause: k.as_str().into(),
                    failed: *n,
                    retried: 0,
                    refused: 0,
                })
                .collect(),
            earliest_evidence: x.earliest_evidence.clone(),
            lifecycle: x.lifecycle.clone(),
            contributing: x.contributing(),
        })
        .collect();
    Summary {
        meta: &run.meta,
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        time_range: r.range.map(|(s, e)| Range {
            start: format_rfc3339(s, z),
            end: format_rfc3339(e, z),
            start_ms: s,
            end_ms: e,
        }),
        totals: tot,
        requests: RequestTotals { total, failed, retried, refused },
        error_line_causes,
        request_causes,
        confidence: conf,
        incidents,
        background: BackgroundOut {
            failed: r.background.failed,
            requests: r.background.requests,
            per_1000_requests: r.background.per_1000(),
            detection_rate_per_1000: r.background.rate * 1000.0,
            causes: r
                .background
                .causes
                .iter()
                .map(|(c, k, n)| CauseCount {
                    cause_class: c.as_str().into(),
                    cause: k.as_str().into(),
                    failed: *n,
                    retried: 0,
                    refused: 0,
                })
                .collect(),
        },
    }
}

pub fn write_summary(run: &Run, r: &Report, dir: &Path) -> Result<(), RenderError> {
    let s = build(run, r);
    let mut bytes = serde_json::to_vec_pretty(&s)
        .map_err(|e| RenderError::Io { path: "summary.json".into(), source: std::io::Error::other(e) })?;
    bytes.push(b'\n');
    write_atomic(&dir.join("summary.json"), &bytes)
}
