//! Helpers shared by the end-to-end tests: paths, running the binary, reading outputs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn real() -> PathBuf {
    root().join("testdata/real")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_upcause")
}

/// A fresh temporary directory under target/ (kept out of /tmp so failures can be inspected).
pub fn tmp(name: &str) -> PathBuf {
    let d = root().join("target/test-out").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub struct Run {
    pub code: i32,
    pub stderr: String,
    pub out: PathBuf,
}

/// `upcause analyze ARGS --out OUT -q`.
pub fn analyze(args: &[&str], out: &Path) -> Run {
    analyze_in(&root(), args, out)
}

/// The same, run from `dir` (so relative input paths are resolved there).
pub fn analyze_in(dir: &Path, args: &[&str], out: &Path) -> Run {
    let o = Command::new(bin())
        .current_dir(dir)
        .arg("analyze")
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("-q")
        .output()
        .expect("run upcause");
    Run {
        code: o.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
        out: out.to_path_buf(),
    }
}

pub type Row = HashMap<String, String>;

pub fn read_csv(path: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect()
        })
        .collect()
}

pub fn read_tsv(path: &Path) -> Vec<Row> {
    let mut r = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quoting(false)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect()
        })
        .collect()
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// `rid=...` from a URI or request line.
pub fn rid(s: &str) -> Option<&str> {
    let i = s.find("rid=")?;
    let r = &s[i + 4..];
    let end = r.find(['&', ' ', '"']).unwrap_or(r.len());
    Some(&r[..end])
}

/// RFC 3339 to milliseconds.
pub fn ms(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("{t}: {e}")).timestamp_millis()
}
