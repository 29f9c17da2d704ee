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
        /// PHP's own error log (`error_log` in php.ini or the pool).
        PhpError => "php_error",
        /// Records of several kinds, or records inside envelopes (a container's stdout and
        /// stderr, `/var/log/syslog`, a journal export): the kind is decided per record.
        Mixed => "mixed",
        Unknown => "unknown",
    }
}

string_enum! {
    /// What a record was wrapped in on its way to the file (README, Inputs).
    pub enum Envelope {
        /// Docker's json-file driver: `{"log":"...\n","stream":"stderr","time":"..."}`.
        DockerJson => "docker-json",
        /// Kubernetes CRI (containerd, CRI-O): `2026-11-22T02:00:09.1Z stdout F <line>`.
        Cri => "cri",
        /// `docker compose logs`: `nginx-1  | <line>`.
        Compose => "compose",
        /// `docker logs -t`: an RFC 3339 stamp, then the line.
        DockerTimestamps => "docker-timestamps",
        /// Syslog as files keep it (RFC 3164, rsyslog's RFC 3339 stamps, `journalctl -o
        /// short`, `short-iso`, `short-precise`): `Nov 22 02:00:09 web1 nginx: <line>`.
        Syslog => "syslog",
        /// RFC 5424: `<190>1 2026-11-22T02:00:09.1+01:00 web1 nginx - - - <line>`.
        Syslog5424 => "syslog-5424",
        /// `journalctl -o json`: `{"MESSAGE":"...","SYSLOG_IDENTIFIER":"nginx",...}`.
        JournalJson => "journal-json",
    }
}

string_enum! {
    /// The container stream a record came from.
    pub enum Stream {
        Stdout => "stdout",
        Stderr => "stderr",
    }
}

/// Where a record came from, when an envelope said so (kept as event columns).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    pub envelope: Envelope,
    /// Container (compose service, CRI container from the path, Docker container id from the
    /// path), or syslog / journal program (`nginx`, `php-fpm`).
    pub name: Option<String>,
    pub stream: Option<Stream>,
    /// The host a syslog or journal header names.
    pub host: Option<String>,
}

string_enum! {
    pub enum Compression {
        Plain => "plain",
        Gzip => "gzip",
        Zstd => "zstd",
        Xz => "xz",
        Bzip2 => "bzip2",
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
    /// Size on disk (compressed size for compressed files).
    pub size: u64,
    /// Rotation set (the current file's name, e.g. `error.log`) and age rank within it
    /// (0 = current, higher = older).
    pub set: String,
    pub age: u64,
    /// Index into the run's compiled access-log formats (access logs only).
    pub format: Option<usize>,
    /// Mixed files: further formats some of its access lines fit (two vhosts logging in
    /// different formats to one container stream), tried after `format`.
    pub more_formats: Vec<usize>,
    /// Why the kind was chosen (content sniff, name hint, format mapping).
    pub kind_reason: String,
    /// For `Mixed` files: the envelope most records carry (tried first on each line).
    pub envelope: Option<Envelope>,
    /// The container a path names (`/var/lib/docker/containers/<id>/<id>-json.log`,
    /// `/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log`).
    pub container: Option<String>,
    /// Year of year-less syslog stamps: (year, month) of a reference stamp, and where it came
    /// from (said in a diagnostic).
    pub year_ref: Option<(i32, u32, &'static str)>,
    /// Access logs whose lines fit their format only as a prefix: how many fields follow it
    /// (said in a diagnostic: those fields are not read).
    pub extra_fields: u32,
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
    /// Of `skipped`: lines of other programs or of no log kind upcause reads (other daemons
    /// in a syslog file, a container's start-up messages).
    pub other: u64,
    /// Of `parsed`: access lines that fit their format only because fields follow its end
    /// (those fields are not read).
    pub prefix_fit: u64,
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
        self.other += o.other;
        self.prefix_fit += o.prefix_fit;
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
