//! Run metadata: what `summary.json` records of a run and what a stored run is reloaded
//! from, the run-directory schema version, and the options that shape a run's reports.
//!
//! Input: nothing (a leaf of `model`: `aggregate`, which builds runs, and `render`, which
//! writes them, both use it; it imports neither). Output: serde types. Invariants: field
//! names are the documented `summary.json` keys; a field added later has a serde default, so
//! older runs of the same schema version still load.

use super::{Diagnostic, Sample, Ts, Zone};
use serde::{Deserialize, Serialize};

/// Version of the run-directory layout (`summary.json` `schema_version`); bumped when a
/// column or file changes meaning, checked by `compare`, `history` and `merge`.
pub const SCHEMA_VERSION: u32 = 2;

/// `--min-failures` and `--sensitivity` by default (README "Incidents").
pub const DEFAULT_MIN_FAILURES: usize = 3;
pub const DEFAULT_SENSITIVITY: f64 = 0.01;

/// The options that shape a run's reports (from the command line; kept in `RunMeta` so
/// `merge` and `compare` recompute the reports the same way).
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub name: String,
    pub host: String,
    pub bucket_s: Option<i64>,
    pub incident_gap_s: i64,
    pub min_failures: usize,
    pub sensitivity: f64,
    pub top: usize,
    pub uri_rules: Vec<(regex::Regex, String)>,
}

/// Per input file, as recorded in summary.json.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InputMeta {
    pub path: String,
    #[serde(default)]
    pub machine: String,
    pub kind: String,
    pub compression: String,
    pub size: u64,
    pub rotation_set: String,
    pub format: Option<String>,
    pub kind_reason: String,
    pub bytes: u64,
    pub lines: u64,
    pub parsed: u64,
    pub malformed: u64,
    pub skipped: u64,
    /// Of `skipped`: lines of other programs (mixed files).
    #[serde(default)]
    pub other: u64,
    /// Of `parsed`: access lines that fit their format only as a prefix.
    #[serde(default)]
    pub prefix_fit: u64,
    /// The envelope most records of a mixed file carry.
    #[serde(default)]
    pub envelope: Option<String>,
    pub first: Option<String>,
    pub last: Option<String>,
    pub malformed_samples: Vec<Sample>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ZoneMeta {
    /// Parseable by `Zone::parse` (IANA name or fixed offset).
    pub zone: String,
    pub chosen_by: String,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

/// Metadata of a run: the part of summary.json a stored run is reloaded from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunMeta {
    pub schema_version: u32,
    pub upcause_version: String,
    pub name: String,
    /// Machines whose logs the run covers (one for `analyze`, several after `merge`).
    pub machines: Vec<String>,
    pub zone: ZoneMeta,
    /// `--since` / `--until` as milliseconds.
    pub since_ms: Option<Ts>,
    pub until_ms: Option<Ts>,
    pub inputs: Vec<InputMeta>,
    pub skipped_files: Vec<SkippedFile>,
    pub diagnostics: Vec<Diagnostic>,
    /// Options that shape the reports, kept so `merge` recomputes them the same way.
    pub incident_gap_s: i64,
    #[serde(default = "default_min_failures")]
    pub min_failures: usize,
    #[serde(default = "default_sensitivity")]
    pub sensitivity: f64,
    pub bucket_s: Option<i64>,
    pub top: usize,
    pub uri_rules: Vec<String>,
    /// A merged run's requests per machine (`merge`: each run's total before its counters
    /// were added); a machine of a run loaded whole from a merge has none. Not stored: a run
    /// of one machine has its counters' total.
    #[serde(skip)]
    pub machine_requests: std::collections::BTreeMap<String, u64>,
}

fn default_min_failures() -> usize {
    DEFAULT_MIN_FAILURES
}

fn default_sensitivity() -> f64 {
    DEFAULT_SENSITIVITY
}

impl RunMeta {
    pub fn zone(&self) -> Zone {
        Zone::parse(&self.zone.zone).unwrap_or(Zone::Fixed(0))
    }
}
