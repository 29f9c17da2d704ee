//! Finding the inputs: paths, directories (recursive) and globs to `LogSource`s.
//!
//! Input: the user's path arguments and the access-log formats (`FormatSet`). Output:
//! `Discovered`: sources sorted (kind, rotation set, oldest first) with ids, files skipped
//! (and why), diagnostics, and the UTC offsets seen in access-log heads. Invariants: the
//! kind of a file comes from its first lines (its name is only a hint for files whose lines
//! say nothing); gzip is recognised by its magic bytes, never by the name; a file reached
//! twice (symlink, hard link, identical copy) is read once, with a diagnostic; directory
//! loops through symlinks are reported, not followed forever.

use crate::model::{Compression, Diagnostic, LogKind, LogSource, Severity};
use crate::open::gzip;
use crate::parse::access::{AccessFormat, Var};
use crate::parse::{fpm, nginx_error};
use globset::{Glob, GlobMatcher};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const HEAD: usize = 64 << 10;
const SNIFF_LINES: usize = 40;

/// The access-log formats of a run and the rules that assign them to files.
#[derive(Default)]
pub struct FormatSet {
    pub formats: Vec<AccessFormat>,
    /// `--log-format GLOB=...`: matched against the file name and the full path.
    explicit: Vec<(GlobMatcher, usize)>,
    /// `--nginx-conf` access_log paths: (full-path matcher, file-name matcher, format).
    conf: Vec<(GlobMatcher, GlobMatcher, usize)>,
    /// `--log-format` without a glob.
    default: Option<usize>,
}

impl FormatSet {
    /// Add a format; returns its index (formats with the same source are shared).
    pub fn add(&mut self, f: AccessFormat) -> usize {
        if let Some(i) = self.formats.iter().position(|g| g.source == f.source) {
            return i;
        }
        self.formats.push(f);
        self.formats.len() - 1
    }

    pub fn add_explicit(&mut self, glob: Option<&str>, f: AccessFormat) -> Result<(), String> {
        let i = self.add(f);
        match glob {
            Some(g) => {
                let m = Glob::new(g).map_err(|e| format!("bad glob {g:?} in --log-format: {e}"))?.compile_matcher();
                self.explicit.push((m, i));
            }
            None => self.default = Some(i),
        }
        Ok(())
    }

    pub fn add_conf(&mut self, path_pattern: &str, f: AccessFormat) {
        let i = self.add(f);
        let name = Path::new(path_pattern).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let (Ok(full), Ok(base)) = (Glob::new(path_pattern), Glob::new(&name)) {
            self.conf.push((full.compile_matcher(), base.compile_matcher(), i));
        }
    }

    /// Built-in candidates tried when nothing assigns a format.
    fn ensure_builtins(&mut self) -> Vec<usize> {
        let mut c: Vec<usize> = (0..self.formats.len()).collect();
        for (n, s) in [("combined", crate::parse::access::COMBINED), ("main", crate::parse::access::MAIN)] {
            if let Ok(f) = AccessFormat::compile(n, s) {
                let i = self.add(f);
                if !c.contains(&i) {
                    c.push(i);
                }
            }
        }
        c
    }

    /// The format assigned by rule to `path` whose rotation set is `set` (the current name).
    fn assigned(&self, path: &Path, set: &str) -> Option<(usize, &'static str)> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (m, i) in &self.explicit {
            if m.is_match(&name) || m.is_match(path) || m.is_match(set) {
                return Some((*i, "--log-format glob"));
            }
        }
        let set_name = Path::new(set).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (full, base, i) in &self.conf {
            if full.is_match(path) || full.is_match(set) || base.is_match(&set_name) || base.is_match(&name) {
                return Some((*i, "--nginx-conf access_log"));
            }
        }
        self.default.map(|i| (i, "--log-format"))
    }
}

pub struct Discovered {
    pub sources: Vec<LogSource>,
    /// (path, reason) of files not read.
    pub skipped: Vec<(String, String)>,
    pub diags: Vec<Diagnostic>,
    /// UTC offsets (seconds east) seen in the first lines of access logs.
    pub head_offsets: BTreeMap<i32, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(
        "no input given; pass log files or directories, e.g. `upcause analyze /var/log/nginx /var/log/php-fpm.log*`"
    )]
    NoInputs,
}

fn diag(sev: Severity, file: &str, msg: String) -> Diagnostic {
    Diagnostic { severity: sev, file: file.into(), line: None, offset: None, message: msg }
}

/// Rotation set and age from a file name: `x.log` (0), `x.log.1` (1), `x.log.2.gz` (2),
/// `x.log-20261120[.gz]` (older dates are older).
pub fn rotation(path: &Path) -> (String, u64) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = path.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".gz").unwrap_or(&name);
    let join = |base: &str| {
        if dir.is_empty() {
            base.to_string()
        } else {
            format!("{dir}/{base}")
        }
    };
    if let Some((base, n)) = stem.rsplit_once('.') {
        if !n.is_empty() && n.len() <= 4 && n.bytes().all(|c| c.is_ascii_digit()) {
            return (join(base), n.parse::<u64>().unwrap_or(0) + 1_000_000_000_000);
        }
    }
    if let Some((base, d)) = stem.rsplit_once('-') {
        if (d.len() == 8 || d.len() == 10) && d.bytes().all(|c| c.is_ascii_digit()) {
            // Larger age = older: invert the date.
            let v: u64 = d.parse().unwrap_or(0);
            let v = if d.len() == 8 { v * 100 } else { v };
            return (join(base), 10_000_000_000u64.saturating_sub(v) + 1);
        }
    }
    (join(stem), 0)
}

fn name_hint(path: &Path) -> Option<LogKind> {
    let n = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if n.contains("slow") {
        Some(LogKind::FpmSlow)
    } else if n.contains("fpm") || n.contains("php") {
        Some(LogKind::FpmMaster)
    } else if n.contains("error") {
        Some(LogKind::NginxError)
    } else if n.contains("access") {
        Some(LogKind::NginxAccess)
    } else {
        None
    }
}

fn read_head(path: &Path) -> std::io::Result<(Vec<u8>, bool)> {
    let mut f = std::fs::File::open(path)?;
    let mut raw = Vec::with_capacity(HEAD);
    (&mut f).take(HEAD as u64).read_to_end(&mut raw)?;
    if gzip::is_gzip(&raw) {
        // Compressed heads may need more input than HEAD to give HEAD bytes; read more.
        let mut more = Vec::new();
        (&mut f).take(4 * HEAD as u64).read_to_end(&mut more)?;
        raw.extend(more);
        Ok((gzip::head(&raw, HEAD), true))
    } else {
        Ok((raw, false))
    }
}

struct Sniff {
    kind: LogKind,
    format: Option<usize>,
    reason: String,
    offsets: Vec<i32>,
}

fn sniff(head: &[u8], path: &Path, set: &str, fs: &mut FormatSet, candidates: &[usize]) -> Sniff {
    let start = head.iter().take_while(|&&c| c == 0).count();
    let body = &head[start..];
    // Drop the last line if the head cut it.
    let complete = match memchr::memrchr(b'\n', body) {
        Some(i) if body.len() == HEAD - start => &body[..i],
        _ => body,
    };
    let lines: Vec<&[u8]> = crate::chunk::Lines::new(complete)
        .map(|l| &l[l.iter().take_while(|&&c| c == 0).count()..])
        .filter(|l| !l.is_empty())
        .take(SNIFF_LINES)
        .collect();
    let hint = name_hint(path);
    let assigned = fs.assigned(path, set);
    // Control bytes inside lines; NUL runs before a line (copytruncate holes) do not count.
    let is_ctrl = |c: &u8| *c < 0x20 && *c != b'\r' && *c != b'\t';
    let ctrl: usize = lines.iter().map(|l| l.iter().filter(|c| is_ctrl(c)).count()).sum();
    let text: usize = lines.iter().map(|l| l.len()).sum();
    // Random binary data has about 11% such bytes; text logs have next to none.
    if text > 0 && ctrl * 20 > text {
        return Sniff { kind: LogKind::Unknown, format: None, reason: "binary content".into(), offsets: vec![] };
    }
    let n = lines.len();
    let err = lines.iter().filter(|l| nginx_error::is_entry_start(l) && nginx_error::parse(l).is_some()).count();
    let fpm_n = lines.iter().filter(|l| fpm::is_stamped(l) && fpm::parse_line(l).is_some()).count();
    let slow = lines
        .iter()
        .filter(|l| {
            fpm::parse_slow_header(l).is_some() || l.starts_with(b"script_filename = ") || l.starts_with(b"[0x")
        })
        .count();
    // Lines a format fits entirely count double: a prefix fit (trailing fields) must not let
    // `combined` win over the extended format the file was written with.
    let score = |f: &AccessFormat| {
        lines.iter().filter_map(|l| f.parse(l)).map(|p| if p.trailing { 1 } else { 2 }).sum::<usize>() / 2
    };
    let mut best_fmt: Option<(usize, usize)> = None;
    if let Some((i, _)) = assigned {
        best_fmt = Some((i, score(&fs.formats[i])));
    }
    if best_fmt.is_none_or(|(_, s)| s == 0) {
        for &c in candidates {
            let s = score(&fs.formats[c]);
            if s > best_fmt.map_or(0, |b| b.1) {
                best_fmt = Some((c, s));
            }
        }
    }
    let acc = best_fmt.map_or(0, |b| b.1);
    let scores = [
        (LogKind::NginxAccess, acc),
        (LogKind::NginxError, err),
        (LogKind::FpmSlow, slow),
        (LogKind::FpmMaster, fpm_n),
    ];
    let (kind, top) =
        scores.iter().copied().max_by_key(|(k, s)| (*s, Some(*k) == hint)).unwrap_or((LogKind::Unknown, 0));
    let (kind, reason) = if top > 0 {
        (kind, format!("content: {top} of {n} sniffed lines"))
    } else if let Some(h) = hint.filter(|_| n == 0 || assigned.is_some() || start > 0) {
        (h, "name (no readable lines to sniff)".into())
    } else if let (Some(h), true) = (hint, assigned.is_some()) {
        (h, "name".into())
    } else {
        (LogKind::Unknown, if n == 0 { "empty".into() } else { "no line looks like an nginx or PHP-FPM log".into() })
    };
    let mut format = None;
    let mut offsets = Vec::new();
    if kind == LogKind::NginxAccess {
        let f = match (assigned, best_fmt) {
            (Some((i, why)), _) if score(&fs.formats[i]) > 0 || why == "--log-format glob" => (i, why.to_string()),
            (_, Some((i, s))) if s > 0 => (i, format!("detected (log_format {})", fs.formats[i].name)),
            (Some((i, why)), _) => (i, why.to_string()),
            _ => (fs.formats.iter().position(|f| f.name == "combined").unwrap_or(0), "default combined".into()),
        };
        format = Some(f.0);
        let fmt = &fs.formats[f.0];
        for l in &lines {
            if let Some(p) = fmt.parse(l) {
                let off = p
                    .raw(Var::TimeLocal)
                    .and_then(crate::model::time::parse_time_local)
                    .or_else(|| p.raw(Var::TimeIso8601).and_then(crate::model::time::parse_iso8601))
                    .map(|x| x.1);
                offsets.extend(off);
            }
        }
        return Sniff { kind, format, reason: format!("{reason}; format: {}", f.1), offsets };
    }
    Sniff { kind, format, reason, offsets }
}

/// The cheap pre-check for copies: size and a hash of the first 64 KiB. Files that share it
/// are only copies if `same_content` says so.
fn content_key(head: &[u8], size: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    head.hash(&mut h);
    size.hash(&mut h);
    h.finish()
}

/// Do two files hold the same bytes from start to end? Compared in 1 MiB pieces, so two
/// rotated logs that only share their first lines (and their size) are both read.
fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

/// Read until `buf` is full or the file ends.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Expand the inputs and classify every file found.
pub fn discover(inputs: &[String], fs: &mut FormatSet) -> Result<Discovered, DiscoverError> {
    if inputs.is_empty() {
        return Err(DiscoverError::NoInputs);
    }
    let candidates = fs.ensure_builtins();
    let mut diags = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for inp in inputs {
        let p = Path::new(inp);
        if p.is_dir() {
            for e in walkdir::WalkDir::new(p).follow_links(true).sort_by_file_name() {
                match e {
                    Ok(e) if e.file_type().is_file() => files.push(e.into_path()),
                    Ok(_) => {}
                    Err(e) => {
                        let at = e.path().map(|p| p.display().to_string()).unwrap_or_else(|| inp.clone());
                        let msg = if e.loop_ancestor().is_some() {
                            "directory loop through a symlink; not followed again".to_string()
                        } else {
                            format!(
                                "cannot read: {}",
                                e.io_error().map(|x| x.to_string()).unwrap_or_else(|| e.to_string())
                            )
                        };
                        let sev = if e.loop_ancestor().is_some() { Severity::Warning } else { Severity::Error };
                        diags.push(diag(sev, &at, msg));
                    }
                }
            }
        } else if p.exists() {
            files.push(p.to_path_buf());
        } else if inp.contains(['*', '?', '[']) {
            let mut n = 0;
            if let Ok(g) = glob::glob(inp) {
                let mut found: Vec<PathBuf> = g.filter_map(Result::ok).filter(|p| p.is_file()).collect();
                found.sort();
                n = found.len();
                files.extend(found);
            }
            if n == 0 {
                diags.push(diag(Severity::Error, inp, "the pattern matches no file".into()));
            }
        } else {
            diags.push(diag(Severity::Error, inp, "no such file or directory".into()));
        }
    }

    let mut sources = Vec::new();
    let mut skipped = Vec::new();
    let mut head_offsets = BTreeMap::new();
    let mut by_inode: HashMap<(u64, u64), String> = HashMap::new();
    // Files sharing the pre-check key: (path, display) of each, compared in full on a match.
    let mut by_content: HashMap<(u64, bool), Vec<(PathBuf, String)>> = HashMap::new();
    for path in files {
        let display = path.display().to_string();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                diags.push(diag(Severity::Error, &display, format!("cannot read: {e}")));
                continue;
            }
        };
        if let Some(first) = by_inode.get(&(meta.dev(), meta.ino())) {
            diags.push(diag(Severity::Warning, &display, format!("same file as {first} (link); read once")));
            continue;
        }
        by_inode.insert((meta.dev(), meta.ino()), display.clone());
        let (head, is_gz) = match read_head(&path) {
            Ok(h) => h,
            Err(e) => {
                diags.push(diag(Severity::Error, &display, format!("cannot read: {e}")));
                continue;
            }
        };
        if !head.is_empty() {
            let key = (content_key(&head, meta.len()), is_gz);
            let same = by_content.get(&key).into_iter().flatten().find(|(p, _)| {
                // A file that cannot be read again is not called a copy (the scan reports it).
                same_content(p, &path).unwrap_or(false)
            });
            if let Some((_, first)) = same {
                diags.push(diag(
                    Severity::Warning,
                    &display,
                    format!("identical to {first} (a copy: same size and same bytes throughout, compared in full); read once"),
                ));
                continue;
            }
            by_content.entry(key).or_default().push((path.clone(), display.clone()));
        }
        let (set, age) = rotation(&path);
        let s = sniff(&head, &path, &set, fs, &candidates);
        if s.kind == LogKind::Unknown {
            skipped.push((display, s.reason));
            continue;
        }
        for o in s.offsets {
            *head_offsets.entry(o).or_insert(0) += 1;
        }
        let name_gz = display.ends_with(".gz");
        if name_gz != is_gz {
            diags.push(diag(
                Severity::Warning,
                &display,
                if is_gz {
                    "gzip data under a plain name; read as gzip".into()
                } else {
                    "plain text under a .gz name; read as plain".into()
                },
            ));
        }
        sources.push(LogSource {
            id: 0,
            path,
            display,
            kind: s.kind,
            compression: if is_gz { Compression::Gzip } else { Compression::Plain },
            size: meta.len(),
            set,
            age,
            format: s.format,
            kind_reason: s.reason,
            envelope: None,
            container: None,
            year_ref: None,
        });
    }
    let rank = |k: LogKind| match k {
        LogKind::NginxAccess => 0,
        LogKind::NginxError => 1,
        LogKind::FpmMaster => 2,
        LogKind::FpmSlow => 3,
        LogKind::Mixed => 4,
        LogKind::Unknown => 5,
    };
    sources.sort_by(|a, b| {
        (rank(a.kind), &a.set, std::cmp::Reverse(a.age), &a.display).cmp(&(
            rank(b.kind),
            &b.set,
            std::cmp::Reverse(b.age),
            &b.display,
        ))
    });
    for (i, s) in sources.iter_mut().enumerate() {
        s.id = i as u32;
    }
    Ok(Discovered { sources, skipped, diags, head_offsets })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_names() {
        let r = |s: &str| rotation(Path::new(s));
        assert_eq!(r("/l/error.log"), ("/l/error.log".into(), 0));
        let (s1, a1) = r("/l/error.log.1");
        let (s2, a2) = r("/l/error.log.2.gz");
        assert_eq!((s1.as_str(), s2.as_str()), ("/l/error.log", "/l/error.log"));
        assert!(a2 > a1 && a1 > 0);
        let (s3, d1) = r("/l/access.log-20261120.gz");
        let (_, d2) = r("/l/access.log-20261121");
        assert_eq!(s3, "/l/access.log");
        assert!(d1 > d2 && d2 > 0);
        assert_eq!(r("x.log").0, "x.log");
    }

    #[test]
    fn sniffs_kinds_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let w = |n: &str, s: &str| std::fs::write(dir.path().join(n), s).unwrap();
        w("a.txt", "127.0.0.1 - - [22/Nov/2026:03:41:07 +0100] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\"\n");
        w("b.txt", "2026/11/22 03:41:07 [error] 1#1: *1 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 1.2.3.4, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:1/\", host: \"s\"\n");
        w("c.txt", "[22-Nov-2026 03:41:07] NOTICE: ready to handle connections\n");
        w("d.txt", "\n[22-Nov-2026 03:41:07]  [pool www] pid 12\nscript_filename = /a.php\n[0x0000000000000001] sleep() /a.php:2\n");
        w("e.txt", "hello world\n");
        w("error.log", "");
        let mut fs = FormatSet::default();
        let d = discover(&[dir.path().display().to_string()], &mut fs).unwrap();
        let kinds: Vec<(String, LogKind)> =
            d.sources.iter().map(|s| (s.path.file_name().unwrap().to_string_lossy().into_owned(), s.kind)).collect();
        assert!(kinds.contains(&("a.txt".into(), LogKind::NginxAccess)));
        assert!(kinds.contains(&("b.txt".into(), LogKind::NginxError)));
        assert!(kinds.contains(&("c.txt".into(), LogKind::FpmMaster)));
        assert!(kinds.contains(&("d.txt".into(), LogKind::FpmSlow)));
        assert!(kinds.contains(&("error.log".into(), LogKind::NginxError)));
        assert_eq!(d.skipped.len(), 1);
        assert!(d.skipped[0].0.ends_with("e.txt"));
        assert_eq!(d.head_offsets.get(&3600), Some(&1));
    }
}
