//! `summary.json`: the run's metadata, per-file accounting, totals per cause, incidents and
//! diagnostics.
//!
//! Input: an `Analysis`. Output: pretty-printed JSON with a stable key order (structs, not
//! maps). Invariants: the per-file figures reconcile (`lines == parsed + malformed +
//! skipped`) and `totals` is their sum; `generated_at` is the only field that differs
//! between two runs over the same input.

use super::{write_atomic, RenderError, RenderOptions, SCHEMA_VERSION};
use crate::aggregate::{lifecycle_text, request_cause_counts, Fmt};
use crate::model::{Diagnostic, FileStats, Sample};
use crate::{Analysis, ZoneChoice};
use serde::Serialize;

#[derive(Serialize)]
pub struct Summary<'a> {
    pub schema_version: u32,
    pub upcause_version: &'static str,
    pub name: &'a str,
    pub host: &'a str,
    /// The one field that changes between runs over the same input.
    pub generated_at: String,
    pub zone: &'a ZoneChoice,
    pub time_range: Option<Range>,
    pub window: Window,
    pub inputs: Vec<Input>,
    pub skipped_files: Vec<Skipped>,
    pub totals: Totals,
    pub requests: RequestTotals,
    pub error_line_causes: Vec<CauseCount>,
    pub request_causes: Vec<RequestCause>,
    pub confidence: Confidence,
    pub incidents: Vec<IncidentOut>,
    pub diagnostics: &'a [Diagnostic],
}

#[derive(Serialize)]
pub struct Range {
    pub start: String,
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Serialize)]
pub struct Window {
    pub since: Option<String>,
    pub until: Option<String>,
}

#[derive(Serialize)]
pub struct Input {
    pub path: String,
    pub kind: &'static str,
    pub compression: &'static str,
    pub size: u64,
    pub rotation_set: String,
    pub format: Option<String>,
    pub kind_reason: String,
    pub bytes: u64,
    pub lines: u64,
    pub parsed: u64,
    pub malformed: u64,
    pub skipped: u64,
    pub first: Option<String>,
    pub last: Option<String>,
    pub malformed_samples: Vec<Sample>,
}

#[derive(Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
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
    /// Requests the client got a good answer for although an upstream attempt failed.
    pub retried: u64,
}

#[derive(Serialize)]
pub struct CauseCount {
    pub cause_class: String,
    pub cause: String,
    pub count: u64,
}

#[derive(Serialize)]
pub struct RequestCause {
    pub cause_class: &'static str,
    pub cause: &'static str,
    pub failed: u64,
    pub retried: u64,
}

#[derive(Serialize)]
pub struct Confidence {
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

#[derive(Serialize)]
pub struct IncidentOut {
    pub incident: String,
    pub start: String,
    pub end: String,
    pub duration_s: f64,
    pub requests: u64,
    pub failed: u64,
    pub retried: u64,
    pub peak_per_min: u64,
    pub causes: Vec<RequestCause>,
    pub earliest_evidence: Option<String>,
    pub lifecycle: String,
    pub contributing: Option<String>,
}

pub fn build<'a>(a: &'a Analysis, o: &'a RenderOptions) -> Summary<'a> {
    let f = Fmt { a };
    let inputs: Vec<Input> = a
        .sources
        .iter()
        .zip(&a.scan.stats)
        .zip(&a.scan.ranges)
        .map(|((s, st), r)| Input {
            path: s.display.clone(),
            kind: s.kind.as_str(),
            compression: s.compression.as_str(),
            size: s.size,
            rotation_set: s.set.clone(),
            format: s.format.and_then(|i| a.formats.get(i)).map(|f| f.name.clone()),
            kind_reason: s.kind_reason.clone(),
            bytes: st.bytes,
            lines: st.lines,
            parsed: st.parsed,
            malformed: st.malformed,
            skipped: st.skipped,
            first: r.map(|r| f.time(r.0)),
            last: r.map(|r| f.time(r.1)),
            malformed_samples: st.malformed_samples.clone(),
        })
        .collect();
    let mut tot = FileStats::default();
    for s in &a.scan.stats {
        tot.add(s);
    }
    let per_sec = &a.scan.traffic.per_sec;
    let sum = |c: usize| per_sec.values().map(|r| r[c] as u64).sum::<u64>();
    use crate::scan::traffic::col;
    let failed = a.corr.requests.iter().filter(|t| t.outcome == crate::correlate::Outcome::Failed).count() as u64;
    let mut line_causes: Vec<CauseCount> = Vec::new();
    if let Ok(df) = crate::aggregate::causes(a) {
        if let (Ok(c1), Ok(c2), Ok(n)) = (df.column("cause_class"), df.column("cause"), df.column("count")) {
            if let (Ok(c1), Ok(c2), Ok(n)) = (c1.str(), c2.str(), n.u64()) {
                for ((x, y), k) in c1.iter().zip(c2.iter()).zip(n.iter()) {
                    line_causes.push(CauseCount {
                        cause_class: x.unwrap_or_default().into(),
                        cause: y.unwrap_or_default().into(),
                        count: k.unwrap_or(0),
                    });
                }
            }
        }
    }
    let (rc, conf) = request_cause_counts(a);
    let incidents = a
        .corr
        .incidents
        .iter()
        .map(|x| IncidentOut {
            incident: x.id.clone(),
            start: f.time(x.start),
            end: f.time(x.end),
            duration_s: (x.end - x.start) as f64 / 1000.0,
            requests: x.requests,
            failed: x.failed,
            retried: x.retried,
            peak_per_min: x.peak_per_min,
            causes: x
                .causes
                .iter()
                .map(|(c, k, n)| RequestCause { cause_class: c.as_str(), cause: k.as_str(), failed: *n, retried: 0 })
                .collect(),
            earliest_evidence: x.earliest_evidence.map(|e| f.evidence(&[e])),
            lifecycle: lifecycle_text(a, x),
            contributing: x.spike.map(|(on, base)| format!("traffic_spike ({on:.1}/s at onset vs {base:.1}/s before)")),
        })
        .collect();
    Summary {
        schema_version: SCHEMA_VERSION,
        upcause_version: env!("CARGO_PKG_VERSION"),
        name: &o.name,
        host: &o.host,
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        zone: &a.zone,
        time_range: a.range().map(|(s, e)| Range { start: f.time(s), end: f.time(e), start_ms: s, end_ms: e }),
        window: Window { since: a.since.map(|t| f.time(t)), until: a.until.map(|t| f.time(t)) },
        inputs,
        skipped_files: a.skipped.iter().map(|(p, r)| Skipped { path: p.clone(), reason: r.clone() }).collect(),
        totals: Totals {
            files: a.sources.len(),
            bytes: tot.bytes,
            lines: tot.lines,
            parsed: tot.parsed,
            malformed: tot.malformed,
            skipped: tot.skipped,
        },
        requests: RequestTotals { total: sum(col::TOTAL), failed, retried: sum(col::RETRIED) },
        error_line_causes: line_causes,
        request_causes: rc
            .into_iter()
            .map(|(c, k, n, r)| RequestCause { cause_class: c.as_str(), cause: k.as_str(), failed: n, retried: r })
            .collect(),
        confidence: Confidence { high: conf[0], medium: conf[1], low: conf[2] },
        incidents,
        diagnostics: &a.diags,
    }
}

pub fn write_summary(a: &Analysis, o: &RenderOptions) -> Result<(), RenderError> {
    let s = build(a, o);
    let mut bytes = serde_json::to_vec_pretty(&s)
        .map_err(|e| RenderError::Io { path: "summary.json".into(), source: std::io::Error::other(e) })?;
    bytes.push(b'\n');
    write_atomic(&o.out_dir.join("summary.json"), &bytes)
}
