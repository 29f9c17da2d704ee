//! Validated run configuration.
//!
//! Input: the parsed `analyze` options. Output: `Config` (formats compiled, zone parsed,
//! output directory chosen). Invariants: every option error is found here, before any log
//! is read, and names the option and what to do about it (exit code 1).

use crate::cli::AnalyzeArgs;
use crate::discover::FormatSet;
use crate::model::Zone;
use crate::parse::access::{AccessFormat, COMBINED};
use crate::parse::nginx_conf;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--tz: {0}")]
    Zone(String),
    #[error("--log-format {value:?}: {msg}")]
    Format { value: String, msg: String },
    #[error("--nginx-conf: {0}")]
    Conf(#[from] nginx_conf::ConfError),
    #[error("--nginx-conf {path}: log_format {name:?}: {msg}")]
    ConfFormat { path: String, name: String, msg: String },
    #[error("--bucket {0:?}: expected a width such as 10s, 1m or 5m")]
    Bucket(String),
    #[error("--jobs 0: give at least 1 thread")]
    Jobs,
    #[error(
        "no input given; pass log files or directories, e.g. `upcause analyze /var/log/nginx /var/log/php-fpm.log*`"
    )]
    NoInputs,
    #[error("--uri-rule {0:?}: {1}")]
    UriRule(String, String),
}

pub struct Config {
    pub inputs: Vec<String>,
    pub out_dir: PathBuf,
    pub name: String,
    pub tz: Option<Zone>,
    /// `--fpm-clock`: seconds FPM's stamps run ahead of nginx's (None: found from the logs).
    pub fpm_clock_s: Option<i64>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub jobs: usize,
    pub formats: FormatSet,
    pub quiet: bool,
    pub host: String,
    /// Timeline bucket in seconds (None: chosen from the span).
    pub bucket_s: Option<i64>,
    pub incident_gap_s: i64,
    pub min_failures: usize,
    pub sensitivity: f64,
    pub top: usize,
    pub uri_rules: Vec<(regex::Regex, String)>,
    pub chunk_bytes: usize,
}

/// `10s`, `1m`, `5m`, `1h` to seconds.
pub fn parse_bucket(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    Some(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    })
}

/// Split `GLOB=FORMAT`: the part before the first `=` is a glob only if it has no `$`, no
/// space and contains one of `* ? [ . /` (so `rt=$request_time ...` stays a format).
pub fn split_format_arg(v: &str) -> (Option<&str>, &str) {
    if let Some((g, f)) = v.split_once('=') {
        let globby = g.contains(['*', '?', '[', '.', '/']);
        if globby && !g.contains('$') && !g.contains(' ') && !g.is_empty() {
            return (Some(g), f);
        }
    }
    (None, v)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Build the format set from `--log-format` values and `--nginx-conf`.
pub fn build_formats(values: &[String], conf: Option<&PathBuf>) -> Result<FormatSet, ConfigError> {
    let mut fs = FormatSet::default();
    for (i, v) in values.iter().enumerate() {
        let (glob, src) = split_format_arg(v);
        let src = if src == "combined" { COMBINED } else { src };
        let f = AccessFormat::compile(&format!("format{}", i + 1), src)
            .map_err(|e| ConfigError::Format { value: v.clone(), msg: e.to_string() })?;
        fs.add_explicit(glob, f).map_err(|msg| ConfigError::Format { value: v.clone(), msg })?;
    }
    if let Some(p) = conf {
        let c = nginx_conf::read(p)?;
        let mut compiled = std::collections::HashMap::new();
        compiled
            .insert("combined".to_string(), AccessFormat::compile("combined", COMBINED).expect("combined compiles"));
        for (name, src) in &c.formats {
            let f = AccessFormat::compile(name, src).map_err(|e| ConfigError::ConfFormat {
                path: p.display().to_string(),
                name: name.clone(),
                msg: e.to_string(),
            })?;
            compiled.insert(name.clone(), f);
        }
        for (path, name) in &c.access_logs {
            if let Some(f) = compiled.get(name) {
                fs.add_conf(path, f.clone());
            }
        }
    }
    Ok(fs)
}

impl Config {
    pub fn from_args(a: &AnalyzeArgs) -> Result<Config, ConfigError> {
        if a.paths.is_empty() {
            return Err(ConfigError::NoInputs);
        }
        let tz = a.tz.as_deref().map(Zone::parse).transpose().map_err(ConfigError::Zone)?;
        let formats = build_formats(&a.log_format, a.nginx_conf.as_ref())?;
        if a.jobs == Some(0) {
            return Err(ConfigError::Jobs);
        }
        let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        let bucket_s =
            a.bucket.as_deref().map(|b| parse_bucket(b).ok_or_else(|| ConfigError::Bucket(b.into()))).transpose()?;
        let name = a.name.clone().unwrap_or_else(|| default_name(&a.paths[0]));
        let out_dir = a.out.clone().unwrap_or_else(|| PathBuf::from("reports").join(&name));
        let uri_rules = a
            .uri_rule
            .iter()
            .map(|r| {
                let (re, rep) = r
                    .split_once("=>")
                    .ok_or_else(|| ConfigError::UriRule(r.clone(), "expected REGEX=>REPLACEMENT".into()))?;
                let re = regex::Regex::new(re).map_err(|e| ConfigError::UriRule(r.clone(), e.to_string()))?;
                Ok((re, rep.to_string()))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Config {
            inputs: a.paths.clone(),
            out_dir,
            name,
            tz,
            fpm_clock_s: a.fpm_clock,
            since: a.since.clone(),
            until: a.until.clone(),
            jobs,
            formats,
            quiet: a.quiet,
            host: a.host.clone().unwrap_or_else(hostname),
            bucket_s,
            incident_gap_s: a.incident_gap.max(1) as i64,
            min_failures: a.min_failures.max(1),
            sensitivity: if a.sensitivity > 0.0 && a.sensitivity < 1.0 { a.sensitivity } else { 0.01 },
            top: a.top.max(1),
            uri_rules,
            chunk_bytes: a.chunk_bytes.unwrap_or(crate::open::CHUNK).max(4096),
        })
    }
}

/// A file-system-safe name from the first input (`testdata/real/` -> `real`).
pub fn default_name(input: &str) -> String {
    let p = std::path::Path::new(input.trim_end_matches('/'));
    let base = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
    let clean: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' })
        .collect();
    if clean.is_empty() || clean.chars().all(|c| c == '.') {
        "run".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_args() {
        assert_eq!(
            split_format_arg("shop*.log=$remote_addr [$time_local] $status"),
            (Some("shop*.log"), "$remote_addr [$time_local] $status")
        );
        assert_eq!(
            split_format_arg("rt=$request_time [$time_local] $status"),
            (None, "rt=$request_time [$time_local] $status")
        );
        assert_eq!(split_format_arg("$remote_addr"), (None, "$remote_addr"));
    }

    #[test]
    fn buckets_and_names() {
        assert_eq!(parse_bucket("10s"), Some(10));
        assert_eq!(parse_bucket("5m"), Some(300));
        assert_eq!(parse_bucket("m"), None);
        assert_eq!(parse_bucket("0s"), None);
        assert_eq!(default_name("testdata/real/"), "real");
        assert_eq!(default_name("/var/log/nginx/access.log*"), "access.log_");
    }

    #[test]
    fn bad_options_are_named() {
        let a = AnalyzeArgs { paths: vec!["x".into()], tz: Some("Nowhere/City".into()), ..Default::default() };
        assert!(Config::from_args(&a).err().unwrap().to_string().starts_with("--tz"));
        let b = AnalyzeArgs { paths: vec!["x".into()], log_format: vec!["$status only".into()], ..Default::default() };
        assert!(Config::from_args(&b).err().unwrap().to_string().contains("no time variable"));
        let c = AnalyzeArgs { paths: vec![], ..Default::default() };
        assert!(matches!(Config::from_args(&c), Err(ConfigError::NoInputs)));
    }
}
