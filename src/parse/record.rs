//! The kind of one record in a file that holds several (a container's stdout and stderr,
//! `/var/log/syslog`): decided per line, by content.
//!
//! Input: an inner line (its envelope already taken off) and whether it fits the file's
//! access-log format. Output: `RecordKind`. Invariants: the same bytes always give the same
//! kind (the chunk planner and the line readers both ask, and must agree); a line that
//! starts a record of its own is told apart from one that can only continue another
//! (`RecordKind::starts`).

use super::{fpm, nginx_error, php_error};

/// What one inner line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// An nginx access line (the file's format fits it).
    Access,
    /// The first line of an nginx error-log entry (`YYYY/MM/DD HH:MM:SS [level]`).
    Error,
    /// A stamped FPM master-log line (`[DD-Mon-YYYY HH:MM:SS] LEVEL:`).
    Fpm,
    /// An FPM line without a stamp but with a level in brackets (`error_log = syslog`:
    /// `[WARNING] [pool www] ...`): its time is the envelope's.
    FpmSyslog,
    /// Worker output relayed without a stamp (`PHP message: ...`, `WARNING: ...`): it takes
    /// the time of the record before it.
    FpmWorker,
    /// A slow-log block header (`[stamp]  [pool www] pid 12`).
    SlowHeader,
    /// The first line of a record of PHP's own error log (`[stamp Zone] PHP Fatal error: ...`).
    PhpError,
    /// A line of a slow-log block (`script_filename = `, `[0x...]` frames).
    SlowBody,
    Blank,
    /// Anything else: another program's line, or a further line of a multi-line record.
    Other,
}

impl RecordKind {
    /// Does a line of this kind begin a record of its own? The others continue the record
    /// before them (when it takes continuations) or stand alone.
    pub fn starts(self) -> bool {
        matches!(
            self,
            RecordKind::Access
                | RecordKind::Error
                | RecordKind::Fpm
                | RecordKind::FpmSyslog
                | RecordKind::SlowHeader
                | RecordKind::PhpError
        )
    }
}

/// The kind of `line`; `access` says whether the file's access format fits it.
pub fn kind_of(line: &[u8], access: impl FnOnce(&[u8]) -> bool) -> RecordKind {
    if line.is_empty() {
        return RecordKind::Blank;
    }
    if nginx_error::is_entry_start(line) {
        return RecordKind::Error;
    }
    if php_error::is_start(line) {
        return RecordKind::PhpError;
    }
    if fpm::is_stamped(line) {
        return if fpm::is_slow_block_start(line) { RecordKind::SlowHeader } else { RecordKind::Fpm };
    }
    if access(line) {
        return RecordKind::Access;
    }
    if line.starts_with(b"script_filename = ") || line.starts_with(b"[0x") || line == b"+++ dump failed" {
        return RecordKind::SlowBody;
    }
    match fpm::parse_line(line) {
        Some(_) if line.starts_with(b"[") => RecordKind::FpmSyslog,
        Some(_) => RecordKind::FpmWorker,
        None => RecordKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_lines_seen_in_container_streams() {
        let k = |l: &[u8]| kind_of(l, |l| l.starts_with(b"10.0.0.1 - -"));
        assert_eq!(k(b"2026/11/22 04:14:42 [error] 7#7: *1 connect() failed"), RecordKind::Error);
        assert_eq!(k(b"[22-Nov-2026 04:14:42] WARNING: [pool www] child 12 exited on signal 11"), RecordKind::Fpm);
        assert_eq!(k(b"[22-Nov-2026 04:14:55]  [pool www] pid 12"), RecordKind::SlowHeader);
        assert_eq!(k(b"[0x00007f32] usleep() /www/slow.php:5"), RecordKind::SlowBody);
        assert_eq!(k(b"10.0.0.1 - - [22/Nov/2026:04:14:42 +0100] \"GET / HTTP/1.1\" 200 1"), RecordKind::Access);
        assert_eq!(k(b"[WARNING] [pool www] server reached pm.max_children setting (5)"), RecordKind::FpmSyslog);
        assert_eq!(
            k(b"PHP message: PHP Warning:  Undefined variable $x in /www/a.php on line 3"),
            RecordKind::FpmWorker
        );
        assert_eq!(k(b"/docker-entrypoint.sh: Configuration complete; ready for start up"), RecordKind::Other);
        assert_eq!(k(b"#0 /www/fatal.php(9): OrderRepository->find()"), RecordKind::Other);
        assert_eq!(k(b""), RecordKind::Blank);
        assert_eq!(k(b"[22-Nov-2026 04:14:42 UTC] PHP Fatal error:  x in /a.php on line 1"), RecordKind::PhpError);
        assert!(RecordKind::Access.starts() && !RecordKind::Other.starts() && !RecordKind::FpmWorker.starts());
    }
}
