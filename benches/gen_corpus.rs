//! Deterministic corpus generator for the end-to-end bench (`benches/run.sh`) and the noisy
//! week (`tests/it/week.rs`): see `corpus.rs` for what it writes.
//!
//! Usage: cargo run --release --example gen_corpus -- OUT_DIR [SIZE_MB] [SEED]
//!   [--days N] [--outages N] [--background-per-hour X] [--quiet] [--one-client] [--far-stamps] [--plain]
//!   [--start YYYY-MM-DD] [--fpm-clock SECS]
//! `--quiet`: the error log of the first fixtures (few lines besides the failures). `--start`:
//! the first day (default 2026-11-26); stamps follow central European summer time.
//! `--fpm-clock`: FPM's clock runs SECS ahead of nginx's (negative: behind), as when its
//! container has another zone or its host's clock drifted.

#[path = "corpus.rs"]
mod corpus;

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = corpus::Config::default();
    let mut pos = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let val = |i: usize| {
            args.get(i + 1).and_then(|v| v.parse::<f64>().ok()).unwrap_or_else(|| panic!("{} needs a number", args[i]))
        };
        match args[i].as_str() {
            "--days" => (cfg.days, i) = (val(i) as i64, i + 1),
            // The first day, YYYY-MM-DD (UTC midnight): before the last Sunday of October the
            // corpus crosses the end of summer time.
            "--start" => {
                let d: Vec<i64> =
                    args.get(i + 1).map(|v| v.split('-').filter_map(|x| x.parse().ok()).collect()).unwrap_or_default();
                assert!(d.len() == 3, "--start needs YYYY-MM-DD");
                cfg.start = upcause::model::time::days_from_civil(d[0], d[1] as u32, d[2] as u32) * 86_400;
                i += 1;
            }
            "--fpm-clock" => (cfg.fpm_clock_s, i) = (val(i) as i64, i + 1),
            "--outages" => (cfg.outages, i) = (val(i) as usize, i + 1),
            "--background-per-hour" => (cfg.background_per_hour, i) = (val(i), i + 1),
            "--quiet" => cfg.noisy = false,
            "--one-client" => cfg.one_client = true,
            "--far-stamps" => cfg.far_stamps = true,
            "--plain" => cfg.gzip = false,
            a => pos.push(a.to_string()),
        }
        i += 1;
    }
    let out = PathBuf::from(pos.first().map(String::as_str).unwrap_or("bench-corpus"));
    if let Some(s) = pos.get(1).and_then(|s| s.parse().ok()) {
        cfg.size_mb = s;
    }
    if let Some(s) = pos.get(2).and_then(|s| s.parse().ok()) {
        cfg.seed = s;
    }
    let truth = corpus::generate(&out, &cfg);
    eprintln!("wrote {} requests into {}", truth["requests"], out.display());
}
