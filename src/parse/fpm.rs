//! PHP-FPM master log lines and slow-log blocks.
//!
//! Input: one physical line (master log) or one slow-log block (header line plus its
//! `script_filename` and frame lines), without the final newline. Output: `FpmLine` (layout:
//! stamp, level, body) and `FpmInfo` (what the body says: event kind, pool, child pid,
//! signal, exit code, script, request, elapsed seconds). Invariants: every layout of
//! taxonomy.md section 3 is accepted: `[stamp] LEVEL: msg`, the debug layout with
//! microseconds and `pid N, func(), line N: `, undecorated worker output (`LEVEL: msg` or raw
//! `PHP message: ...` with no stamp), and the syslog-style `[LEVEL] msg`; no allocation; no
//! panic on any bytes.

use crate::model::{FpmKind, Level};
use memchr::memmem;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct FpmLine<'a> {
    /// `DD-Mon-YYYY HH:MM:SS` inside the brackets (no microseconds), if stamped.
    pub stamp: Option<&'a [u8]>,
    pub micros: Option<u32>,
    pub level: Option<Level>,
    /// The message after the level (and after the debug `pid N, func(), line N: ` prefix).
    pub body: &'a [u8],
}

/// Does a master-log line start with a stamp `[DD-Mon-YYYY HH:MM:SS`?
#[inline]
pub fn is_stamped(line: &[u8]) -> bool {
    line.len() >= 22
        && line[0] == b'['
        && line[3] == b'-'
        && line[7] == b'-'
        && line[12] == b' '
        && line[1].is_ascii_digit()
}

/// Parse one master-log line. `None` if it is not an FPM line in any known layout.
pub fn parse_line(line: &[u8]) -> Option<FpmLine<'_>> {
    let mut out = FpmLine::default();
    let mut rest = line;
    if is_stamped(line) {
        let close = memchr::memchr(b']', line)?;
        let inner = &line[1..close];
        if inner.len() < 20 {
            return None;
        }
        out.stamp = Some(&inner[..20]);
        if inner.len() > 20 {
            let frac = inner[20..].strip_prefix(b".")?;
            if frac.is_empty() || frac.len() > 6 || !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let mut v = 0u32;
            for i in 0..6 {
                v = v * 10 + frac.get(i).map(|c| (c - b'0') as u32).unwrap_or(0);
            }
            out.micros = Some(v);
        }
        rest = line.get(close + 1..)?;
        rest = rest.strip_prefix(b" ")?;
    }
    // `LEVEL: ` or syslog's `[LEVEL] `.
    let colon = memchr::memchr(b':', rest);
    let (level, body) = match colon {
        Some(c) if c <= 7 && Level::from_fpm(&rest[..c]).is_some() => {
            (Level::from_fpm(&rest[..c]), rest.get(c + 1..).unwrap_or(&[]))
        }
        _ => match rest.strip_prefix(b"[").and_then(|r| memchr::memchr(b']', r).map(|e| (r, e))) {
            Some((r, e)) if Level::from_fpm(&r[..e]).is_some() => (Level::from_fpm(&r[..e]), &r[e + 1..]),
            _ => {
                // Raw PHP output relayed without a level (undecorated, no zlog prefix).
                if out.stamp.is_none() && (rest.starts_with(b"PHP ") || rest.starts_with(b"PHP message: ")) {
                    (Some(Level::Notice), rest)
                } else {
                    return None;
                }
            }
        },
    };
    out.level = level;
    let mut body = body.strip_prefix(b" ").unwrap_or(body);
    body = body.strip_prefix(b" ").unwrap_or(body);
    // Debug layout: `pid 1, fpm_event_loop(), line 383: ...`; through syslog (which has the
    // pid) `fpm_event_loop(), line 383: ...`.
    if let Some(r) = body.strip_prefix(b"pid ") {
        if let Some(p) = find!(r, b", line ") {
            if let Some(c) = find!(&r[p..], b": ") {
                body = &r[p + c + 2..];
            }
        }
    } else if let Some(p) = find!(body, b"(), line ") {
        let func_ok = p > 0 && body[..p].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        let rest = &body[p + 9..];
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if func_ok && digits > 0 && rest[digits..].starts_with(b": ") {
            body = &rest[digits + 2..];
        }
    }
    out.body = body;
    Some(out)
}

/// What an FPM message says.
#[derive(Debug, Clone, PartialEq)]
pub struct FpmInfo<'a> {
    pub kind: FpmKind,
    pub pool: Option<&'a [u8]>,
    pub child_pid: Option<u32>,
    pub signal: Option<u32>,
    pub exit_code: Option<i32>,
    pub script: Option<&'a [u8]>,
    pub request: Option<&'a [u8]>,
    pub elapsed_s: Option<f64>,
}

fn num<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
    let n = b.iter().take_while(|c| c.is_ascii_digit() || **c == b'-').count();
    std::str::from_utf8(&b[..n]).ok()?.parse().ok()
}

fn float(b: &[u8]) -> Option<f64> {
    let n = b.iter().take_while(|c| c.is_ascii_digit() || **c == b'.').count();
    std::str::from_utf8(&b[..n]).ok()?.parse().ok()
}

fn after<'a>(b: &'a [u8], pat: &[u8]) -> Option<&'a [u8]> {
    memmem::find(b, pat).map(|i| &b[i + pat.len()..])
}

/// Interpret a message body (from `FpmLine::body`) of a line at `level`: the errors table
/// (`ERRORS`) only reads lines at WARNING or above, where its generic words cannot mislabel a
/// notice.
pub fn interpret_at(body: &[u8], level: Option<crate::model::Level>) -> FpmInfo<'_> {
    let mut info = interpret(body);
    if info.kind == FpmKind::Other && level.is_some_and(|l| l <= crate::model::Level::Warn) {
        let m = strip_pool(body);
        if let Some((_, kind)) = ERRORS.iter().find(|(pat, _)| memmem::find(m, pat).is_some()) {
            info.kind = *kind;
        }
    }
    info
}

/// The message after a `[pool x] ` prefix.
fn strip_pool(body: &[u8]) -> &[u8] {
    match body.strip_prefix(b"[pool ").and_then(|r| memchr::memchr(b']', r).map(|e| &r[e + 1..])) {
        Some(m) => m.strip_prefix(b" ").unwrap_or(m),
        None => body,
    }
}

/// Interpret a message body (from `FpmLine::body`).
pub fn interpret(body: &[u8]) -> FpmInfo<'_> {
    let mut info = FpmInfo {
        kind: FpmKind::Other,
        pool: None,
        child_pid: None,
        signal: None,
        exit_code: None,
        script: None,
        request: None,
        elapsed_s: None,
    };
    let mut m = body;
    if let Some(r) = m.strip_prefix(b"[pool ") {
        if let Some(e) = memchr::memchr(b']', r) {
            info.pool = Some(&r[..e]);
            m = r.get(e + 1..).unwrap_or(&[]);
            m = m.strip_prefix(b" ").unwrap_or(m);
        }
    }
    if let Some(r) = m.strip_prefix(b"child ").filter(|r| r.first().is_some_and(u8::is_ascii_digit)) {
        info.child_pid = num(r);
        let r = &r[r.iter().take_while(|c| c.is_ascii_digit()).count()..];
        if let Some(sig) = r.strip_prefix(b" exited on signal ") {
            info.kind = FpmKind::ChildSignal;
            info.signal = num(sig);
            info.elapsed_s = after(sig, b" after ").and_then(float);
        } else if let Some(code) = r.strip_prefix(b" exited with code ") {
            info.kind = FpmKind::ChildExitCode;
            info.exit_code = num(code);
            info.elapsed_s = after(code, b" after ").and_then(float);
        } else if let Some(s) = r.strip_prefix(b", script '") {
            // child N, script 'S' (request: "R") execution timed out (X sec), terminating
            let end = find!(s, b"' (request: \"").or_else(|| find!(s, b"' "));
            if let Some(e) = end {
                info.script = Some(&s[..e]);
                let t = &s[e..];
                if let Some(req) = t.strip_prefix(b"' (request: \"") {
                    if let Some(q) = super::rfind_at(req, b"\") ", 1) {
                        info.request = Some(&req[..q]);
                    }
                }
                if let Some(x) = after(t, b"execution timed out (") {
                    info.kind = FpmKind::ExecutionTimedOut;
                    info.elapsed_s = float(x);
                } else if let Some(x) = after(t, b"executing too slow (") {
                    info.kind = FpmKind::ExecutingTooSlow;
                    info.elapsed_s = float(x);
                }
            }
        } else if r.starts_with(b" said into ") {
            // The relayed payload may itself be a known worker message.
            info.kind = if find!(r, b"Connection disallowed: IP address").is_some() {
                FpmKind::ConnectionDisallowed
            } else {
                FpmKind::SaidIntoStderr
            };
        } else if r.starts_with(b" started") {
            info.kind = FpmKind::ChildStarted;
        } else if r.starts_with(b" stopped for tracing") {
            info.kind = FpmKind::TraceStep;
        }
        return info;
    }
    const TABLE: &[(&[u8], FpmKind)] = &[
        (b"server reached pm.max_children setting", FpmKind::MaxChildren),
        (b"server reached max_children setting", FpmKind::MaxChildren),
        (b"seems busy", FpmKind::SeemsBusy),
        (b"fpm is running, pid ", FpmKind::Starting),
        (b"ready to handle connections", FpmKind::Ready),
        (b"Reloading in progress", FpmKind::Reloading),
        (b"reloading: execvp(", FpmKind::ReloadExec),
        (b"Terminating ...", FpmKind::Terminating),
        (b"Finishing ...", FpmKind::Finishing),
        (b"exiting, bye-bye!", FpmKind::Exiting),
        (b"FPM initialization failed", FpmKind::StartFailure),
        (b"unable to bind listening socket", FpmKind::BindFailure),
        (b"Another FPM instance seems to already listen", FpmKind::BindFailure),
        // PHP 7.1 to 8.x write "An another FPM instance ...".
        (b"another FPM instance seems to already listen", FpmKind::BindFailure),
        // PHP 5.3's bind failure.
        (b"bind() for address", FpmKind::BindFailure),
        (b"failed to listen to address", FpmKind::BindFailure),
        (b"test is successful", FpmKind::ConfigTest),
        (b"error log file re-opened", FpmKind::LogReopened),
        (b"failed to ptrace(ATTACH) child", FpmKind::PtraceFailed),
        (b"failed processes threshold", FpmKind::FailedProcessesThreshold),
        (b"fork() failed", FpmKind::ResourceLimit),
        (b"maximum number of processes has been reached", FpmKind::ResourceLimit),
        (b"failed to set rlimit", FpmKind::ResourceLimit),
        (b"unable to allocate", FpmKind::ResourceLimit),
        (b"child failed to initialize", FpmKind::ResourceLimit),
        (b"failed to chown() the socket", FpmKind::SocketPermission),
        (b"ACL set, listen.", FpmKind::SocketPermission),
        (b"directive is ignored when FPM is not running as root", FpmKind::SocketPermission),
        (b"cannot create ACL", FpmKind::SocketPermission),
        (b"Connection disallowed: IP address", FpmKind::ConnectionDisallowed),
        (b"PHP message: ", FpmKind::PhpMessage),
        (b"unknown child (", FpmKind::UnknownChild),
        (b"about to trace ", FpmKind::TraceStep),
        (b"finished trace of ", FpmKind::TraceStep),
    ];
    for (pat, kind) in TABLE {
        if memmem::find(m, pat).is_some() {
            info.kind = *kind;
            break;
        }
    }
    match info.kind {
        FpmKind::PtraceFailed => info.child_pid = after(m, b"child ").and_then(num),
        FpmKind::TraceStep => info.child_pid = after(m, b"trace ").or_else(|| after(m, b"trace of ")).and_then(num),
        FpmKind::UnknownChild => info.child_pid = after(m, b"unknown child (").and_then(num),
        _ => {}
    }
    if info.kind == FpmKind::Other && (m.starts_with(b"PHP ") || m.starts_with(b"Fatal error: ")) {
        info.kind = FpmKind::PhpMessage;
    }
    info
}

/// FPM's errors and alerts (`reference/fpm-messages.tsv`), after `interpret`'s table: what
/// made it refuse a configuration, fail on a file, or fail inside (a test renders every ERROR
/// and ALERT message of the catalog and checks that each gets one of these or a more specific
/// event).
const ERRORS: &[(&[u8], FpmKind)] = &[
    (b"failed to reload", FpmKind::ReloadFailed),
    // A full listen queue: requests wait for a child, as at pm.max_children.
    (b"listening queue is not empty", FpmKind::MaxChildren),
    (b"already used in another pool", FpmKind::BindFailure),
    // Files.
    (b"PID file", FpmKind::FileError),
    (b"slowlog(", FpmKind::FileError),
    (b"open slowlog", FpmKind::FileError),
    (b"error_log", FpmKind::FileError),
    (b"access_log", FpmKind::FileError),
    (b"access log", FpmKind::FileError),
    (b"re-opened error log", FpmKind::FileError),
    (b"failed to open configuration file", FpmKind::ConfigError),
    (b"failed to open ", FpmKind::FileError),
    // The configuration, the pool's user, its paths and its limits.
    (b"cannot get uid for user", FpmKind::ConfigError),
    (b"cannot get gid for group", FpmKind::ConfigError),
    (b"please specify user and group other than root", FpmKind::ConfigError),
    (b"user has not been defined", FpmKind::ConfigError),
    (b"have been defined", FpmKind::ConfigError),
    (b"No pool defined", FpmKind::ConfigError),
    (b"configuration file", FpmKind::ConfigError),
    (b"configuration filename", FpmKind::ConfigError),
    (b"post process the configuration", FpmKind::ConfigError),
    (b"nclude", FpmKind::ConfigError),
    (b"Unable to globalize", FpmKind::ConfigError),
    (b"must be", FpmKind::ConfigError),
    (b"must not be", FpmKind::ConfigError),
    (b"must start with", FpmKind::ConfigError),
    (b"must contain only", FpmKind::ConfigError),
    (b"must begin with", FpmKind::ConfigError),
    (b"must provide", FpmKind::ConfigError),
    (b"can't be", FpmKind::ConfigError),
    (b"cannot be greater", FpmKind::ConfigError),
    (b"is not long enough", FpmKind::ConfigError),
    (b"does not exist or is not a directory", FpmKind::ConfigError),
    (b"is missing", FpmKind::ConfigError),
    (b"is not set", FpmKind::ConfigError),
    (b"is not defined", FpmKind::ConfigError),
    (b"wrong format for", FpmKind::ConfigError),
    (b"Wrong IP address", FpmKind::ConfigError),
    (b"no allowed addresses", FpmKind::ConfigError),
    (b"invalid port value", FpmKind::ConfigError),
    (b"invalid status values", FpmKind::ConfigError),
    (b"getaddrinfo", FpmKind::ConfigError),
    (b"ONLY be used", FpmKind::ConfigError),
    (b"Passing INI directive", FpmKind::ConfigError),
    (b"Unable to set php_", FpmKind::ConfigError),
    (b"unknown entry", FpmKind::ConfigError),
    (b"unknown directive", FpmKind::ConfigError),
    (b"Unknown INI syntax", FpmKind::ConfigError),
    (b"empty value", FpmKind::ConfigError),
    (b"unable to parse value", FpmKind::ConfigError),
    (b"error while parsing", FpmKind::ConfigError),
    (b"are not allowed", FpmKind::ConfigError),
    (b"are ignored", FpmKind::ConfigError),
    (b"two includes at the same time", FpmKind::ConfigError),
    (b"for a ZEND_INI_PARSER_ENTRY", FpmKind::ConfigError),
    (b"Unable to alloc", FpmKind::ConfigError),
    (b"event mechanism", FpmKind::ConfigError),
    (b"rlimit", FpmKind::ResourceLimit),
    (b"Too many open files", FpmKind::ResourceLimit),
    (b"kill(", FpmKind::SystemError),
    (b"is not supported on your system", FpmKind::ConfigError),
    (b"was too low for the ondemand", FpmKind::ConfigError),
    (b"as a modifier for", FpmKind::ConfigError),
    (b"access.format", FpmKind::ConfigError),
    (b"embrace", FpmKind::ConfigError),
    (b"Found multiple addresses", FpmKind::ConfigError),
    (b"systemd", FpmKind::SystemError),
    (b"concurrent reloads", FpmKind::SystemError),
    (b"socket", FpmKind::BindFailure),
    (b"no event module", FpmKind::ConfigError),
    (b"ptrace is denied", FpmKind::ConfigError),
    // Privileges and confinement of a new child (the pool's user, chroot, ACLs, AppArmor).
    (b"failed to setuid", FpmKind::ConfigError),
    (b"failed to setgid", FpmKind::ConfigError),
    (b"failed to initgroups", FpmKind::ConfigError),
    (b"failed to chroot", FpmKind::ConfigError),
    (b"failed to chdir", FpmKind::ConfigError),
    (b"apparmor", FpmKind::ConfigError),
    (b"confinement", FpmKind::ConfigError),
    (b"ACL", FpmKind::SocketPermission),
    (b"failed to prctl", FpmKind::SystemError),
    (b"failed to procctl", FpmKind::SystemError),
    (b"failed to setpflags", FpmKind::SystemError),
    // FPM's own machinery.
    (b"epoll", FpmKind::SystemError),
    (b"kqueue", FpmKind::SystemError),
    (b"kevent", FpmKind::SystemError),
    (b"poll:", FpmKind::SystemError),
    (b"poll()", FpmKind::SystemError),
    (b"/dev/poll", FpmKind::SystemError),
    (b"port:", FpmKind::SystemError),
    (b"select", FpmKind::SystemError),
    (b"event", FpmKind::SystemError),
    (b"signal", FpmKind::SystemError),
    (b"pipe", FpmKind::SystemError),
    (b"stdio", FpmKind::SystemError),
    (b"STDERR", FpmKind::SystemError),
    (b"stderr fd", FpmKind::SystemError),
    (b"malloc", FpmKind::SystemError),
    (b"allocate", FpmKind::SystemError),
    (b"memory", FpmKind::SystemError),
    (b"mem is NULL", FpmKind::SystemError),
    (b"clock", FpmKind::SystemError),
    (b"scoreboard", FpmKind::SystemError),
    (b"shm", FpmKind::SystemError),
    (b"SHM", FpmKind::SystemError),
    (b"spprintf() failed", FpmKind::SystemError),
    (b"failed to daemonize", FpmKind::SystemError),
    (b"ptrace(", FpmKind::SystemError),
    (b"SIGSTOP", FpmKind::SystemError),
    (b"task_for_pid", FpmKind::SystemError),
    (b"vm page", FpmKind::SystemError),
    (b"pread() failed", FpmKind::SystemError),
    (b"TCP_INFO", FpmKind::SystemError),
    (b"TCP_CONNECTION_INFO", FpmKind::SystemError),
    (b"routing table", FpmKind::SystemError),
    (b"FD_SETSIZE", FpmKind::SystemError),
    (b"priority", FpmKind::SystemError),
    (b"new listening socket", FpmKind::BindFailure),
    (b"fpm_status", FpmKind::SystemError),
    (b"status shared memory", FpmKind::SystemError),
    (b"status listener pool", FpmKind::ConfigError),
    (b"inherit data on parent exec", FpmKind::SystemError),
    (b"master process didn't send back its status", FpmKind::StartFailure),
    (b"what child", FpmKind::SystemError),
    (b"Unable to free", FpmKind::SystemError),
    (b"Unable to open primary script", FpmKind::PhpMessage),
];

/// Slow-log block header: `[DD-Mon-YYYY HH:MM:SS]  [pool www] pid 1234`.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowHeader<'a> {
    pub stamp: &'a [u8],
    pub pool: &'a [u8],
    pub pid: u32,
}

pub fn parse_slow_header(line: &[u8]) -> Option<SlowHeader<'_>> {
    if !is_stamped(line) {
        return None;
    }
    let close = memchr::memchr(b']', line)?;
    let stamp = line.get(1..21)?;
    let rest = &line[close + 1..];
    let rest = rest.strip_prefix(b"  [pool ").or_else(|| rest.strip_prefix(b" [pool "))?;
    let e = memchr::memchr(b']', rest)?;
    let pool = &rest[..e];
    let pid = num(rest.get(e + 1..)?.strip_prefix(b" pid ")?)?;
    Some(SlowHeader { stamp, pool, pid })
}

/// A slow-log block: its header, script and the first frame (the blocking call).
#[derive(Debug, Clone, PartialEq)]
pub struct SlowBlock<'a> {
    pub header: SlowHeader<'a>,
    pub script: Option<&'a [u8]>,
    pub first_frame: Option<&'a [u8]>,
    pub frames: usize,
    /// Lines of the block that fit none of the slow-log shapes.
    pub odd_lines: usize,
}

/// Parse a block given as its lines (header first).
pub fn parse_slow_block<'a>(lines: &[&'a [u8]]) -> Option<SlowBlock<'a>> {
    let header = parse_slow_header(lines.first()?)?;
    let mut b = SlowBlock { header, script: None, first_frame: None, frames: 0, odd_lines: 0 };
    for l in &lines[1..] {
        if let Some(s) = l.strip_prefix(b"script_filename = ") {
            b.script = Some(s);
        } else if l.starts_with(b"[0x") {
            b.frames += 1;
            if b.first_frame.is_none() {
                let e = memchr::memchr(b']', l).map(|e| e + 2).unwrap_or(l.len()).min(l.len());
                b.first_frame = Some(&l[e..]);
            }
        } else if !is_slow_body_line(l) {
            b.odd_lines += 1;
        }
    }
    Some(b)
}

/// Does a line after a slow-log header fit one of the block's shapes (script, frame,
/// `+++ dump failed`, blank)?
pub fn is_slow_body_line(l: &[u8]) -> bool {
    l.starts_with(b"script_filename = ") || l.starts_with(b"[0x") || l == b"+++ dump failed" || l.is_empty()
}

/// Does a slow-log line open a block? The reader and the chunker must agree on this, or a
/// stamped line that is not a valid header would end a block in one read and not in another
/// (found by the `chunk` fuzz target).
pub fn is_slow_block_start(l: &[u8]) -> bool {
    parse_slow_header(l).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: Option<&[u8]>) -> Option<&str> {
        b.map(|b| std::str::from_utf8(b).unwrap())
    }

    #[test]
    fn layouts() {
        let l = parse_line(b"[16-Jun-2023 12:06:33] WARNING: [pool www] server reached pm.max_children setting (5), consider raising it").unwrap();
        assert_eq!(s(l.stamp), Some("16-Jun-2023 12:06:33"));
        assert_eq!(l.level, Some(Level::Warn));
        let i = interpret(l.body);
        assert_eq!((i.kind, s(i.pool)), (FpmKind::MaxChildren, Some("www")));

        let d = parse_line(
            b"[16-Jun-2023 12:06:33.123456] DEBUG: pid 1, fpm_event_loop(), line 383: ready to handle connections",
        )
        .unwrap();
        assert_eq!((d.micros, d.level), (Some(123_456), Some(Level::Debug)));
        assert_eq!(interpret(d.body).kind, FpmKind::Ready);

        let u = parse_line(b"NOTICE: PHP message: PHP Warning:  Undefined variable $x in /var/www/a.php on line 3")
            .unwrap();
        assert_eq!((u.stamp, u.level), (None, Some(Level::Notice)));
        assert_eq!(interpret(u.body).kind, FpmKind::PhpMessage);

        let sys = parse_line(
            b"[WARNING] [pool www] child 12 exited on signal 11 (SIGSEGV - core dumped) after 3.5 seconds from start",
        )
        .unwrap();
        let i = interpret(sys.body);
        assert_eq!((i.kind, i.child_pid, i.signal, i.elapsed_s), (FpmKind::ChildSignal, Some(12), Some(11), Some(3.5)));

        assert!(parse_line(b"random text").is_none());
        assert!(parse_line(b"[16-Jun-2023 12:06:33] BOGUS: x").is_none());
    }

    #[test]
    fn request_timeouts() {
        let l = parse_line(br#"[22-Nov-2026 03:41:07] WARNING: [pool www] child 4242, script '/srv/www/slow.php' (request: "GET /slow.php?rid=tt-0003&sleep=10") execution timed out (3.009803 sec), terminating"#).unwrap();
        let i = interpret(l.body);
        assert_eq!(i.kind, FpmKind::ExecutionTimedOut);
        assert_eq!(i.child_pid, Some(4242));
        assert_eq!(s(i.script), Some("/srv/www/slow.php"));
        assert_eq!(s(i.request), Some("GET /slow.php?rid=tt-0003&sleep=10"));
        assert_eq!(i.elapsed_s, Some(3.009803));
        let old = interpret(b"[pool www] child 5, script '/a.php' executing too slow (5.000000 sec), logging");
        assert_eq!((old.kind, old.request), (FpmKind::ExecutingTooSlow, None));
    }

    #[test]
    fn exits_and_lifecycle() {
        let i = interpret(b"[pool www] child 77 exited with code 124 after 4.1 seconds from start");
        assert_eq!((i.kind, i.exit_code), (FpmKind::ChildExitCode, Some(124)));
        assert_eq!(interpret(b"Terminating ...").kind, FpmKind::Terminating);
        assert_eq!(interpret(b"exiting, bye-bye!").kind, FpmKind::Exiting);
        assert_eq!(interpret(b"reloading: execvp(\"/usr/sbin/php-fpm8.2\", {\"php-fpm\"})").kind, FpmKind::ReloadExec);
        assert_eq!(
            interpret(b"[pool www] child 9 said into stderr: \"NOTICE: PHP message: x\"").kind,
            FpmKind::SaidIntoStderr
        );
        assert_eq!(
            interpret(b"unable to bind listening socket for address '/run/x.sock': No such file or directory (2)").kind,
            FpmKind::BindFailure
        );
        assert_eq!(
            interpret(b"[pool www] ACL set, listen.owner = 'www-data' is ignored").kind,
            FpmKind::SocketPermission
        );
        let p = interpret(b"failed to ptrace(ATTACH) child 1234: Operation not permitted (1)");
        assert_eq!((p.kind, p.child_pid), (FpmKind::PtraceFailed, Some(1234)));
        assert_eq!(
            interpret(b"Connection disallowed: IP address '127.0.0.1' has been dropped.").kind,
            FpmKind::ConnectionDisallowed
        );
    }

    #[test]
    fn lines_users_post_get_specific_events() {
        // Issue 14: FPM lines of PHP 5.3 to 8.3 as users pasted them, at WARNING or above.
        for (line, want) in [
            ("[12-Jan-2013 10:11:12] ERROR: bind() for address '127.0.0.1:9000' failed: Address already in use (98)", FpmKind::BindFailure),
            ("[12-Jan-2021 10:11:12] ERROR: An another FPM instance seems to already listen on /run/php/php7.4-fpm.sock", FpmKind::BindFailure),
            ("[12-Jan-2021 10:11:12] ERROR: unable to bind listening socket for address '/run/php/php7.4-fpm.sock': No such file or directory (2)", FpmKind::BindFailure),
            ("[12-Jan-2021 10:11:12] ERROR: [pool www] cannot get uid for user 'www-data'", FpmKind::ConfigError),
            ("[12-Jan-2021 10:11:12] ERROR: [pool www] cannot get gid for group 'nginx'", FpmKind::ConfigError),
            ("[12-Jan-2021 10:11:12] ERROR: [pool www] please specify user and group other than root", FpmKind::ConfigError),
            ("[12-Jan-2021 10:11:12] ERROR: failed to post process the configuration", FpmKind::ConfigError),
            ("[12-Jan-2021 10:11:12] ERROR: [/etc/php/8.1/fpm/pool.d/www.conf:12] unknown entry 'pm.max_chidren'", FpmKind::ConfigError),
            ("[12-Jan-2021 10:11:12] WARNING: Nothing matches the include pattern '/etc/php/7.4/fpm/pool.d/*.conf' from /etc/php/7.4/fpm/php-fpm.conf at line 143.", FpmKind::ConfigError),
            ("[12-Jan-2021 10:11:12] ERROR: Unable to create or open slowlog(/var/log/php-fpm/www-slow.log): No such file or directory (2)", FpmKind::FileError),
            ("[12-Jan-2021 10:11:12] ERROR: failed to open error_log (/var/log/php-fpm/error.log): Permission denied (13)", FpmKind::FileError),
            ("[12-Jan-2021 10:11:12] ERROR: failed to reload: execvp() failed: No such file or directory (2)", FpmKind::ReloadFailed),
            ("[12-Jan-2021 10:11:12] ERROR: FPM initialization failed", FpmKind::StartFailure),
            ("[12-Jan-2013 10:11:12] ERROR: unable to read what child say: Bad file descriptor (9)", FpmKind::SystemError),
            ("[12-Jan-2021 10:11:12] ERROR: failed to prepare the stderr pipe: Too many open files (24)", FpmKind::ResourceLimit),
            ("[12-Jan-2021 10:11:12] ERROR: failed to create new listening socket: socket(): Too many open files (24)", FpmKind::ResourceLimit),
            ("[12-Jan-2021 10:11:12] WARNING: [pool www] listening queue is not empty, #12 requests are waiting to be served, consider raising pm.max_children setting (5)", FpmKind::MaxChildren),
            ("[12-Jan-2021 10:11:12] ALERT: oops, unknown child (1234) exited on signal 11", FpmKind::UnknownChild),
            ("[12-Jan-2021 10:11:12] WARNING: [pool www] child 1234 said into stderr: \"zend_mm_heap corrupted\"", FpmKind::SaidIntoStderr),
        ] {
            let l = parse_line(line.as_bytes()).unwrap();
            assert_eq!(interpret_at(l.body, l.level).kind, want, "{line}");
        }
    }

    #[test]
    fn slow_block() {
        let lines: Vec<&[u8]> = vec![
            b"[22-Nov-2026 03:41:07]  [pool www] pid 1234",
            b"script_filename = /var/www/html/slow.php",
            b"[0x00007f2b5c213440] sleep() /var/www/html/slow.php:3",
            b"[0x00007f2b5c2133a0] main() /var/www/html/index.php:12",
        ];
        let b = parse_slow_block(&lines).unwrap();
        assert_eq!(b.header.pid, 1234);
        assert_eq!(s(Some(b.header.pool)), Some("www"));
        assert_eq!(s(b.script), Some("/var/www/html/slow.php"));
        assert_eq!(s(b.first_frame), Some("sleep() /var/www/html/slow.php:3"));
        assert_eq!((b.frames, b.odd_lines), (2, 0));
    }
}
