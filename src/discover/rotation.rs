//! What a file's name says: its rotation set and age, a hint of its kind, the container a
//! path names.
//!
//! Input: a path. Output: (rotation set, age), an optional kind hint, an optional container
//! name. Invariants: names only ever order and group files or break ties: the kind and the
//! compression of a file come from its content.

use crate::model::time::{days_from_civil, iso_prefix};
use crate::model::LogKind;
use std::path::Path;
use std::sync::OnceLock;

/// Suffixes that compressors add (logrotate's `compressext`, newsyslog's flags).
pub const COMPRESSED_SUFFIXES: &[&str] = &[".gz", ".zst", ".zstd", ".xz", ".bz2"];

/// Ages of numbered rotations (`x.log.3`) sort after every dated one.
const NUMBERED: u64 = 1_000_000_000_000;
/// Dated rotations: this minus the date's Unix seconds, so older dates are older.
const DATED: u64 = 100_000_000_000;

fn date_suffix() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // logrotate's dateext (`-20261120`, `-2026112014`), dateformat variants (`-2026-11-20`,
        // `-20261120143000`, `-2026-11-20-1795183200`, `-1795183200`), kubelet's
        // `.20261120-143000`.
        regex::Regex::new(
            r"^(.+?)[-._](\d{4}-?\d{2}-?\d{2}(?:[-_]?\d{2}(?:\d{2}(?:\d{2})?)?)?(?:-\d{9,11})?|\d{9,11})$",
        )
        .expect("valid regex")
    })
}

/// Unix seconds of a date-like suffix, or `None` if it is no valid date.
fn suffix_secs(d: &str) -> Option<i64> {
    if let Some((_, epoch)) = d.rsplit_once('-').filter(|(_, e)| e.len() >= 9 && e.len() <= 11) {
        return epoch.parse().ok();
    }
    let digits: String = d.chars().filter(char::is_ascii_digit).collect();
    let n = |a: usize, b: usize| digits.get(a..b).and_then(|s| s.parse::<u32>().ok());
    if digits.len() == d.len() && (digits.len() == 9 || digits.len() == 11 || digits.len() == 10 && n(4, 6)? > 12) {
        return digits.parse().ok();
    }
    let (y, mo, day) = (n(0, 4)?, n(4, 6)?, n(6, 8)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&day) {
        return if digits.len() == 10 { digits.parse().ok() } else { None };
    }
    let (h, mi, s) = (n(8, 10).unwrap_or(0), n(10, 12).unwrap_or(0), n(12, 14).unwrap_or(0));
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y as i64, mo, day) * 86_400 + (h * 3600 + mi * 60 + s) as i64)
}

/// Rotation set and age from a file name: `x.log` (0), `x.log.1`, `x.log.2.gz` (numbered),
/// `x.log-20261120[.gz]`, `x.log-2026-11-20.zst`, `x.log-1795183200.xz` (dated: older dates
/// are older). Compression suffixes are not part of the set's name.
pub fn rotation(path: &Path) -> (String, u64) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = path.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = COMPRESSED_SUFFIXES.iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
    let join = |base: &str| {
        if dir.is_empty() {
            base.to_string()
        } else {
            format!("{dir}/{base}")
        }
    };
    if let Some((base, n)) = stem.rsplit_once('.') {
        if !n.is_empty() && n.len() <= 4 && n.bytes().all(|c| c.is_ascii_digit()) {
            return (join(base), n.parse::<u64>().unwrap_or(0) + NUMBERED);
        }
    }
    if let Some(c) = date_suffix().captures(stem) {
        if let Some(secs) = suffix_secs(&c[2]) {
            return (join(&c[1]), DATED.saturating_sub(secs.max(0) as u64) + 1);
        }
    }
    (join(stem), 0)
}

/// The kind a file's name suggests (only used for files whose lines say nothing).
pub fn name_hint(path: &Path) -> Option<LogKind> {
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

/// The container a container runtime's log path names: Docker's
/// `/var/lib/docker/containers/<id>/<id>-json.log` (the id's first 12 characters), kubelet's
/// `/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log` and
/// `/var/log/containers/<pod>_<ns>_<container>-<id>.log`.
pub fn container_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let parent = path.parent()?;
    let pname = parent.file_name().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(id) = name.split("-json.log").next().filter(|id| name.contains("-json.log") && *id == pname) {
        return Some(id.chars().take(12).collect());
    }
    let grand = parent.parent().and_then(|g| g.file_name()).map(|g| g.to_string_lossy().into_owned());
    let numbered = name.split('.').next().is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
    if numbered && name.contains(".log") && grand.is_some_and(|g| g.split('_').count() >= 3) {
        return Some(pname);
    }
    let stem = name.strip_suffix(".log")?;
    let parts: Vec<&str> = stem.splitn(3, '_').collect();
    if parts.len() == 3 {
        let (c, id) = parts[2].rsplit_once('-')?;
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(c.to_string());
        }
    }
    None
}

/// (year, month) of a stamp at the start of a log line of any kind upcause reads, for the
/// year of year-less syslog stamps around it.
pub fn year_month(line: &[u8]) -> Option<(i32, u32)> {
    use crate::model::time::{parse_fpm_wall, parse_nginx_error_wall, parse_time_local};
    let ym = |secs: i64| {
        let (y, m, _) = crate::model::time::civil_from_days(secs.div_euclid(86_400));
        (y as i32, m)
    };
    if let Some(w) = parse_nginx_error_wall(line) {
        return Some(ym(w));
    }
    if let Some(w) = line.get(1..21).and_then(parse_fpm_wall) {
        return Some(ym(w));
    }
    if let Some((w, _, _)) = iso_prefix(line) {
        return Some(ym(w.div_euclid(1000)));
    }
    // `$time_local` in brackets anywhere in the first part of an access line.
    let b = memchr::memchr(b'[', &line[..line.len().min(200)])?;
    line.get(b + 1..b + 27).and_then(parse_time_local).map(|(s, _)| ym(s))
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
        // logrotate's dateformat variants and other compressors group into one set, in order.
        let names = [
            "/l/access.log-2026-11-19.zst",
            "/l/access.log-2026112012.xz",
            "/l/access.log-20261120143000.bz2",
            "/l/access.log-2026-11-21-1795269600",
            "/l/access.log-1795300000.gz",
        ];
        let got: Vec<(String, u64)> = names.iter().map(|n| r(n)).collect();
        assert!(got.iter().all(|g| g.0 == "/l/access.log"), "{got:?}");
        assert!(got.windows(2).all(|w| w[0].1 > w[1].1), "older first: {got:?}");
        assert_eq!(r("/l/error.log.3.zst").0, "/l/error.log");
        // kubelet's rotation of a CRI log.
        assert_eq!(r("/p/nginx/0.log.20261120-143000.gz").0, "/p/nginx/0.log");
        // Names that only look dated keep their name.
        assert_eq!(r("/l/app-2026-13-45.log").1, 0);
    }

    #[test]
    fn containers_from_runtime_paths() {
        let id = "f5236df214980cc761945519bf5284312f65187a38d331a1c92df570820b2523";
        let p = format!("/var/lib/docker/containers/{id}/{id}-json.log");
        assert_eq!(container_of(Path::new(&p)).as_deref(), Some("f5236df21498"));
        assert_eq!(container_of(Path::new(&format!("{p}.1"))).as_deref(), Some("f5236df21498"));
        assert_eq!(
            container_of(Path::new("/var/log/pods/default_web-7d4b9c_bc4fd83e/nginx/0.log")).as_deref(),
            Some("nginx")
        );
        let c = format!("/var/log/containers/web-7d4b9c_default_php-fpm-{id}.log");
        assert_eq!(container_of(Path::new(&c)).as_deref(), Some("php-fpm"));
        assert_eq!(container_of(Path::new("/var/log/nginx/access.log")), None);
    }

    #[test]
    fn years_of_stamps() {
        assert_eq!(year_month(b"2026/11/22 04:14:42 [error] 7#7: x"), Some((2026, 11)));
        assert_eq!(year_month(b"[22-Nov-2026 04:14:42] NOTICE: x"), Some((2026, 11)));
        assert_eq!(year_month(b"10.0.0.1 - - [31/Dec/2025:23:59:59 +0100] \"GET /\" 200"), Some((2025, 12)));
        assert_eq!(year_month(b"no stamp"), None);
    }
}
