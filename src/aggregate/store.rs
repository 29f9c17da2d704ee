//! Stored runs: loading a run directory, cutting a run to a time window, merging runs from
//! several machines.
//!
//! Input: run directories written by `analyze` or `merge` (summary.json, events.parquet,
//! counters/*.parquet). Output: `Run`s. Invariants: a directory of another schema version,
//! a missing directory and an empty run are refused with a message naming the directory and
//! what to do; merged events keep their `machine`; merged counters are sums (first/last
//! times: min/max), so a merged run equals one run over all inputs. What `merge` and `compare`
//! hold is what an analysis holds: the rows no verdict or table reads go back into quiet rows
//! as they are read (`restore`), the others into the temporary file of held rows (`spill`).

use super::events::{drop_run_only, Events};
use super::restore::Restore;
use super::run::{read_parquet, traffic_from_tables, Run, RunMeta};
use crate::model::event::FpmKind;
use crate::model::meta::SCHEMA_VERSION;
use crate::model::span::Profile;
use crate::model::Ts;
use crate::scan::traffic::LAT_BUCKET_S;
use polars::prelude::*;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}: no such run directory; pass a directory written by `upcause analyze` (it holds summary.json)")]
    Missing(String),
    #[error("{path}: not a run directory ({why}); pass a directory written by `upcause analyze`")]
    NotARun { path: String, why: String },
    #[error("{path}: written with run schema version {found}, this upcause reads version {want}; re-run `upcause analyze` on its logs with this version")]
    Schema { path: String, found: u64, want: u32 },
    #[error("{0}: the run is empty (no request, error or FPM line was read); nothing to compare")]
    Empty(String),
    #[error("{path}: {source}")]
    Table { path: String, source: PolarsError },
    #[error("nothing to merge: give at least one run directory")]
    NoRuns,
}

/// What `history` needs of a run: its `summary.json` only (a few kilobytes; loading the
/// events and counters of each run took seconds and hundreds of MB).
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub label: String,
    /// The run's range, as `summary.json` gives it (RFC 3339 in the run's zone, and ms).
    pub start: String,
    pub end: String,
    pub start_ms: Option<Ts>,
    pub requests: u64,
    pub failed: u64,
    pub incidents: usize,
    /// (cause_class, cause, failed) of the whole run.
    pub causes: Vec<(String, String, u64)>,
}

/// Read a run directory's `summary.json` (schema checked), nothing else.
pub fn load_summary(dir: &Path, label: String) -> Result<RunSummary, StoreError> {
    let d = dir.display().to_string();
    if !dir.is_dir() {
        return Err(StoreError::Missing(d));
    }
    let bytes = std::fs::read(dir.join("summary.json"))
        .map_err(|e| StoreError::NotARun { path: d.clone(), why: format!("summary.json: {e}") })?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::NotARun { path: d.clone(), why: format!("summary.json: {e}") })?;
    let found = v.get("schema_version").and_then(|x| x.as_u64()).unwrap_or(0);
    if found != SCHEMA_VERSION as u64 {
        return Err(StoreError::Schema { path: d, found, want: SCHEMA_VERSION });
    }
    let s = |x: &serde_json::Value| x.as_str().unwrap_or("").to_string();
    let u = |x: &serde_json::Value| x.as_u64().unwrap_or(0);
    let causes = v["request_causes"]
        .as_array()
        .map(|a| a.iter().map(|c| (s(&c["cause_class"]), s(&c["cause"]), u(&c["failed"]))).collect())
        .unwrap_or_default();
    let range = &v["time_range"];
    let out = RunSummary {
        label,
        start: s(&range["start"]),
        end: s(&range["end"]),
        start_ms: range["start_ms"].as_i64(),
        requests: u(&v["requests"]["total"]),
        failed: u(&v["requests"]["failed"]),
        incidents: v["incidents"].as_array().map_or(0, |a| a.len()),
        causes,
    };
    if out.requests == 0 && out.causes.is_empty() && v["totals"]["lines"].as_u64().unwrap_or(0) == 0 {
        return Err(StoreError::Empty(dir.display().to_string()));
    }
    Ok(out)
}

/// A whole run directory: every event row (what `merge` needs: its output is a run).
pub fn load(dir: &Path) -> Result<Run, StoreError> {
    load_rows(dir, Rows::All)
}

/// What `compare` reads of a run directory: summary.json, the counters, and of
/// `events.parquet` only the rows its tables are built from (every request row, nginx's and
/// FPM's lifecycle lines for the incident timelines) plus the stamps of all rows, so the run's
/// range is the one `analyze` reported. On a noisy production log most rows are error-log and
/// FPM chatter that no compared table reads; they are filtered while the file is decoded, so
/// they are never held.
pub fn load_for_compare(dir: &Path) -> Result<Run, StoreError> {
    load_rows(dir, Rows::Compared)
}

enum Rows<'r> {
    All,
    Compared,
    /// The rows a fresh analysis holds; the others go to the merge's quiet rows.
    Merged(&'r mut Restore),
}

/// The runs `dirs` merged into one (`merge`), loaded one after the other: each run's rows that
/// a fresh analysis keeps out of memory are written back out of it as they are read
/// (`restore`), so the merge holds what one analysis of all the inputs would.
pub fn load_merged(dirs: &[std::path::PathBuf], name: &str) -> Result<Run, StoreError> {
    let mut restore: Option<Restore> = None;
    let mut runs = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let d = dir.display().to_string();
        let r = match &mut restore {
            Some(r) => r,
            None => {
                let zone = read_meta(dir)?.zone();
                restore.insert(Restore::new(zone).map_err(|why| StoreError::NotARun { path: d, why })?)
            }
        };
        runs.push(load_rows(dir, Rows::Merged(r))?);
    }
    let mut run = merge(runs, name)?;
    if let Some(r) = restore {
        let tab = |e: PolarsError| StoreError::Table { path: name.to_string(), source: e };
        let back = r.finish().map_err(tab)?;
        if back.err.height() + back.fpm.height() > 0 {
            // With their places: the held rows keep theirs (`with_places`), the rows given
            // back carry their sources' (`Restore::finish`).
            let mut ev = run.events.with_places(0).map_err(tab)?;
            ev.err.vstack_mut(&back.err).map_err(tab)?;
            ev.fpm.vstack_mut(&back.fpm).map_err(tab)?;
            run.events = ev.sort_stacked().map_err(tab)?;
        }
        if let Some(w) = back.warning {
            run.meta.diagnostics.push(crate::model::Diagnostic {
                severity: crate::model::Severity::Warning,
                file: name.to_string(),
                line: None,
                offset: None,
                message: w,
            });
        }
        run.events.quiet = back.quiet.map(std::sync::Arc::new);
    }
    Ok(run)
}

/// A run directory's `summary.json`, its schema version checked.
fn read_meta(dir: &Path) -> Result<RunMeta, StoreError> {
    let d = dir.display().to_string();
    if !dir.is_dir() {
        return Err(StoreError::Missing(d));
    }
    let sum = dir.join("summary.json");
    let bytes =
        std::fs::read(&sum).map_err(|e| StoreError::NotARun { path: d.clone(), why: format!("summary.json: {e}") })?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::NotARun { path: d.clone(), why: format!("summary.json: {e}") })?;
    let found = v.get("schema_version").and_then(|x| x.as_u64()).unwrap_or(0);
    if found != SCHEMA_VERSION as u64 {
        return Err(StoreError::Schema { path: d, found, want: SCHEMA_VERSION });
    }
    serde_json::from_value(v).map_err(|e| StoreError::NotARun { path: d, why: format!("summary.json: {e}") })
}

fn load_rows(dir: &Path, rows: Rows) -> Result<Run, StoreError> {
    let meta = read_meta(dir)?;
    let d = dir.display().to_string();
    let tab = |e: PolarsError| StoreError::Table { path: d.clone(), source: e };
    let path = dir.join("events.parquet");
    let t = std::time::Instant::now();
    let (events, unloaded, restored) = match rows {
        Rows::Merged(r) => {
            let (ev, n) = r.rows(&path, &meta).map_err(tab)?;
            (ev, Profile::default(), n)
        }
        rows => {
            let compared = matches!(rows, Rows::Compared);
            let (mut wide, unloaded) = match rows {
                Rows::Compared => compared_rows(&path).map_err(tab)?,
                _ => (read_parquet(&path).map_err(tab)?, Profile::default()),
            };
            drop_run_only(&mut wide).map_err(tab)?;
            crate::timings::timing("load: event rows", t);
            let events = Events::from_wide(&wide).map_err(tab)?;
            drop(wide);
            // `compare` holds its two runs' rows to the end: in the temporary file of held rows.
            let events = if compared { events.stacked().map_err(tab)? } else { events };
            (events, unloaded, 0)
        }
    };
    crate::timings::timing("load: events", t);
    let t = std::time::Instant::now();
    let traffic =
        traffic_from_tables(|n| read_parquet(&dir.join("counters").join(format!("{n}.parquet")))).map_err(tab)?;
    crate::timings::timing("load: counters", t);
    if events.height() == 0 && traffic.per_sec.is_empty() && unloaded.is_empty() && restored == 0 {
        return Err(StoreError::Empty(d));
    }
    Ok(Run { meta, events, traffic, unloaded })
}

/// The rows of `events.parquet` that `compare` reads, and the stamps of the others.
fn compared_rows(path: &Path) -> PolarsResult<(DataFrame, Profile)> {
    let scan = || {
        let p = PlRefPath::new(path.to_string_lossy().as_ref());
        LazyFrame::scan_parquet(p, ScanArgsParquet::default())
    };
    let fpm_life: Vec<&str> = FpmKind::ALL.iter().filter(|k| k.is_lifecycle()).map(|k| k.as_str()).collect();
    // Pass 1, four narrow columns: which rows are kept (the error log's lifecycle signatures
    // are data, from the classifier's table, so they are read off the file), and the stamps
    // of the rows that are not.
    let keys = scan()?.select([col("ts_ms"), col("record"), col("signature"), col("event")]).collect()?;
    let ts = keys.column("ts_ms")?.i64()?;
    let (rec, sig, ev) =
        (keys.column("record")?.str()?, keys.column("signature")?.str()?, keys.column("event")?.str()?);
    let mut others = Profile::default();
    let mut life: Vec<&str> = Vec::new();
    for i in 0..keys.height() {
        let kept = match rec.get(i) {
            Some("request") => true,
            Some("error") => match sig.get(i) {
                Some(s) if s.starts_with("nginx_") => {
                    if !life.contains(&s) {
                        life.push(s);
                    }
                    true
                }
                _ => false,
            },
            Some("fpm") => ev.get(i).is_some_and(|e| fpm_life.contains(&e)),
            _ => false,
        };
        if let (false, Some(t)) = (kept, ts.get(i)) {
            others.add(t, 1);
        }
    }
    // Pass 2: the same rows, filtered as each row group is decoded.
    let any = |c: &str, vals: &[&str]| vals.iter().fold(lit(false), |e, v| e.or(col(c).eq(lit(*v))));
    let keep = col("record")
        .eq(lit("request"))
        .or(col("record").eq(lit("error")).and(any("signature", &life)))
        .or(col("record").eq(lit("fpm")).and(any("event", &fpm_life)));
    let rows = scan()?.filter(keep).collect()?;
    Ok((rows, others))
}

impl Run {
    /// The part of the run in `[from, to)`: events by time, per-second counts and latency
    /// buckets by time; per-host and per-peer totals stay whole-run (they carry no time).
    pub fn window(&self, from: Ts, to: Ts) -> PolarsResult<Run> {
        let events = self.events.window(from, to)?;
        let mut traffic = self.traffic.clone();
        // Seconds and minutes whose start is in [from, to).
        let ceil = |ms: Ts, unit: i64| ms.div_euclid(unit) + i64::from(ms.rem_euclid(unit) != 0);
        traffic.per_sec.retain_range(ceil(from, 1000), ceil(to, 1000));
        traffic.lat.retain_range(ceil(from, LAT_BUCKET_S * 1000), ceil(to, LAT_BUCKET_S * 1000));
        let mut meta = self.meta.clone();
        meta.since_ms = Some(from);
        meta.until_ms = Some(to);
        // The whole run's totals are not the window's.
        meta.machine_requests.clear();
        // The window's events leave out the quiet rows (compare's tables read none), but the
        // window's range still counts their stamps. A stored run's unloaded stamps have no
        // exact place in a window (compare's window mode analyses the logs whole).
        let mut unloaded = Profile::default();
        if let Some(q) = &self.events.quiet {
            for ts in q.rows.stamps().filter(|&ts| from <= ts && ts < to) {
                unloaded.add(ts, 1);
            }
        }
        Ok(Run { meta, events, traffic, unloaded })
    }
}

/// Merge runs (one per machine) into one.
pub fn merge(runs: Vec<Run>, name: &str) -> Result<Run, StoreError> {
    let mut it = runs.into_iter();
    let first = it.next().ok_or(StoreError::NoRuns)?;
    let mut meta = first.meta.clone();
    meta.name = name.to_string();
    // Requests per machine, from each run's own total; a machine some run has no total for
    // (a run loaded whole from a merge) has none.
    let mut known = first.machine_requests();
    let mut unknown: Vec<String> = first.meta.machines.iter().filter(|m| !known.contains_key(*m)).cloned().collect();
    let tab = |e: PolarsError| StoreError::Table { path: name.to_string(), source: e };
    // Each row with its place: rows tied on (time, file, line) across runs keep the runs'
    // order, held or quiet (`Events::places`: `restore` gives its rows their sources'
    // numbers; runs loaded whole get the run's).
    let mut events = first.events.with_places(0).map_err(tab)?;
    let mut traffic = first.traffic;
    let mut unloaded = first.unloaded;
    for (k, r) in it.enumerate() {
        let own = r.machine_requests();
        unknown.extend(r.meta.machines.iter().filter(|m| !own.contains_key(*m)).cloned());
        for (m, n) in own {
            *known.entry(m).or_insert(0) += n;
        }
        events.vstack(&r.events.with_places(k as u32 + 1).map_err(tab)?).map_err(tab)?;
        traffic.merge(r.traffic);
        unloaded.merge(&r.unloaded);
        for m in r.meta.machines {
            if !meta.machines.contains(&m) {
                meta.machines.push(m);
            }
        }
        if r.meta.zone.zone != meta.zone.zone {
            meta.zone.detail = format!("{}; other runs used {}", meta.zone.detail, r.meta.zone.zone);
        }
        meta.inputs.extend(r.meta.inputs);
        meta.skipped_files.extend(r.meta.skipped_files);
        meta.diagnostics.extend(r.meta.diagnostics);
        if r.meta.since_ms != meta.since_ms || r.meta.until_ms != meta.until_ms {
            meta.since_ms = None;
            meta.until_ms = None;
        }
    }
    meta.machines.sort();
    known.retain(|m, _| !unknown.contains(m));
    meta.machine_requests = known;
    let t = std::time::Instant::now();
    let events = events.sort_stacked().map_err(tab)?;
    crate::timings::timing("merge: sort", t);
    Ok(Run { meta, events, traffic, unloaded })
}
