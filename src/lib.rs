//! upcause: root causes of nginx upstream failures from nginx and PHP-FPM logs.
//!
//! The pipeline (DESIGN.md), one module per stage, data flowing one way:
//!
//! ```text
//! Config ─discover─▶ Vec<LogSource> ─open─▶ Haystack ─chunk─▶ byte ranges
//!   ─parse─▶ AccessLine | ErrorLine | FpmLine      (borrowed, never stored)
//!   ─classify─▶ signature + cause class             (aho-corasick, built once)
//!   ─scan (rayon fold/reduce)─▶ ScanOutput           (owned rows only for events)
//!   ─correlate─▶ tagged requests + incidents
//!   ─aggregate (polars)─▶ Tables ─render─▶ reports/<run>/{csv, json, parquet, html}
//! ```
//!
//! Input: a validated `Config`. Output: a run directory and an exit code (0 ok, 1 fatal,
//! 2 finished with diagnostics). Invariants: the same input gives byte-identical reports
//! whatever `--jobs` (only `generated_at` in summary.json differs between runs).

#[cfg(feature = "reports")]
pub mod aggregate;
pub mod alloc;
pub mod analysis;
pub mod chunk;
pub mod classify;
pub mod cli;
#[cfg(feature = "reports")]
pub mod commands;
pub mod config;
pub mod correlate;
pub mod discover;
pub mod exit;
pub mod memstats;
pub mod model;
pub mod open;
pub mod parse;
pub mod progress;
#[cfg(feature = "reports")]
pub mod render;
pub mod scan;
pub mod timings;
pub mod unwrap;
pub mod zone_choice;

pub use analysis::Analysis;
use config::Config;
pub use model::Ts;
use model::{Diagnostic, Severity, Zone};
use timings::timing;
pub use zone_choice::{choose_zone, ZoneChoice};

/// Errors that end a run (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Discover(#[from] discover::DiscoverError),
    #[error(transparent)]
    Table(#[from] classify::TableError),
    #[error("no readable nginx or PHP-FPM log among the inputs ({0}); pass the directory holding access.log and error.log, or set the format with --log-format")]
    NothingReadable(String),
    #[error("{0}: give an RFC 3339 time or YYYY-MM-DD[ HH:MM[:SS]]")]
    Time(String),
    #[cfg(feature = "reports")]
    #[error(transparent)]
    Render(#[from] render::RenderError),
    #[cfg(feature = "reports")]
    #[error(transparent)]
    Store(#[from] aggregate::store::StoreError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot start {0} worker threads: {1}")]
    Threads(usize, String),
}

fn parse_bound(v: Option<&str>, zone: &Zone, what: &str) -> Result<Option<Ts>, Error> {
    v.map(|s| model::time::parse_user_time(s, zone).ok_or_else(|| Error::Time(format!("{what} {s:?}")))).transpose()
}

/// Run every stage up to correlation.
pub fn analyze(cfg: &mut Config, show_progress: bool) -> Result<Analysis, Error> {
    analyze_with(cfg, show_progress, |_| Ok(()))
}

/// `analyze`, with `beside` run on the scan's output while its failures are correlated
/// (correlation is serial: `beside` has the other cores).
pub fn analyze_with(
    cfg: &mut Config,
    show_progress: bool,
    beside: impl FnOnce(&scan::ScanOutput) -> Result<(), Error> + Send,
) -> Result<Analysis, Error> {
    let classifier = classify::Classifier::new()?;
    let t = std::time::Instant::now();
    let found = discover::discover(&cfg.inputs, &mut cfg.formats)?;
    timing("discover", t);
    let mut diags = found.diags;
    if found.sources.is_empty() {
        let why = if found.skipped.is_empty() {
            "nothing found".to_string()
        } else {
            let s: Vec<String> = found.skipped.iter().take(5).map(|(p, r)| format!("{p}: {r}")).collect();
            format!("skipped: {}", s.join("; "))
        };
        return Err(Error::NothingReadable(why));
    }
    let mut zone = choose_zone(cfg.tz.as_ref(), &found.head_offsets, &found.head_stamps);
    let bounds = |z: &Zone| -> Result<(Option<Ts>, Option<Ts>), Error> {
        Ok((parse_bound(cfg.since.as_deref(), z, "--since")?, parse_bound(cfg.until.as_deref(), z, "--until")?))
    };
    let (mut since, mut until) = bounds(&zone.zone)?;
    let total: u64 = found.sources.iter().map(|s| s.size).sum();
    let formats = cfg.formats.formats.clone();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.jobs)
        .build()
        .map_err(|e| Error::Threads(cfg.jobs, e.to_string()))?;
    let scan_with = |zone: &Zone, since: Option<Ts>, until: Option<Ts>, fpm_clock_s: i64| {
        let bar = progress::bar(show_progress, total);
        let progress = |n: u64| {
            if let Some(b) = &bar {
                b.inc(n)
            }
        };
        // Quiet error-log rows (most of a production error log) go to a temporary file during
        // the scan rather than into memory (`scan::quiet`).
        let quiet = scan::quiet::Sink::new(std::env::temp_dir(), classifier.signature_ids());
        let ctx = scan::ScanCtx {
            sources: &found.sources,
            formats: &formats,
            classifier: &classifier,
            zone,
            since,
            until,
            progress: &progress,
            chunk_size: cfg.chunk_bytes,
            quiet: Some(&quiet),
            fpm_clock_ms: fpm_clock_s.saturating_mul(1000),
        };
        let t = std::time::Instant::now();
        let out = pool.install(|| scan::scan(&ctx));
        timing("scan", t);
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        out
    };
    let mut fpm_clock = cfg.fpm_clock_s.unwrap_or(0);
    let mut out = scan_with(&zone.zone, since, until, fpm_clock);
    // Each finding below reads the logs again, which costs a second scan, but only on logs
    // whose joins would otherwise miss by the difference.
    let zoneless =
        found.sources.iter().any(|s| !matches!(s.kind, model::LogKind::NginxAccess | model::LogKind::Unknown));
    let seen_in = |o: &scan::ScanOutput| -> std::collections::BTreeMap<i32, u64> {
        o.offsets.iter().map(|(o, s)| (*o, s.lines)).collect()
    };
    // The (instant, offset) samples the zone was chosen from.
    let mut known = found.head_stamps.clone();
    // A daylight-saving change the files' first lines did not show (inside a compressed
    // file): the zone the offsets and instants the scan saw name.
    if zoneless && zone_choice::check_offsets(&zone, &found.head_offsets, &known, &seen_in(&out)).is_some() {
        let mut samples = known.clone();
        samples.extend(
            out.offsets.iter().flat_map(|(&o, s)| [(s.first.div_euclid(1000), o), (s.last.div_euclid(1000), o)]),
        );
        if let Some(again) = zone_choice::after_scan(&zone, &found.head_offsets, &samples) {
            zone = again;
            known = samples;
            (since, until) = bounds(&zone.zone)?;
            drop(out);
            out = scan_with(&zone.zone, since, until, fpm_clock);
        }
    }
    // FPM's clock off from nginx's (`correlate::skew`).
    if cfg.fpm_clock_s.is_none() {
        let t = std::time::Instant::now();
        let skew = correlate::skew::fpm_clock(&out.errors, &out.fpm);
        timing("fpm clock", t);
        if let Some(k) = skew {
            fpm_clock = k.ahead_s;
            drop(out);
            out = scan_with(&zone.zone, since, until, fpm_clock);
            diags.push(skew_warning(&k, &found.sources));
        }
    }
    diags.extend(out.diags.iter().cloned());
    // Only where some log has zone-less stamps (an error, FPM or mixed log).
    if zoneless {
        diags.extend(zone_choice::check_offsets(&zone, &found.head_offsets, &known, &seen_in(&out)));
    }
    if out.ambiguous_stamps + out.gap_stamps > 0 {
        diags.push(Diagnostic {
            severity: Severity::Warning,
            file: "(all zone-less logs)".into(),
            line: None,
            offset: None,
            message: format!(
                "{} stamps fell in a repeated hour (read as its first pass, or its second once the log had passed the first) and {} in a skipped hour of {} (daylight saving)",
                out.ambiguous_stamps, out.gap_stamps, zone.zone
            ),
        });
    }
    // Lines stamped far from the rest (a broken clock): still analysed, but named, since
    // the timeline leaves them out (`model::span`).
    if let Some(core) = out.profile().core() {
        diags.extend(out.far_off(core, &found.sources, &zone.zone));
    }
    let (corr, side) = pool.install(|| {
        rayon::join(
            || {
                let t = std::time::Instant::now();
                let corr =
                    correlate::correlate(&correlate::Input { sources: &found.sources, scan: &out, zone: &zone.zone });
                timing("correlate", t);
                corr
            },
            || beside(&out),
        )
    });
    side?;
    Ok(Analysis { sources: found.sources, formats, skipped: found.skipped, zone, since, until, scan: out, corr, diags })
}

/// The warning of an FPM clock found off from nginx's and taken off.
fn skew_warning(k: &correlate::skew::Skew, sources: &[model::LogSource]) -> Diagnostic {
    // The FPM logs' rotation sets (a set's files share the clock).
    let mut fpm: Vec<&str> = sources
        .iter()
        .filter(|s| matches!(s.kind, model::LogKind::FpmMaster | model::LogKind::FpmSlow))
        .map(|s| s.set.as_str())
        .collect();
    fpm.sort_unstable();
    fpm.dedup();
    let span = correlate::skew::span_text(k.ahead_s.abs());
    let (way, back) = if k.ahead_s > 0 { ("ahead of", "earlier") } else { ("behind", "later") };
    Diagnostic {
        severity: Severity::Warning,
        file: if fpm.is_empty() { "(the FPM logs)".into() } else { fpm.join(", ") },
        line: None,
        offset: None,
        message: format!(
            "the FPM log's stamps run {span} {way} nginx's: {} of {} moments FPM ended a worker (a signal, a request timeout) line up with an nginx upstream failure once read {span} {back}, {} as logged (FPM in another time zone, or its clock off); its stamps were read {span} {back} (--fpm-clock {} says so, --fpm-clock 0 reads them as logged)",
            k.matched, k.anchors, k.as_logged, k.ahead_s
        ),
    }
}

/// The report options of a configuration.
#[cfg(feature = "reports")]
pub fn render_options(cfg: &Config) -> render::RenderOptions {
    render::RenderOptions {
        out_dir: cfg.out_dir.clone(),
        run: model::meta::RunOptions {
            name: cfg.name.clone(),
            host: cfg.host.clone(),
            bucket_s: cfg.bucket_s,
            incident_gap_s: cfg.incident_gap_s,
            min_failures: cfg.min_failures,
            sensitivity: cfg.sensitivity,
            top: cfg.top,
            uri_rules: cfg.uri_rules.clone(),
        },
    }
}

/// `upcause analyze`: analyse, write every report, print the summary. Returns the exit code.
#[cfg(feature = "reports")]
pub fn run_analyze(mut cfg: Config) -> Result<i32, Error> {
    // The report stage runs on polars' own pool, sized by `--jobs` here (before polars or any
    // worker starts) unless the user set it: a pool of our own beside it had 2 x jobs threads
    // competing for the cores, and each polars call from it had to cross into polars' pool.
    if std::env::var_os("POLARS_MAX_THREADS").is_none() {
        std::env::set_var("POLARS_MAX_THREADS", cfg.jobs.to_string());
    }
    let progress = !cfg.quiet;
    let opts = render_options(&cfg);
    // The counter files need only the scan: written while its failures are correlated.
    let counters = |out: &scan::ScanOutput| render::write_counters(&out.traffic, &opts.out_dir).map_err(Error::from);
    let mut a = analyze_with(&mut cfg, progress, counters)?;
    let table = |e| render::RenderError::Table { table: "report".into(), source: e };
    let (run, report) = polars_core::runtime::THREAD_POOL.install(|| -> Result<_, Error> {
        let t = std::time::Instant::now();
        let run = aggregate::run::Run::from_analysis(&mut a, &opts.run).map_err(table)?;
        // The events now live in the run's tables: free the scan's copies before the report
        // tables and files are built (the peak of a run is there).
        a.release_events();
        timing("run model", t);
        // errors.csv and fpm.csv need no incident: written from the run's events while
        // incidents are detected (serial) and the other files are built.
        let (logs, report) = rayon::join(
            || -> Result<(), Error> {
                let t = std::time::Instant::now();
                render::write_logs(&run.events, &opts.out_dir)?;
                timing("write logs", t);
                Ok(())
            },
            || -> Result<_, Error> {
                let t = std::time::Instant::now();
                let detected = aggregate::report::detect(&run).map_err(table)?;
                // events.parquet (most of the output) needs only the events with their
                // incidents: written while the other tables are built (mostly serial polars
                // work) and written, not after them. The events' frames are shared by the
                // two sides (a clone shares their columns).
                let events = detected.events.clone();
                let (files, report) = rayon::join(
                    || -> Result<(), Error> {
                        let t = std::time::Instant::now();
                        render::write_events(&events, &opts.out_dir)?;
                        timing("write rows", t);
                        Ok(())
                    },
                    || -> Result<_, Error> {
                        let (tables, digest) = aggregate::report::tables(&run, &detected).map_err(table)?;
                        timing("report tables", t);
                        let report = detected.into_report(tables, digest);
                        let t = std::time::Instant::now();
                        render::write_tables(&run, &report, &opts.out_dir)?;
                        timing("write", t);
                        Ok(report)
                    },
                );
                files?;
                report
            },
        );
        logs?;
        let report = report?;
        Ok((run, report))
    })?;
    if !cfg.quiet {
        render::terminal::print(&render::terminal::render(&run, &report, &opts.out_dir))?;
    }
    Ok(a.exit_code())
}
