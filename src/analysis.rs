//! `Analysis`: everything computed from the logs up to correlation, before anything is
//! written: the sources, the scan's output, the correlation, the zone and the diagnostics.
//!
//! Input: built by `crate::analyze`. Output: read by `aggregate` (the run model) and the exit
//! policy. Invariant: a data type of the pipeline, not its wiring: stages after correlation
//! import this module, never `lib.rs`.

use crate::model::{Diagnostic, LogSource, Ts};
use crate::zone_choice::ZoneChoice;
use crate::{correlate, parse, scan};

/// Everything computed from the logs, before anything is written.
pub struct Analysis {
    pub sources: Vec<LogSource>,
    pub formats: Vec<parse::access::AccessFormat>,
    pub skipped: Vec<(String, String)>,
    pub zone: ZoneChoice,
    pub since: Option<Ts>,
    pub until: Option<Ts>,
    pub scan: scan::ScanOutput,
    pub corr: correlate::Correlation,
    pub diags: Vec<Diagnostic>,
}

impl Analysis {
    /// Drop the event rows and their verdicts (after they were turned into a `Run`); the
    /// accounting, diagnostics and everything `exit_code` needs stay.
    pub fn release_events(&mut self) {
        self.scan.requests = Vec::new();
        self.scan.errors = Vec::new();
        self.scan.fpm = Vec::new();
        self.corr = correlate::Correlation::default();
    }

    /// First and last instant of any parsed line.
    pub fn range(&self) -> Option<(Ts, Ts)> {
        self.scan.ranges.iter().flatten().fold(None, |acc, &(a, b)| match acc {
            None => Some((a, b)),
            Some((x, y)) => Some((x.min(a), y.max(b))),
        })
    }

    /// Exit code (`exit::code`).
    pub fn exit_code(&self) -> i32 {
        crate::exit::code(&self.diags, &self.scan.stats)
    }
}
