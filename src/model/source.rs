//! Input files: what kind of log a file holds, how it is compressed, where it sits in its
//! rotation set, and the per-file accounting every run reports.
//!
//! Input: nothing (vocabulary). Output: `LogSource` (built by `discover`) and `FileStats`
//! (filled by `scan`). Invariant: for every file, `lines == parsed + malformed + skipped`.

use super::cause::string_enum;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

string_enum! {
    pub enum LogKind {
        NginxAccess => "nginx_access",
        NginxError => "nginx_error",
        FpmMaster => "fpm_master",
        FpmSlow => "fpm_slow",
        Unknown => "unknown",
    }
}

string_enum! {
    pub enum Compression {
        Plain => "plain",
        Gzip => "gzip",
    }
}

/// One input file, as discovered.
#[derive(Clone, Debug)]
pub struct LogSource {
    /// Index into the run's source list (stable: sources are sorted before ids are given).
    pub id: u32,
    pub path: PathBuf,
    /// The path as shown in reports (relative to where the user pointed, when possible).
    pub display: String,
    pub kind: LogKind,
    pub compression: Compression,
    /// Size on disk (compressed size for gzip).
    pub size: u64,
    /// Rotation set (the current file's name, e.g. `error.log`) and age rank within it
    /// (0 = current, higher = older).
    pub set: String,
    pub age: u64,
    /// Index into the run's compiled access-log formats (access logs only).
    pub format: Option<usize>,
    /// Why the kind was chosen (content sniff, name hint, format mapping).
    pub kind_reason: String,
}

/// A malformed line kept as an example.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    pub line: u64,
    pub text: String,
}

/// Accounting for one file. Every physical line is exactly one of parsed, malformed or
/// skipped (blank lines, NUL padding, lines outside `--since`/`--until`).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct FileStats {
    /// Bytes read (decompressed bytes for gzip).
    pub bytes: u64,
    pub lines: u64,
    pub parsed: u64,
    pub malformed: u64,
    pub skipped: u64,
    /// First malformed lines (capped).
    pub malformed_samples: Vec<Sample>,
}

pub const MAX_SAMPLES: usize = 5;

impl FileStats {
    pub fn add(&mut self, o: &FileStats) {
        self.bytes += o.bytes;
        self.lines += o.lines;
        self.parsed += o.parsed;
        self.malformed += o.malformed;
        self.skipped += o.skipped;
        for s in &o.malformed_samples {
            if self.malformed_samples.len() < MAX_SAMPLES {
                self.malformed_samples.push(s.clone());
            }
        }
    }

    pub fn reconciles(&self) -> bool {
        self.lines == self.parsed + self.malformed + self.skipped
    }
}
