//! Finding the inputs: paths, directories (recursive) and globs to `LogSource`s.
//!
//! Input: the user's path arguments and the access-log formats (`FormatSet`). Output:
//! `Discovered`: sources sorted (kind, rotation set, oldest first) with ids, files skipped
//! (and why), diagnostics, and the UTC offsets seen in access-log heads. Invariants: the
//! kind of a file comes from its first lines (its name is only a hint for files whose lines
//! say nothing); gzip is recognised by its magic bytes, never by the name; a file reached
//! twice (symlink, hard link, identical copy) is read once, with a diagnostic; directory
//! loops through symlinks are reported, not followed forever.

mod formats;
mod rotation;
mod sniff;

pub use formats::FormatSet;
pub use rotation::{container_of, rotation};

use crate::model::{Compression, Diagnostic, LogKind, LogSource, Severity};
use crate::open::stream;
use sniff::{sniff, DEEP_HEAD, HEAD};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The first `limit` decompressed bytes of a file, and its compression (by magic bytes).
fn read_head(path: &Path, limit: usize) -> std::io::Result<(Vec<u8>, Compression, Option<&'static str>)> {
    let mut f = std::fs::File::open(path)?;
    let mut raw = Vec::with_capacity(limit.min(HEAD));
    (&mut f).take(limit as u64).read_to_end(&mut raw)?;
    let codec = stream::codec_of(&raw);
    if codec == Compression::Plain {
        let other = stream::unsupported(&raw);
        return Ok((raw, codec, other));
    }
    // Compressed heads may need more input than `limit` to give `limit` bytes (xz and bzip2
    // compress logs 15 to 20 times): read more, doubling, only while the output falls short
    // (reading 32 times the limit at once read whole rotated files: 16 ms each).
    let mut step = limit as u64;
    loop {
        let out = stream::head(codec, &raw, limit);
        if out.len() >= limit || raw.len() as u64 >= 33 * limit as u64 {
            return Ok((out, codec, None));
        }
        let before = raw.len();
        (&mut f).take(step).read_to_end(&mut raw)?;
        if raw.len() == before {
            return Ok((out, codec, None));
        }
        step *= 2;
    }
}

/// Bytes of a plain access or mixed log's end read for its last stamp (`sniff::last_stamp`).
const TAIL: u64 = 64 << 10;

/// The last `limit` bytes of a (plain) file.
fn read_tail(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(limit)))?;
    let mut out = Vec::with_capacity(limit.min(len) as usize);
    f.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

/// (year, month) of a file's modification time.
fn mtime_month(meta: &std::fs::Metadata) -> Option<(i32, u32)> {
    let secs = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    let (y, m, _) = crate::model::time::civil_from_days(secs.div_euclid(86_400));
    Some((y as i32, m))
}

pub struct Discovered {
    pub sources: Vec<LogSource>,
    /// (path, reason) of files not read.
    pub skipped: Vec<(String, String)>,
    pub diags: Vec<Diagnostic>,
    /// UTC offsets (seconds east) seen in the first lines of access logs.
    pub head_offsets: BTreeMap<i32, u64>,
    /// (UTC seconds, offset) of the first and the last access line sniffed in each file, and
    /// of a plain access or mixed log's last access line: the instants around a
    /// daylight-saving change (`zone_choice` infers the zone from them).
    pub head_stamps: Vec<(i64, i32)>,
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
    let mut head_stamps = Vec::new();
    let mut by_inode: HashMap<(u64, u64), String> = HashMap::new();
    // Files sharing the pre-check key: (path, display) of each, compared in full on a match.
    let mut by_content: HashMap<(u64, Compression), Vec<(PathBuf, String)>> = HashMap::new();
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
        let (head, codec, other_codec) = match read_head(&path, HEAD) {
            Ok(h) => h,
            Err(e) => {
                diags.push(diag(Severity::Error, &display, format!("cannot read: {e}")));
                continue;
            }
        };
        if !head.is_empty() {
            let key = (content_key(&head, meta.len()), codec);
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
        if let Some(c) = other_codec {
            skipped.push((display, format!("compressed with {c}, which upcause does not read; decompress it first")));
            continue;
        }
        let (set, age) = rotation(&path);
        let deep = || read_head(&path, DEEP_HEAD).map(|h| h.0).unwrap_or_else(|_| head.clone());
        let s = sniff(&head, &deep, &path, &set, fs, &candidates, mtime_month(&meta));
        if s.kind == LogKind::Unknown {
            skipped.push((display, s.reason));
            continue;
        }
        for &(_, o) in &s.offsets {
            *head_offsets.entry(o).or_insert(0) += 1;
        }
        head_stamps.extend(s.offsets.first().into_iter().chain(s.offsets.last()).copied());
        if codec == Compression::Plain {
            let mixed = match s.kind {
                LogKind::NginxAccess => Some(None),
                LogKind::Mixed => Some(Some(s.envelope)),
                _ => None,
            };
            if let Some(mixed) = mixed {
                let formats: Vec<usize> = s.format.iter().chain(&s.more_formats).copied().collect();
                let last = read_tail(&path, TAIL).ok().and_then(|t| sniff::last_stamp(fs, &formats, mixed, &t));
                head_stamps.extend(last);
            }
        }
        // The name's compression suffix against the content's magic bytes.
        let named = [(".gz", Compression::Gzip), (".zst", Compression::Zstd), (".zstd", Compression::Zstd)]
            .into_iter()
            .chain([(".xz", Compression::Xz), (".bz2", Compression::Bzip2)])
            .find(|(sfx, _)| display.ends_with(sfx));
        match (named, codec) {
            (Some((_, n)), c) if n == c => {}
            (Some((sfx, _)), Compression::Plain) => {
                diags.push(diag(Severity::Warning, &display, format!("plain text under a {sfx} name; read as plain")))
            }
            (Some((sfx, _)), c) => {
                diags.push(diag(Severity::Warning, &display, format!("{c} data under a {sfx} name; read as {c}")))
            }
            (None, Compression::Plain) => {}
            (None, c) => {
                diags.push(diag(Severity::Warning, &display, format!("{c} data under a plain name; read as {c}")))
            }
        }
        let container = (s.kind == LogKind::Mixed).then(|| container_of(&path)).flatten();
        sources.push(LogSource {
            id: 0,
            path,
            display,
            kind: s.kind,
            compression: codec,
            size: meta.len(),
            set,
            age,
            format: s.format,
            more_formats: s.more_formats,
            kind_reason: s.reason,
            envelope: s.envelope,
            container,
            year_ref: s.year_ref,
            extra_fields: s.extra_fields,
        });
    }
    let rank = |k: LogKind| match k {
        LogKind::NginxAccess => 0,
        LogKind::NginxError => 1,
        LogKind::FpmMaster => 2,
        LogKind::FpmSlow => 3,
        LogKind::PhpError => 4,
        LogKind::Mixed => 5,
        LogKind::Unknown => 6,
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
    Ok(Discovered { sources, skipped, diags, head_offsets, head_stamps })
}

#[cfg(test)]
mod tests {
    use super::*;

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
