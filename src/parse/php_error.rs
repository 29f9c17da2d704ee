//! PHP's own error log (php.ini or the pool's `error_log`; on RHEL-family systems
//! `/var/log/php-fpm/www-error.log`): `[22-Nov-2026 02:00:09 UTC] PHP Fatal error:  ...`.
//!
//! Input: one record: a stamped line plus the unstamped lines after it (an uncaught
//! exception's `Stack trace:`, `#0 ...`, `  thrown in ...`), without the final newline.
//! Output: `PhpErrorLine`, borrowing every field. Invariants: the stamp carries its zone
//! (PHP writes `date.timezone`'s identifier, `e`): it is part of the layout, and the time is
//! read in that zone, not the run's; no allocation; no panic on any bytes.

use crate::model::Level;
use memchr::memmem;

#[derive(Debug, Clone, PartialEq)]
pub struct PhpErrorLine<'a> {
    /// `DD-Mon-YYYY HH:MM:SS`.
    pub stamp: &'a [u8],
    /// The zone identifier after it (`UTC`, `Europe/Berlin`).
    pub zone: &'a [u8],
    /// The error type: `Fatal error`, `Parse error`, `Warning`, `Notice`, `Deprecated`, ...
    pub kind: &'a [u8],
    pub level: Level,
    /// The first line after the stamp (`PHP Fatal error:  Allowed memory size ...`).
    pub message: &'a [u8],
    /// The script the message names (`in /var/www/x.php on line 3`, `in /var/www/x.php:5`).
    pub script: Option<&'a [u8]>,
}

/// Does a line start a record (`[DD-Mon-YYYY HH:MM:SS Zone] `)? An FPM master-log stamp has
/// `]` right after the time; PHP's has its zone there.
pub fn is_start(line: &[u8]) -> bool {
    zone_end(line).is_some()
}

/// Index of the `]` that closes a stamp with a zone.
fn zone_end(line: &[u8]) -> Option<usize> {
    if !super::fpm::is_stamped(line) || line.get(21) != Some(&b' ') {
        return None;
    }
    let z = &line[22..line.len().min(22 + 40)];
    let n = z.iter().take_while(|c| c.is_ascii_alphanumeric() || b"/_+-".contains(c)).count();
    (n > 0 && z.get(n) == Some(&b']')).then_some(22 + n)
}

fn level_of(kind: &[u8]) -> Level {
    match kind {
        b"Fatal error"
        | b"Parse error"
        | b"Core error"
        | b"Compile error"
        | b"Recoverable fatal error"
        | b"Catchable fatal error" => Level::Error,
        b"Warning" | b"Core warning" | b"Compile warning" => Level::Warn,
        _ => Level::Notice,
    }
}

/// Parse one record. `None` if its first line is no PHP error-log line.
pub fn parse(record: &[u8]) -> Option<PhpErrorLine<'_>> {
    let close = zone_end(record)?;
    let stamp = &record[1..21];
    let zone = &record[22..close];
    let rest = record.get(close + 1..)?.strip_prefix(b" ")?;
    let first = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let body = first.strip_prefix(b"PHP ").unwrap_or(first);
    let colon = memchr::memchr(b':', body).filter(|&c| c <= 32);
    let kind = colon.map_or(&b""[..], |c| &body[..c]);
    Some(PhpErrorLine { stamp, zone, kind, level: level_of(kind), message: first, script: script_of(first) })
}

/// The script of ` in /path/x.php on line 3` or ` in /path/x.php:5` at the end of a message.
fn script_of(m: &[u8]) -> Option<&[u8]> {
    let at = memmem::rfind(m, b" in ")? + 4;
    let tail = &m[at..];
    let end = memmem::find(tail, b" on line ").or_else(|| memchr::memrchr(b':', tail)).unwrap_or(tail.len());
    let path = &tail[..end];
    (path.starts_with(b"/") || path.get(1..3) == Some(b":\\")).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_error_log_records() {
        let m = parse(b"[05-Dec-2026 09:34:42 Europe/Berlin] PHP Fatal error:  Allowed memory size of 33554432 bytes exhausted (tried to allocate 2097152 bytes) in /var/www/memory.php on line 6").unwrap();
        assert_eq!(
            (m.stamp, m.zone, m.kind, m.level),
            (&b"05-Dec-2026 09:34:42"[..], &b"Europe/Berlin"[..], &b"Fatal error"[..], Level::Error)
        );
        assert_eq!(m.script, Some(&b"/var/www/memory.php"[..]));
        let e = parse(b"[22-Nov-2026 02:00:09 UTC] PHP Fatal error:  Uncaught RuntimeException: order 4711 not found in /var/www/fatal.php:5\nStack trace:\n#0 {main}\n  thrown in /var/www/fatal.php on line 5").unwrap();
        assert_eq!((e.zone, e.script), (&b"UTC"[..], Some(&b"/var/www/fatal.php"[..])));
        assert!(e.message.ends_with(b"fatal.php:5"));
        let w = parse(b"[22-Nov-2026 02:00:09 UTC] PHP Warning:  Undefined variable $x in /var/www/a.php on line 4")
            .unwrap();
        assert_eq!(w.level, Level::Warn);
        assert_eq!(parse(b"[22-Nov-2026 02:00:09 UTC] PHP Deprecated:  x").unwrap().level, Level::Notice);
        // FPM's own stamp (no zone) is no PHP error-log line, and the reverse.
        assert!(!is_start(b"[22-Nov-2026 02:00:09] NOTICE: ready to handle connections"));
        assert!(is_start(b"[22-Nov-2026 02:00:09 America/Argentina/Buenos_Aires] PHP Notice:  x"));
        assert!(parse(b"[22-Nov-2026 02:00:09 UTC]").is_none());
    }
}
