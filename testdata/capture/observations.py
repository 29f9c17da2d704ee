"""Hand-written observations from the capture runs on Debian 12 (nginx 1.22.1, php-fpm 8.2.x).
They are copied into each scenario's NOTES.md and into testdata/real/README.md. Re-check them when
re-running on other versions: the generated part of NOTES.md (signatures, counts, checks) is the
ground truth of a run, this text is the interpretation."""

COMMON_NGINX = """
- Every error.log has one `[info] client closed connection while waiting for request, client: 127.0.0.1,
  server: 127.0.0.1:PORT`: the driver's readiness probe (TCP connect, no request). Typical health-check noise.
"""

COMMON_FPM = """
- Every php-fpm.log starts with `NOTICE: configuration file ... test is successful` plus an empty line: the
  driver runs `php-fpm8.2 -t` before the first start (as admins and init scripts do) and the test writes to
  the configured error_log. Debian's FPM also logs `systemd monitor interval set to 10000ms` when it is not
  under systemd.
"""

OBS: dict[str, str] = {
    "fpm_stopped_unix": """
- As observed.md says: SIGTERM makes FPM remove its socket, nginx logs `[crit] connect() to unix:... failed
  (2: No such file or directory)`. FPM logs only `Terminating ...` and `exiting, bye-bye!` (same second as the
  first 502); child exits are not logged at notice level during termination.
- api.test writes `combined` lines to access-combined.log: same rids, no upstream fields.
""",
    "fpm_stopped_tcp": """
- `[error] connect() failed (111: Connection refused) while connecting to upstream` (the `connect() failed`
  form, i.e. async connect result, not `connect() to 127.0.0.1:P failed`), `upstream: "fastcgi://127.0.0.1:P"`.
""",
    "fpm_killed_unix": """
- SIGKILL to the whole FPM process group leaves the socket file behind: `[error] connect() to unix:...
  failed (111: Connection refused)`. FPM writes nothing about it (the log just stops); the restart
  silently reuses the stale path (no `Another FPM instance` message).
""",
    "startup_race": """
- No warm-up: the first request already fails. unix pool: `[crit] ... (2: No such file or directory)`;
  TCP pool: `[error] connect() failed (111: Connection refused)`. Failures stop at the second FPM logs
  `ready to handle connections`; php-fpm.log has no earlier lines than `fpm is running` (apart from the
  `-t` line).
""",
    "fpm_bad_user": """
- The failed start writes exactly two lines to php-fpm.log (and the same two to its stderr, i.e. the journal
  under systemd): `ERROR: [pool www] cannot get uid for user 'upcause-nosuchuser'` and `ERROR: FPM
  initialization failed`; no `fpm is running`, exit code 78 (EX_CONFIG), ~50 ms after the start. They follow
  the old master's `Terminating ...` / `exiting, bye-bye!` in the same second.
- The pool user is resolved before any socket is created, so the socket is simply absent: nginx logs the same
  `[crit] connect() to unix:... failed (2: No such file or directory)` as fpm_stopped_unix. Only php-fpm.log
  tells a start failure (C15) from a stopped FPM (C2). The bad pool file is kept as
  php-fpm-pool-www.bad-user.conf; php-fpm-pool-www.conf is the good one used before and after.
""",
    "fpm_port_taken": """
- FPM: `ERROR: unable to bind listening socket for address '127.0.0.1:P': Address already in use (98)` +
  `ERROR: FPM initialization failed`, exit code 78 (also on its stderr), nothing else.
- The squatter (a separate Python process, SO_REUSEADDR, accepts, reads the FastCGI request bytes, closes)
  makes nginx log `[error] upstream prematurely closed connection while reading response header from upstream`
  with `upstream: "fastcgi://127.0.0.1:P"`, 502 in 0 ms (`uct="0.000" uht="-"`), every time; no 104 resets
  because the squatter reads the request before closing. The nginx line is the one allowed_clients and
  http_closes_early produce too: only php-fpm.log's bind failure names the cause. The squatter itself logs
  nothing (a real squatter would be some other daemon; `ss -ltnp` would show it).
- Chosen over a squatter that listens without accepting: that gives a mix of connect and read timeouts (504)
  that look like C4/C5, and takes fastcgi_*_timeout per request.
""",
    "php_error_log": """
- With `php_admin_value[error_log]` set, PHP writes its messages to that file and NOT to the FastCGI stderr:
  nginx's error.log has no `FastCGI sent in stderr` line at all (checked) and no line of any kind for the 500s;
  php-fpm.log gets nothing either (catch_workers_output = no). The access log has `500` with `ustatus="500"`.
- php-error.log line shapes (the stamp is local time + date.timezone name, `Europe/Berlin`, no ms, no pid,
  no request URI and no rid, so a request can only be matched by second and script):
  `[DD-Mon-YYYY HH:MM:SS Europe/Berlin] PHP Fatal error:  Allowed memory size of 33554432 bytes exhausted (tried
  to allocate 2097152 bytes) in .../memory.php on line 6`;
  `[...] PHP Fatal error:  Uncaught RuntimeException: order 4711 not found: ... in .../fatal.php:5` followed by
  unstamped `Stack trace:`, `#0 ...` .. `#3 {main}`, `  thrown in .../fatal.php on line 5`;
  `[...] PHP Fatal error:  Maximum execution time of 1 second exceeded in .../loop.php on line 8` (singular
  `second`; the request took ~1.0x s, the worker survives: no FPM line, unlike hard_timeout's exit 124).
- warn.php's warnings (3 per request, answered 200) land in the same file: `PHP Warning:  Undefined variable
  ...`, `PHP Warning:  Undefined array key ...`, `PHP Warning:  cache backend slow, falling back ...`.
- The file must be writable by the pool user (the workers open it, not the master): pre-created, www-data, 0644.
""",
    "nginx_limit_req": """
- limit_req: `[error] limiting requests, excess: 2.NNN by zone "login", client: 127.0.0.66, server: shop.test,
  request: "GET /login.php?rid=... HTTP/1.1", host: "shop.test"`; excess is always just above burst (2.0xx-2.9xx).
  Per 2.5 s burst at 8 req/s the first 3 pass (1 + burst 2), then about one every 0.5 s (rate 2r/s).
  With nodelay nothing is logged for the accepted excess (no `delaying request` warn lines).
- limit_conn: `[error] limiting connections by zone "addr", client: 127.0.0.77, ...` (no excess value); of 5
  concurrent downloads 1 runs (200 after 2 s), 4 get 503 at once.
- Both 503s come from nginx itself: access log `uaddr="-" ustatus="-" urt="-" uct="-" uht="-"`, rt=0.000, no
  `upstream:` field in the error line, nothing in php-fpm.log. Labelled `RL` (rate_limited / conn_limited);
  the accepted requests of the bursts are labelled `-`.
""",
    "wrong_port": """
- Identical nginx line to fpm_stopped_tcp (`connect() failed (111: Connection refused)`); what differs is
  the context: FPM logs nothing and is serving shop.test fine, the failing upstream address never
  answered in this log, and there is no `Terminating`/`bye-bye`.
""",
    "wrong_socket_path": """
- `[crit] connect() to unix:<tmp>/run/php8.1-fpm.sock failed (2: ...)` while FPM's `listen` (see
  php-fpm-pool-www.conf) is `<tmp>/run/php-fpm-www.sock` and shop.test is served through it.
""",
    "socket_permission": """
- Both variants give `[crit] connect() to unix:... failed (13: Permission denied)`.
- The ACL variant (`listen.acl_users = root`) makes FPM log `WARNING: [pool admin] ACL set, listen.owner =
  'www-data' is ignored` at startup; the mode-0600/root variant logs nothing in FPM (FPM runs as root, so
  chown works and no warning is emitted).
""",
    "allowed_clients": """
- Deviation from observed.md: nginx logs BOTH `upstream prematurely closed connection while reading
  response header from upstream` and `recv() failed (104: Connection reset by peer) while reading response
  header from upstream`; the proportion varies from run to run (counts above). FPM closes the accepted connection at once; when nginx's
  request bytes are already in the socket the close becomes a RST (104), otherwise a FIN (prematurely closed).
- Pool `api` (catch_workers_output = yes) logs `WARNING: [pool api] child N said into stderr: "ERROR:
  Connection disallowed: IP address '127.0.0.1' has been dropped."` per request; pool `www` (catch_workers_output
  = no) logs nothing at all, as observed.md says.
- admin.test uses the same pool as shop.test with `fastcgi_bind 127.0.0.2` and gets 200s throughout.
""",
    "fastcgi_read_timeout": """
- `upstream timed out (110: Connection timed out) while reading response header from upstream`, 504, rt=2.00x.
- FPM: `executing too slow (1.0x sec), logging` then `child N stopped for tracing` / `about to trace N` /
  `finished trace of N`; php-fpm-slow.log has a block per request with `usleep()` and `slow_query()` frames.
  ptrace works in this environment. The scripts keep running after nginx gave up; FPM logs nothing more.
""",
    "timeouts_misaligned": """
- nginx 504 at 2.0 s; FPM `execution timed out (4.0x-5.0x sec), terminating` + `child N exited on signal 15
  (SIGTERM)` 2-3 s later. The printed elapsed time overshoots 4 s by up to ~1.1 s because FPM checks on a
  heartbeat of request_terminate_timeout/3.
- The FPM lines carry `(request: "GET /slow.php?rid=...&sleep=10")`, so each kill can be joined to its 504 by rid.
- No nginx line at all for the later kill (nginx had already closed the connection).
""",
    "request_terminate_timeout": """
- `recv() failed (104: Connection reset by peer) while reading response header from upstream`, 502, every time
  (never `upstream prematurely closed`). FPM: `execution timed out (2.0x-2.4x sec), terminating` and `child N
  exited on signal 15 (SIGTERM)` in the same second as the nginx line.
""",
    "client_abort": """
- Deviation from the taxonomy: the 499 line is `[info] epoll_wait() reported that client prematurely closed
  connection, so upstream connection is closed too while sending request to upstream` — the action is
  `sending request to upstream`, not `reading response header from upstream`: over FastCGI the action only
  changes when the first response byte is read, which never happened.
- Access log: status 499, `rt=1.001 uaddr="unix:..." ustatus="-" urt="1.001" uct="0.000" uht="-"` (upstream
  address known, no upstream status). The client side is `000` in labels.tsv.
- FPM logs `executing too slow` (slow log at 1 s) for the aborted requests; the scripts run to completion.
""",
    "max_children_unix": """
- `[error] connect() to unix:... failed (11: Resource temporarily unavailable) while connecting to upstream`,
  502, immediately (uct/urt `0.000`). FPM: one `server reached pm.max_children setting (2), consider raising it`
  for the episode, plus `executing too slow` + slow log for the running 3 s requests (slow log at 2 s).
- 17 of the 20 concurrent slow requests fail (2 run, 1 waits in the backlog); fast requests arriving during the
  episode fail too.
- Timing deviation from observed.md: `server reached pm.max_children` came 1-2 s AFTER the first EAGAIN line,
  not at or before it. With pm = dynamic, start_servers = 1, the second child is only spawned on the next 1 s
  maintenance tick and the warning is logged on the tick after that; the backlog (1) overflows immediately.
""",
    "max_children_tcp": """
- On TCP with backlog 1 the refused SYNs turn into `upstream timed out (110: Connection timed out) while
  connecting to upstream` after fastcgi_connect_timeout (1 s), 504; one request that got into the backlog
  waited past fastcgi_read_timeout (4 s): `... while reading response header from upstream`, 504.
- FPM: one `server reached pm.max_children setting (2)`, ~1-2 s after the first nginx timeout line (see
  max_children_unix).
""",
    "traffic_spike": """
- Only `(11: Resource temporarily unavailable)` 502s during the burst, starting ~0.5 s into it; FPM logs
  `server reached pm.max_children setting (4)` once, ~2 s after the first 502 (pm = dynamic grows one
  maintenance tick at a time). No slow log (requests take 0.5 s).
""",
    "worker_segfault": """
- crash.php: `recv() failed (104: Connection reset by peer) while reading response header from upstream`, 502;
  FPM `child N exited on signal 11 (SIGSEGV) after X seconds from start` + `child M started` in the same
  second (no `core dumped`: RLIMIT_CORE is 0 here).
- partial.php: access status 200 with ~64 KB sent, `readv() failed (104: Connection reset by peer) while
  reading upstream`; the client sees a chunked body without its terminating chunk (labelled C7 with
  client_status 200).
""",
    "worker_sigkill": """
- Same nginx line as the segfault (`recv() failed (104: ...) while reading response header`); FPM `child N
  exited on signal 9 (SIGKILL) after X seconds from start`, with no `execution timed out` nearby.
""",
    "hard_timeout": """
- Produced: `child N said into stderr: "Fatal error: Maximum execution time of 1+2 seconds exceeded (terminated)
  in .../hard.php on line 6"` immediately followed by `child N exited with code 124 after X seconds from start`.
- nginx: `recv() failed (104: Connection reset by peer) while reading response header from upstream`, 502 (the
  taxonomy guessed `upstream prematurely closed`). The nginx 502 arrives ~3 s after the request started
  (1 s + 2 s CPU).
- No `FastCGI sent in stderr` for it: the hard-timeout message is written straight to fd 2, not via the SAPI logger.
""",
    "memory_limit": """
- 500 with `FastCGI sent in stderr: "PHP message: PHP Fatal error:  Allowed memory size of 33554432 bytes
  exhausted (tried to allocate N bytes) in .../memory.php on line 6" while reading response header from
  upstream` at `[error]`; FPM (catch_workers_output = yes) `WARNING: [pool www] child N said into stderr:
  "NOTICE: PHP message: PHP Fatal error:  Allowed memory size ..."`. No child exit: the worker survives.
""",
    "php_fatal": """
- One nginx entry spans 7 physical lines: `FastCGI sent in stderr: "PHP message: PHP Fatal error:  Uncaught
  RuntimeException: ... Stack trace:` / `#0 ...` ... `  thrown in ... on line 5" while reading response header
  from upstream, client: ...`. The continuation lines have no timestamp.
- With catch_workers_output = no, php-fpm.log gets nothing from the worker (its stderr is /dev/null); the
  taxonomy's [inferred] claim that the raw `NOTICE: PHP message:` line lands in the FPM log is wrong.
""",
    "fpm_debug_layout": """
- Debug layout confirmed: `[22-Nov-2026 03:58:44.942305] NOTICE: pid 17869, fpm_init(), line 83: fpm is
  running, pid 17869`.
- Raw worker lines (decorate_workers_output = no) at debug level carry the child's zlog prefix WITHOUT pid
  or timestamp: `NOTICE: sapi_cgi_log_message(), line 632: PHP message: PHP Warning:  Undefined variable
  $undefined_variable in .../warn.php on line 4` — not the plain `NOTICE: PHP message: ...` of notice level.
- nginx logs the warnings as `[error] FastCGI sent in stderr: "PHP message: PHP Warning:  ...; PHP message: PHP
  Warning: ..."` (several messages joined with `; `) although the response is 200: an [error] line that is not
  a failure.
- With process_control_timeout = 0, FPM's shutdown sends SIGTERM and SIGKILL to the children in the same
  microsecond; `child N exited on signal 9 (SIGKILL)` is then logged at DEBUG only.
""",
    "fpm_reload_cut": """
- SIGUSR2 reload with process_control_timeout = 0: FPM logs `Reloading in progress ...`, `reloading:
  execvp(...)`, `using inherited socket fd=N, "..."`, `ready to handle connections`; in-flight requests get
  `recv() failed (104: Connection reset by peer) while reading response header from upstream`, 502. No child
  exit lines at notice level (demoted to DEBUG while reloading). Requests queued in the listen backlog survive
  a reload (inherited socket) and are served by the new workers.
- SIGTERM + start 1 s later: in-flight AND backlog-queued requests get 104 resets, then requests during the gap
  get `[crit] ... (2: No such file or directory)` (the socket was removed). All of them are labelled
  C14 / fpm_restart_cut (faults fpm_reload_sigusr2, fpm_restart_sigterm); the ENOENT ones would classify as C2
  on their own.
""",
    "http_backend_down": """
- `[error] connect() failed (111: Connection refused) while connecting to upstream`, `upstream:
  "http://127.0.0.1:P/v1/items?rid=..."` (for proxy_pass the upstream field carries the URI).
""",
    "http_closes_early": """
- FIN before any byte: `upstream prematurely closed connection while reading response header from upstream`;
  RST (SO_LINGER 0): `recv() failed (104: Connection reset by peer) while reading response header from
  upstream`. Both 502; both labelled C7 / worker_crash as the brief asks (faults backend_closes /
  backend_resets).
""",
    "http_invalid_header": """
- `upstream sent invalid header: "X-Trace: http_invalid_header-NNNN\\x00garbage..." while reading response header
  from upstream`, 502. The NUL is printed as the 4 characters `\\x00`, the rid shows up inside the message.
""",
    "http_header_too_big": """
- `upstream sent too big header while reading response header from upstream`, 502 (16 KB Set-Cookie vs 4 KB
  proxy_buffer_size).
""",
    "no_live_upstreams": """
- Only the first failing request shows the per-peer cause: two `connect() failed (111: Connection refused)`
  lines (one per peer, the second is the retry) each followed by `[warn] upstream server temporarily disabled
  while connecting to upstream`; after that every request logs `[error] no live upstreams while connecting to
  upstream` with `upstream: "http://backend/v1/items?..."` (the group name), 502.
- `no live upstreams` continues for the rest of fail_timeout after both backends are back (the tail of the
  fault window): the analyzer has to look back up to 10 s for the refusal lines.
""",
    "upstream_retry": """
- Clients always got 200. Peer A's refusal shows up once per fail_timeout (10 s): `connect() failed (111:
  Connection refused) while connecting to upstream` + `[warn] upstream server temporarily disabled`, and the
  access line of that request has `uaddr="127.0.0.1:A, 127.0.0.1:B" ustatus="502, 200"`. The rids are listed
  under Checks. windows.tsv spans those requests (C1 / backend_down, masked by failover); labels.tsv has `-`.
""",
    "dns_failure": """
- `backend.test could not be resolved (3: Host not found)`, `(2: Server failure)`, `(110: Operation timed out)`,
  all 502, no `upstream:` field, no `while ...` action.
- Timeout phase: each request waits resolver_timeout (2 s). After the fake DNS answers again, requests keep
  failing with `(110: Operation timed out)` for a few seconds (nginx waits for its pending query); those are
  tagged dns_timeout in labels.tsv.
- NXDOMAIN answers are cached by nginx for `valid=1s`, so a request right after the switch to SERVFAIL can still
  report `(3: Host not found)`.
""",
    "tls_failure": """
- plainport.test (plain HTTP port answering 400 to the ClientHello): `SSL_do_handshake() failed (SSL:
  error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream`, 502.
- hang.test (accepts, never answers): `upstream timed out (110: Connection timed out) while SSL handshaking to
  upstream`, 504 after proxy_connect_timeout (2 s).
- selfsigned.test: `upstream SSL certificate verify error: (18:self-signed certificate) while SSL handshaking to
  upstream`; expired.test: `(10:certificate has expired)`; mismatch.test: `upstream SSL certificate does not
  match "wrong.example" while SSL handshaking to upstream`. All 502.
""",
    "mixed": """
- Three causes interleave within seconds of each other in one error.log; `server:`/`host:` and `upstream:`
  separate them (api.test TCP pool: 504 read timeouts + FPM `executing too slow` for pool api; shop.test unix
  pool: 104 resets + `[pool www] child N exited on signal 11`; img.test: 111 refusals to the HTTP backend).
- static.test logs to access-combined.log (`combined` format) and never fails.
""",
    "rotated": """
- Final layout: access.log, access.log.1, access.log.2.gz; error.log, error.log.1, error.log.2.gz; php-fpm.log,
  php-fpm.log.1, php-fpm.log.2.gz; access-combined.log + access-combined.log-YYYYMMDD.gz (the combined vhost
  rotated once, dateext + compress without delaycompress).
- nginx writes `signal 10 (SIGUSR1) received from N, reopening logs` and `reopening logs` into the OLD error log
  before switching; FPM writes `error log file re-opened` as the first line of the NEW php-fpm.log.
- Fault 1 (FPM stop) is in the .2.gz generation, the segfaults in .1, fault 2 in the current files.
""",
}

NOT_PRODUCED = """
Every scenario in the brief was produced on this machine (Debian 12, nginx 1.22.1, php-fpm 8.2, root, full
capabilities incl. ptrace, ACL-capable filesystem). Deviations from the predicted lines, kept as captured:

- `client_abort`: the 499 line's action is `sending request to upstream`, not `reading response header from
  upstream` (FastCGI had not answered a byte yet).
- `allowed_clients`: nginx logs a mix of `upstream prematurely closed connection` and `recv() failed (104)`;
  FPM logs `Connection disallowed` only for the pool with `catch_workers_output = yes`.
- `hard_timeout`: nginx logs `recv() failed (104: Connection reset by peer)`, not `upstream prematurely closed`.
- `php_fatal` (catch_workers_output = no): nothing reaches php-fpm.log; the taxonomy's inferred raw line does not
  appear.
- `fpm_debug_layout`: raw worker lines at debug level read `NOTICE: sapi_cgi_log_message(), line 632: PHP
  message: ...`.
- `max_children_*`, `traffic_spike`: FPM's `server reached pm.max_children` is logged 1-2 s AFTER the first
  nginx EAGAIN/timeout line (pm = dynamic spawns on 1 s maintenance ticks), not at or before it.
- `fpm_bad_user`: the failed start never creates the socket, so nginx logs ENOENT exactly as for a stopped FPM;
  only php-fpm.log's two ERROR lines show the start failure.
- `fpm_port_taken`: the squatter reads and closes, so nginx logs only `upstream prematurely closed connection`
  (no 104 resets, no timeouts).
- `php_error_log`: with the pool's error_log set there is no nginx line at all for the PHP fatals (500s); the
  messages are only in php-error.log, which carries no request URI.
- `upstream_retry`: there is no client-visible failure; labels are `-`, the window in windows.tsv covers the
  requests whose first attempt failed.
- Scenarios with only HTTP/TLS/DNS backends (`http_*`, `no_live_upstreams`, `upstream_retry`, `dns_failure`,
  `tls_failure`) have no php-fpm.log / php-fpm.conf: no FPM runs there.
"""
