//! Command-line surface (clap derive types only; no logic).
//!
//! Input: argv. Output: `Cli`. Invariant: every option documented here is documented in the
//! README's CLI section with the same words.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "upcause",
    version,
    about = "Root causes of nginx upstream failures (502, 503, 504, 499) from nginx and PHP-FPM logs",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read logs, tag every upstream failure with its cause, write reports.
    Analyze(AnalyzeArgs),
    /// Compare two runs (or two time windows of one set of inputs): what changed most.
    Compare(CompareArgs),
    /// One row per run per cause, runs ordered by their time ranges, with a trend chart.
    History(HistoryArgs),
    /// Merge run directories from several hosts into one run, without reading logs again.
    Merge(MergeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct AnalyzeArgs {
    /// Log files, directories (read recursively) and quoted globs: nginx access and error
    /// logs, PHP-FPM logs and slow logs, plain or gzip, rotated sets included.
    pub paths: Vec<String>,

    /// Output directory [default: reports/<name>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Run name, used for the default output directory [default: the first input's name].
    #[arg(long)]
    pub name: Option<String>,

    /// Zone of the zone-less nginx error-log and FPM timestamps: an IANA name
    /// (Europe/Berlin), UTC or +HH:MM [default: the offset seen in the access logs, else the
    /// machine's zone].
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,

    /// How far the FPM logs' clock runs ahead of nginx's, in seconds (negative: behind), taken
    /// off every FPM stamp; 0 reads them as logged [default: found from the moments FPM ended
    /// a worker and nginx logged the failure, when they line up at another shift].
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    pub fpm_clock: Option<i64>,

    /// Only lines at or after this time (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS]] in the zone).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only lines before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Worker threads [default: the number of CPUs].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// Access-log format, as nginx's log_format string, optionally for matching files only:
    /// '[GLOB=]FORMAT' (e.g. 'shop*.log=$remote_addr ...'). Repeatable. The GLOB part must
    /// contain one of * ? [ . / so it is not mistaken for the start of a format.
    #[arg(long = "log-format", value_name = "[GLOB=]FORMAT")]
    pub log_format: Vec<String>,

    /// Read log_format and access_log directives from this nginx configuration (following
    /// include) and give each access log its format.
    #[arg(long, value_name = "FILE")]
    pub nginx_conf: Option<PathBuf>,

    /// Host name recorded in the run (for `merge` of runs from several machines)
    /// [default: this machine's host name].
    #[arg(long)]
    pub host: Option<String>,

    /// Timeline bucket: 10s, 1m or 5m [default: chosen from the time span].
    #[arg(long, value_name = "WIDTH")]
    pub bucket: Option<String>,

    /// Gap (seconds) without failing requests that ends a burst of failures.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub incident_gap: u64,

    /// Fewest failing requests that make an incident.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub min_failures: usize,

    /// The chance that the background failure rate alone makes one false incident anywhere
    /// in the run: lower reports fewer, smaller bursts.
    #[arg(long, value_name = "P", default_value_t = 0.01)]
    pub sensitivity: f64,

    /// Rows per frequency table in the HTML report before "others".
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub top: usize,

    /// Extra URI folding rule for by_uri: 'REGEX=>REPLACEMENT' (repeatable; applied after the
    /// built-in rules).
    #[arg(long = "uri-rule", value_name = "RULE")]
    pub uri_rule: Vec<String>,

    /// No progress bar and no terminal summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Size of the parallel chunks of plain files (tests use small chunks to exercise
    /// chunk boundaries).
    #[arg(long, value_name = "BYTES", hide = true)]
    pub chunk_bytes: Option<usize>,
}

impl Default for AnalyzeArgs {
    /// The defaults clap gives (a derived `Default` gave 0 for every number: an incident gap
    /// of 1 s and one row per table in `compare`'s window mode).
    fn default() -> Self {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            a: AnalyzeArgs,
        }
        Wrap::parse_from(["upcause"]).a
    }
}

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// Two run directories (A = baseline, B), or with --window-a/--window-b the log inputs.
    #[arg(required = true)]
    pub paths: Vec<String>,

    /// Window mode: analyse the inputs once and compare window A (`START..END`, times as for
    /// --since) with window B.
    #[arg(long, value_name = "START..END", requires = "window_b")]
    pub window_a: Option<String>,

    #[arg(long, value_name = "START..END", requires = "window_a")]
    pub window_b: Option<String>,

    /// Output directory [default: reports/compare-<A>-<B>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Window mode: zone of zone-less stamps (as for analyze).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,

    /// Window mode: access-log format (as for analyze).
    #[arg(long = "log-format", value_name = "[GLOB=]FORMAT")]
    pub log_format: Vec<String>,

    /// Window mode: nginx configuration with log_format/access_log (as for analyze).
    #[arg(long, value_name = "FILE")]
    pub nginx_conf: Option<PathBuf>,

    /// Worker threads (window mode).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct HistoryArgs {
    /// Run directories written by `analyze` or `merge`.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,

    /// Output directory [default: reports/history].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// Run directories written by `analyze` on each host.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,

    /// Output run directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[arg(long, short = 'q')]
    pub quiet: bool,
}
