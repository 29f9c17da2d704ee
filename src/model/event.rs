//! Event rows: the owned records the scan keeps (nginx error lines, FPM events, failing
//! requests) and the diagnostics it raises.
//!
//! Input: nothing (vocabulary). Output: row types shared by scan, correlate, aggregate and
//! render. Invariants: rows are only built for lines that matter (a healthy access line never
//! becomes a row); every row names its file (`source`) and 1-based physical `line`.

use super::cause::{string_enum, Cause, CauseClass};
use super::texts::{text_fields, Texts};
use super::time::Ts;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

string_enum! {
    /// nginx levels (`emerg`..`debug`) and PHP-FPM levels (`ALERT`..`DEBUG`) on one scale.
    pub enum Level {
        Emerg => "emerg", Alert => "alert", Crit => "crit", Error => "error",
        Warn => "warn", Notice => "notice", Info => "info", Debug => "debug",
    }
}

impl Level {
    pub fn from_nginx(b: &[u8]) -> Option<Level> {
        Some(match b {
            b"emerg" => Level::Emerg,
            b"alert" => Level::Alert,
            b"crit" => Level::Crit,
            b"error" => Level::Error,
            b"warn" => Level::Warn,
            b"notice" => Level::Notice,
            b"info" => Level::Info,
            b"debug" => Level::Debug,
            _ => return None,
        })
    }

    pub fn from_fpm(b: &[u8]) -> Option<Level> {
        Some(match b {
            b"ALERT" => Level::Alert,
            b"ERROR" => Level::Error,
            b"WARNING" => Level::Warn,
            b"NOTICE" => Level::Notice,
            b"DEBUG" => Level::Debug,
            _ => return None,
        })
    }

    /// `warn` or more severe.
    pub fn at_least_warn(self) -> bool {
        self <= Level::Warn
    }
}

string_enum! {
    /// The `while ...` action of an nginx error line (taxonomy.md section 1.3).
    pub enum Phase {
        None => "",
        Connecting => "connecting to upstream",
        SslHandshakingUpstream => "SSL handshaking to upstream",
        SendingRequest => "sending request to upstream",
        ReadingResponseHeader => "reading response header from upstream",
        ReadingUpstream => "reading upstream",
        SendingToClient => "sending to client",
        ProxyingUpgraded => "proxying upgraded connection",
        /// The stream (TCP/UDP) proxy module's actions.
        StreamFromUpstream => "proxying and reading from upstream",
        StreamFromClient => "proxying and reading from client",
        StreamProxying => "proxying connection",
        SendingEarlyHints => "sending early hints to client",
        Resolving => "resolving",
        ReadingClientHeaders => "reading client request headers",
        ReadingClientLine => "reading client request line",
        ReadingClientBody => "reading client request body",
        SslHandshakingClient => "SSL handshaking",
        ClosingRequest => "closing request",
        Other => "other",
    }
}

impl Phase {
    pub fn from_action(a: &[u8]) -> Phase {
        // Exact strings nginx sets (ngx_http_upstream.c, ngx_http_request.c, ngx_resolver.c).
        for p in Phase::ALL {
            if !matches!(p, Phase::None | Phase::Other) && a == p.as_str().as_bytes() {
                return *p;
            }
        }
        Phase::Other
    }

    /// Phases of the upstream connection.
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            Phase::Connecting
                | Phase::SslHandshakingUpstream
                | Phase::SendingRequest
                | Phase::ReadingResponseHeader
                | Phase::ReadingUpstream
                | Phase::ProxyingUpgraded
                | Phase::StreamFromUpstream
                | Phase::StreamProxying
        )
    }
}

/// One nginx error-log entry (a line plus its continuation lines).
#[derive(Clone, Debug)]
pub struct ErrorEvent {
    pub ts: Ts,
    pub source: u32,
    pub line: u64,
    /// Physical lines in the entry (more than 1 for multi-line FastCGI stderr).
    pub lines: u32,
    pub level: Level,
    pub pid: u32,
    pub conn: Option<u64>,
    /// Signature id from the classifier table (`classify::Signature::id`).
    pub signature: &'static str,
    pub errno: Option<i32>,
    pub phase: Phase,
    pub class: CauseClass,
    pub cause: Cause,
    /// Counts as an upstream failure (not noise, not an application message).
    pub failure: bool,
    /// `client`, `server`, `request`, `upstream`, `host`, `referrer`: read through the methods
    /// of those names.
    pub texts: Texts<6>,
    /// Shared by the rows of one scan worker with the same text (`texts::Interner`).
    pub message: Arc<str>,
    /// The envelope the line came in (container, program, stream, host), if any.
    pub origin: Option<std::sync::Arc<super::source::Origin>>,
}

/// `ErrorEvent::is_quiet` from the classification alone (before the row is built).
pub fn is_quiet(failure: bool, class: CauseClass, signature: &str) -> bool {
    use super::cause::CauseClass::*;
    !(failure || matches!(class, C10 | C11 | C12 | C28 | C8 | RL) || signature.starts_with("nginx_"))
}

impl ErrorEvent {
    /// Can belong to a request: upstream failures, the application/client lines that
    /// explain a 500 or a 499, and nginx's own refusals (`limit_req`, `limit_conn`).
    pub fn joinable(&self) -> bool {
        use super::cause::CauseClass::*;
        self.failure || matches!(self.class, C10 | C11 | C12 | C28 | C8 | RL)
    }

    /// nginx's own lifecycle (start, reload, exit: signatures `nginx_*`), listed around
    /// incidents.
    pub fn is_lifecycle(&self) -> bool {
        self.signature.starts_with("nginx_")
    }

    /// Read by no verdict and no table but the row tables: neither joinable nor lifecycle
    /// (`scan::quiet` keeps such rows out of memory).
    pub fn is_quiet(&self) -> bool {
        is_quiet(self.failure, self.class, self.signature)
    }

    /// The upstream peer as `$upstream_addr` shows it: `127.0.0.1:9000`, `unix:/run/x.sock`,
    /// or the upstream{} group name.
    pub fn peer(&self) -> Option<&str> {
        self.upstream().map(upstream_peer)
    }

    text_fields!(client = 0, server = 1, request = 2, upstream = 3, host = 4, referrer = 5);
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// An nginx error-log entry borrowed (from an `ErrorEvent`, or from the bytes of a quiet
/// row, `scan::quiet`): what the tables are built from without copying a string.
#[derive(Clone, Copy, Debug)]
pub struct ErrorRef<'a> {
    pub ts: Ts,
    pub source: u32,
    pub line: u64,
    pub lines: u32,
    pub level: Level,
    pub pid: u32,
    pub conn: Option<u64>,
    pub signature: &'static str,
    pub errno: Option<i32>,
    pub phase: Phase,
    pub class: CauseClass,
    pub cause: Cause,
    pub failure: bool,
    pub client: Option<&'a str>,
    pub server: Option<&'a str>,
    pub request: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub host: Option<&'a str>,
    pub referrer: Option<&'a str>,
    pub message: &'a str,
    pub origin: Option<OriginRef<'a>>,
}

/// An envelope borrowed (`super::source::Origin`).
#[derive(Clone, Copy, Debug)]
pub struct OriginRef<'a> {
    pub envelope: super::source::Envelope,
    pub name: Option<&'a str>,
    pub stream: Option<super::source::Stream>,
    pub host: Option<&'a str>,
}

impl ErrorEvent {
    pub fn view(&self) -> ErrorRef<'_> {
        ErrorRef {
            ts: self.ts,
            source: self.source,
            line: self.line,
            lines: self.lines,
            level: self.level,
            pid: self.pid,
            conn: self.conn,
            signature: self.signature,
            errno: self.errno,
            phase: self.phase,
            class: self.class,
            cause: self.cause,
            failure: self.failure,
            client: self.client(),
            server: self.server(),
            request: self.request(),
            upstream: self.upstream(),
            host: self.host(),
            referrer: self.referrer(),
            message: self.message(),
            origin: self.origin.as_deref().map(super::source::Origin::view),
        }
    }
}

impl super::source::Origin {
    pub fn view(&self) -> OriginRef<'_> {
        OriginRef {
            envelope: self.envelope,
            name: self.name.as_deref(),
            stream: self.stream,
            host: self.host.as_deref(),
        }
    }
}

impl ErrorRef<'_> {
    /// The owned row, with its own copy of the envelope.
    pub fn to_event(&self) -> ErrorEvent {
        let origin = self.origin.map(|o| {
            std::sync::Arc::new(super::source::Origin {
                envelope: o.envelope,
                name: o.name.map(str::to_string),
                stream: o.stream,
                host: o.host.map(str::to_string),
            })
        });
        self.into_event(origin, self.message.into())
    }

    /// The owned row, with `origin` as its envelope (rows of one file share theirs) and
    /// `message` as its message (the scan shares equal ones: `texts::Interner`).
    pub fn into_event(&self, origin: Option<Arc<super::source::Origin>>, message: Arc<str>) -> ErrorEvent {
        ErrorEvent {
            ts: self.ts,
            source: self.source,
            line: self.line,
            lines: self.lines,
            level: self.level,
            pid: self.pid,
            conn: self.conn,
            signature: self.signature,
            errno: self.errno,
            phase: self.phase,
            class: self.class,
            cause: self.cause,
            failure: self.failure,
            texts: Texts::new([self.client, self.server, self.request, self.upstream, self.host, self.referrer]),
            message,
            origin,
        }
    }
}

/// Reduce an error log `upstream: "fastcgi://unix:/run/php.sock:"` or
/// `"http://127.0.0.1:8080/path"` to the peer `$upstream_addr` would show.
pub fn upstream_peer(u: &str) -> &str {
    let rest = u.find("://").map(|i| &u[i + 3..]).unwrap_or(u);
    if let Some(path) = rest.strip_prefix("unix:") {
        // unix:/path:URI -- the separator is the first ':' after the path.
        let end = path.find(':').unwrap_or(path.len());
        return &rest[..5 + end];
    }
    if let Some(v6) = rest.strip_prefix('[') {
        // [::1]:9000/uri
        let close = v6.find(']').map(|i| i + 2).unwrap_or(rest.len());
        let tail = &rest[close..];
        let port = tail.strip_prefix(':').map(|p| p.find('/').unwrap_or(p.len()) + 1).unwrap_or(0);
        return &rest[..close + port];
    }
    let end = rest.find('/').unwrap_or(rest.len());
    &rest[..end]
}

string_enum! {
    /// What an FPM line or slow-log block says.
    pub enum FpmKind {
        MaxChildren => "max_children_reached",
        SeemsBusy => "seems_busy",
        ChildSignal => "child_exited_signal",
        ChildExitCode => "child_exited_code",
        ExecutionTimedOut => "execution_timed_out",
        ExecutingTooSlow => "executing_too_slow",
        SlowlogTrace => "slowlog_trace",
        PtraceFailed => "ptrace_failed",
        SaidIntoStderr => "said_into_stderr",
        PhpMessage => "php_message",
        ConnectionDisallowed => "connection_disallowed",
        SocketPermission => "socket_permission_warning",
        ResourceLimit => "resource_limit",
        FailedProcessesThreshold => "emergency_restart",
        Starting => "starting",
        Ready => "ready",
        Reloading => "reloading",
        ReloadExec => "reload_exec",
        Terminating => "terminating",
        Finishing => "finishing",
        Exiting => "exiting",
        StartFailure => "start_failure",
        BindFailure => "bind_failure",
        /// A configuration FPM refuses (a pool, a value, a user, a path, an include).
        ConfigError => "config_error",
        /// A file FPM cannot open or write (PID file, error_log, access log, slow log).
        FileError => "file_error",
        /// FPM's own machinery failed (event loop, signals, pipes, memory, clock).
        SystemError => "system_error",
        /// `failed to reload: execvp() failed`: FPM could not re-execute itself on SIGUSR2.
        ReloadFailed => "reload_failed",
        ConfigTest => "config_test",
        ChildStarted => "child_started",
        LogReopened => "log_reopened",
        UnknownChild => "unknown_child",
        TraceStep => "trace_step",
        Other => "other",
    }
}

impl FpmKind {
    /// Master lifecycle events (restarts, reloads, config tests) shown around incidents.
    pub fn is_lifecycle(self) -> bool {
        matches!(
            self,
            FpmKind::Starting
                | FpmKind::Ready
                | FpmKind::Reloading
                | FpmKind::ReloadExec
                | FpmKind::Terminating
                | FpmKind::Finishing
                | FpmKind::Exiting
                | FpmKind::StartFailure
                | FpmKind::BindFailure
                | FpmKind::ConfigError
                | FpmKind::ReloadFailed
                | FpmKind::ConfigTest
                | FpmKind::FailedProcessesThreshold
        )
    }
}

/// One FPM event (master log line, worker output line, or slow-log block).
#[derive(Clone, Debug, Serialize)]
pub struct FpmEvent {
    pub ts: Ts,
    /// False when the line had no timestamp (undecorated worker output) and took the time of
    /// the previous stamped line of its file.
    pub ts_exact: bool,
    pub source: u32,
    pub line: u64,
    pub level: Level,
    pub pool: Option<String>,
    pub kind: FpmKind,
    pub child_pid: Option<u32>,
    pub signal: Option<u32>,
    pub exit_code: Option<i32>,
    pub script: Option<String>,
    /// `METHOD /uri?query` as FPM printed it.
    pub request: Option<String>,
    pub elapsed_s: Option<f64>,
    pub message: String,
    /// The envelope the line came in, if any.
    #[serde(skip)]
    pub origin: Option<std::sync::Arc<super::source::Origin>>,
}

impl FpmEvent {
    /// A line no correlation rule reads (a child started, a child exited with code 0: a clean
    /// exit explains no failure) and no table but the row tables and `by_pool.csv`'s counts
    /// shows: kept out of memory after the scan (`scan::quiet_fpm`).
    pub fn is_quiet(&self) -> bool {
        match self.kind {
            FpmKind::ChildStarted => true,
            FpmKind::ChildExitCode => self.exit_code == Some(0),
            _ => false,
        }
    }
}

/// Where a request line (`GET /x?a=1 HTTP/1.1`) holds its method and its target: the method
/// up to the first space, the target after it up to a last space followed by `HTTP/`; a line
/// without a space is all target. The bounds fall on ASCII spaces, so they cut a line read
/// as UTF-8 (lossily) where they cut its bytes.
pub fn request_line_parts(r: &[u8]) -> (Option<std::ops::Range<usize>>, std::ops::Range<usize>) {
    let Some(sp) = memchr::memchr(b' ', r) else {
        return (None, 0..r.len());
    };
    let rest = &r[sp + 1..];
    let end = match memchr::memrchr(b' ', rest) {
        Some(e) if rest[e + 1..].starts_with(b"HTTP/") => e,
        _ => rest.len(),
    };
    (Some(0..sp), sp + 1..sp + 1 + end)
}

/// One access-log request that failed (status 499 or >= 500, or an upstream attempt >= 500).
#[derive(Clone, Debug)]
pub struct RequestEvent {
    /// When the request ended (the access log stamps the end).
    pub ts: Ts,
    pub source: u32,
    pub line: u64,
    pub status: u16,
    /// `method`, `uri`, `request`, `client`, `host`, `upstream_addr`, `upstream_status`: read
    /// through the methods of those names.
    pub texts: Texts<7>,
    /// Shared by the rows of one scan worker with the same text (`texts::Interner`).
    pub user_agent: Option<Arc<str>>,
    /// The layout logs `$upstream_addr` or `$upstream_status`: with both `-`, nginx answered
    /// without contacting an upstream (a limit, a `return`, a static error page).
    pub upstream_logged: bool,
    pub request_time: Option<f64>,
    pub upstream_response_time: Option<f64>,
    pub upstream_connect_time: Option<f64>,
    pub upstream_header_time: Option<f64>,
    /// Per-attempt statuses parsed from `$upstream_status` (0 for `-`).
    pub attempts: Box<[u16]>,
    /// The envelope the line came in, if any.
    pub origin: Option<std::sync::Arc<super::source::Origin>>,
}

impl RequestEvent {
    /// The client saw the failure (499 or 5xx), as opposed to a failed attempt that a
    /// retry hid (`502, 200`).
    pub fn client_facing(&self) -> bool {
        self.status == 499 || self.status >= 500
    }

    /// `$request_method`, or the request line's method. A request line's method and target
    /// are not stored beside it (`texts` holds them only without `$request`): on the 8 GiB
    /// bench corpus that was 45 bytes of each of 160 k held rows.
    pub fn method(&self) -> Option<&str> {
        self.texts.get(0).or_else(|| {
            let r = self.request()?;
            request_line_parts(r.as_bytes()).0.map(|m| &r[m])
        })
    }

    /// `$request_uri` (or `$uri`), or the request line's target.
    pub fn uri(&self) -> Option<&str> {
        self.texts.get(1).or_else(|| {
            let r = self.request()?;
            Some(&r[request_line_parts(r.as_bytes()).1])
        })
    }

    text_fields!(
        /// The request line as sent (`GET /x HTTP/1.1`), used to join error lines.
        request = 2,
        client = 3,
        host = 4,
        upstream_addr = 5,
        upstream_status = 6,
    );

    pub fn failed_attempts(&self) -> usize {
        self.attempts.iter().filter(|s| **s >= 500).count()
    }

    /// When the request started: end minus `$request_time` when logged.
    pub fn start_ts(&self) -> Ts {
        self.ts - self.request_time.map(|t| (t * 1000.0).round() as i64).unwrap_or(0)
    }
}

string_enum! {
    pub enum Severity {
        Warning => "warning",
        Error => "error",
    }
}

/// A problem with an input: named file, and line or byte offset where known.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: Option<u64>,
    pub offset: Option<u64>,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.severity, self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " (byte {o})")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers() {
        assert_eq!(upstream_peer("fastcgi://unix:/run/php/php8.2-fpm.sock:"), "unix:/run/php/php8.2-fpm.sock");
        assert_eq!(upstream_peer("fastcgi://127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(upstream_peer("http://127.0.0.1:8080/api/x?y"), "127.0.0.1:8080");
        assert_eq!(upstream_peer("http://backend/x"), "backend");
        assert_eq!(upstream_peer("http://[::1]:8080/x"), "[::1]:8080");
        assert_eq!(upstream_peer("http://unix:/tmp/a.sock:/x"), "unix:/tmp/a.sock");
    }

    /// A row stores its method and target only without a request line; either way they read
    /// as `AccessLine::request_parts` splits them (lossy UTF-8 included).
    #[test]
    fn method_and_uri_from_the_request_line_or_stored() {
        let row = |vals: [Option<&str>; 3]| RequestEvent {
            ts: 0,
            source: 0,
            line: 1,
            status: 502,
            texts: Texts::new([vals[0], vals[1], vals[2], None, None, None, None]),
            user_agent: None,
            upstream_logged: false,
            request_time: None,
            upstream_response_time: None,
            upstream_connect_time: None,
            upstream_header_time: None,
            attempts: Box::default(),
            origin: None,
        };
        let r = row([None, None, Some("GET /a b?x=1 HTTP/1.1")]);
        assert_eq!((r.method(), r.uri()), (Some("GET"), Some("/a b?x=1")));
        let r = row([None, None, Some("PRI * HTTP/2.0")]);
        assert_eq!((r.method(), r.uri()), (Some("PRI"), Some("*")));
        let r = row([None, None, Some("\x16\x03\x01")]);
        assert_eq!((r.method(), r.uri()), (None, Some("\x16\x03\x01")));
        let r = row([None, None, Some("GET /\u{fffd}x")]);
        assert_eq!((r.method(), r.uri()), (Some("GET"), Some("/\u{fffd}x")));
        let r = row([Some("POST"), Some("/s"), None]);
        assert_eq!((r.method(), r.uri()), (Some("POST"), Some("/s")));
        assert_eq!(row([None, None, None]).uri(), None);
        // The bytes' split, as the scan's parser makes it.
        for line in ["GET /a b?x=1 HTTP/1.1", "GET /x HTTP/1.0 extra", "HEAD /", "x", ""] {
            let (m, u) = request_line_parts(line.as_bytes());
            let r = row([None, None, Some(line)]);
            assert_eq!((r.method(), r.uri()), (m.map(|m| &line[m]), Some(&line[u])), "{line:?}");
        }
    }

    #[test]
    fn phases() {
        assert_eq!(Phase::from_action(b"reading response header from upstream"), Phase::ReadingResponseHeader);
        assert_eq!(Phase::from_action(b"SSL handshaking"), Phase::SslHandshakingClient);
        assert_eq!(Phase::from_action(b"doing something"), Phase::Other);
        assert!(Level::Crit.at_least_warn() && !Level::Info.at_least_warn());
    }
}
