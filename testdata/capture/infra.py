"""Infrastructure for the upcause log capture: real nginx + php-fpm processes,
tiny Python HTTP/TLS/DNS backends, a traffic driver with request ids, and the
post-processing that writes labels.tsv / windows.tsv / NOTES.md.

Standard library only (python3.11). Must run as root (nginx `user www-data;`,
FPM pools as www-data). Everything listens on loopback only.
"""
from __future__ import annotations

import atexit
import gzip
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
FPM = shutil.which("php-fpm8.2") or "/usr/sbin/php-fpm8.2"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
SERVER_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "TZ": "Europe/Berlin",
    "LANG": "C",
    "LC_ALL": "C",
}


class CaptureError(RuntimeError):
    pass


def now() -> datetime:
    return datetime.now(BERLIN)


def iso(dt: datetime | None) -> str:
    return "-" if dt is None else dt.isoformat(timespec="milliseconds")


def log(msg: str) -> None:
    print(f"[{now().strftime('%H:%M:%S.%f')[:-3]}] {msg}", flush=True)


# --------------------------------------------------------------------------
# process bookkeeping: every server we start is in its own process group and
# is killed (by that group id, nothing else) on exit.
# --------------------------------------------------------------------------
_PROCS: list[subprocess.Popen] = []
_BACKENDS: list = []


def _cleanup() -> None:
    for b in list(_BACKENDS):
        try:
            b.stop()
        except Exception:
            pass
    for p in list(_PROCS):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except Exception:
                pass


atexit.register(_cleanup)


def _sig_exit(signum, _frame):
    log(f"caught signal {signum}, cleaning up")
    raise SystemExit(128 + signum)


for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_s, _sig_exit)


def spawn(argv: list[str], logfile: str) -> subprocess.Popen:
    out = open(logfile, "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         env=SERVER_ENV, start_new_session=True, close_fds=True)
    out.close()
    _PROCS.append(p)
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: str, n: int = 30) -> str:
    try:
        with open(path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
    except OSError as e:
        return f"<{e}>"


# --------------------------------------------------------------------------
# work dir
# --------------------------------------------------------------------------
PHP_SCRIPTS = {
    "ok.php": r"""<?php
header('Content-Type: text/plain');
echo "ok ", $_GET['rid'] ?? '-', "\n";
""",
    "slow.php": r"""<?php
// sleeps ?sleep=N seconds (wall clock) inside a named function so that the
// FPM slow log shows a stack
function slow_query(float $seconds): void {
    usleep((int)($seconds * 1000000));
}
slow_query((float)($_GET['sleep'] ?? 1));
header('Content-Type: text/plain');
echo "slept ", $_GET['sleep'] ?? 1, " rid=", $_GET['rid'] ?? '-', "\n";
""",
    "crash.php": r"""<?php
// worker segfault: SIGSEGV (11) sent to itself (posix is in php8.2-common)
function render_invoice(): void {
    posix_kill(getmypid(), 11);
    usleep(100000);
}
render_invoice();
echo "not reached\n";
""",
    "killed.php": r"""<?php
// simulates the OOM killer: SIGKILL (9) to the worker itself
$buf = str_repeat('x', 4 * 1024 * 1024);
posix_kill(getmypid(), 9);
usleep(100000);
echo "not reached\n";
""",
    "memory.php": r"""<?php
// exceeds memory_limit (pool sets 32M) -> PHP Fatal error, HTTP 500
function build_report(): array {
    $rows = [];
    for ($i = 0; ; $i++) {
        $rows[] = str_repeat('r', 1024 * 1024);
    }
    return $rows;
}
build_report();
""",
    "fatal.php": r"""<?php
// uncaught exception with a stack trace: multi-line FastCGI stderr
class OrderRepository {
    public function find(int $id): array {
        throw new RuntimeException("order $id not found: SQLSTATE[HY000] [2002] Connection refused");
    }
}
function load_order(int $id): array {
    return (new OrderRepository())->find($id);
}
function handle_request(): void {
    load_order(4711);
}
handle_request();
""",
    "hard.php": r"""<?php
// CPU-bound C call that max_execution_time cannot interrupt: after
// max_execution_time (1 s CPU) + zend.hard_timeout (2 s) PHP writes
// "Maximum execution time of 1+2 seconds exceeded (terminated)" and _exit(124)
ini_set('max_execution_time', '1');
password_hash('x', PASSWORD_BCRYPT, ['cost' => 20]);
echo "not reached\n";
""",
    "partial.php": r"""<?php
// sends part of the body, then the worker dies: truncated 200
header('Content-Type: text/plain');
for ($i = 0; $i < 3000; $i++) { echo "row $i of the export\n"; }
flush();
usleep(300000);
posix_kill(getmypid(), 11);
usleep(100000);
""",
    "warn.php": r"""<?php
// a few PHP warnings, answer 200
header('Content-Type: text/plain');
echo $undefined_variable;
$cfg = [];
echo $cfg['missing_key'];
trigger_error('cache backend slow, falling back', E_USER_WARNING);
echo "ok with warnings rid=", $_GET['rid'] ?? '-', "\n";
""",
}


class Workdir:
    def __init__(self, scenario: str):
        self.root = tempfile.mkdtemp(prefix=f"upcause-{scenario}-")
        os.chmod(self.root, 0o755)
        self.logs = self.path("logs")
        self.www = self.path("www")
        self.run = self.path("run")
        self.tmp = self.path("tmp")
        for d in (self.logs, self.www, self.run, self.tmp, self.path("fpm.d"), self.path("tls")):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        for name, body in PHP_SCRIPTS.items():
            with open(os.path.join(self.www, name), "w") as f:
                f.write(body)
        with open(os.path.join(self.www, "index.html"), "w") as f:
            f.write("<html><body>static</body></html>\n")
        with open(os.path.join(self.www, "app.css"), "w") as f:
            f.write("body{color:#333}\n")

    def path(self, *p: str) -> str:
        return os.path.join(self.root, *p)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------
# nginx
# --------------------------------------------------------------------------
LOG_FORMAT = (
    "log_format upcause '$remote_addr - $remote_user [$time_local] \"$request\" $status "
    "$body_bytes_sent \"$http_referer\" \"$http_user_agent\" host=$host rt=$request_time "
    "uaddr=\"$upstream_addr\" ustatus=\"$upstream_status\" urt=\"$upstream_response_time\" "
    "uct=\"$upstream_connect_time\" uht=\"$upstream_header_time\"';"
)


class Nginx:
    def __init__(self, ctx: "Ctx"):
        self.ctx = ctx
        self.wd = ctx.wd
        self.port = ctx.port
        self.conf = self.wd.path("nginx.conf")
        self.proc: subprocess.Popen | None = None
        self.upstreams = ""
        self.http_extra = ""
        self.servers: list[str] = []

    # -- config builders ---------------------------------------------------
    def php_server(self, name: str, fastcgi_pass: str, fmt: str = "upcause",
                   logfile: str = "access.log", extra: str = "", loc_extra: str = "") -> None:
        w = self.wd
        self.servers.append(f"""
    server {{
        listen 127.0.0.1:{self.port};
        server_name {name};
        root {w.www};
        index index.php index.html;
        access_log {w.logs}/{logfile} {fmt};
{_indent(extra, 8)}
        location / {{
            try_files $uri $uri/ =404;
        }}
        location ~ \\.php$ {{
            try_files $fastcgi_script_name =404;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass {fastcgi_pass};
{_indent(loc_extra, 12)}
        }}
    }}""")

    def proxy_server(self, name: str, url: str, fmt: str = "upcause", logfile: str = "access.log",
                     extra: str = "", loc_extra: str = "") -> None:
        w = self.wd
        self.servers.append(f"""
    server {{
        listen 127.0.0.1:{self.port};
        server_name {name};
        root {w.www};
        access_log {w.logs}/{logfile} {fmt};
{_indent(extra, 8)}
        location / {{
            proxy_pass {url};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
{_indent(loc_extra, 12)}
        }}
    }}""")

    def static_server(self, name: str, fmt: str = "upcause", logfile: str = "access.log") -> None:
        w = self.wd
        self.servers.append(f"""
    server {{
        listen 127.0.0.1:{self.port};
        server_name {name};
        root {w.www};
        access_log {w.logs}/{logfile} {fmt};
        location / {{
            try_files $uri $uri/ =404;
        }}
    }}""")

    def render(self) -> str:
        w = self.wd
        return f"""# generated by testdata/capture/capture.py (scenario {self.ctx.name})
user www-data;
worker_processes 1;
daemon off;
pid {w.root}/nginx.pid;
error_log {w.logs}/error.log info;

events {{
    worker_connections 512;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 5;
    server_tokens off;

    client_body_temp_path {w.tmp}/client_body;
    proxy_temp_path {w.tmp}/proxy;
    fastcgi_temp_path {w.tmp}/fastcgi;
    uwsgi_temp_path {w.tmp}/uwsgi;
    scgi_temp_path {w.tmp}/scgi;

    {LOG_FORMAT}
    access_log off;
{_indent(self.http_extra, 4)}
{_indent(self.upstreams, 4)}
{"".join(self.servers)}
}}
"""

    def write(self, path: str | None = None) -> str:
        path = path or self.conf
        with open(path, "w") as f:
            f.write(self.render())
        return path

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        self.write()
        startup = self.wd.path("nginx-startup.log")
        t = subprocess.run([NGINX, "-t", "-q", "-c", self.conf, "-p", self.wd.root + "/", "-e", startup],
                           env=SERVER_ENV, capture_output=True, text=True)
        if t.returncode != 0:
            raise CaptureError(f"nginx -t failed:\n{t.stdout}{t.stderr}\n{tail(startup)}")
        self.proc = spawn([NGINX, "-c", self.conf, "-p", self.wd.root + "/", "-e", startup],
                          self.wd.path("nginx.stdout"))
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise CaptureError(f"nginx exited with {self.proc.returncode}:\n"
                                   f"{tail(self.wd.path('nginx.stdout'))}\n{tail(startup)}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise CaptureError("nginx did not start listening within 10 s")
        time.sleep(0.3)
        self.ctx.mark(f"nginx started (master pid {self.proc.pid})")

    def reload(self) -> None:
        self.write()
        os.kill(self.proc.pid, signal.SIGHUP)
        time.sleep(1.0)
        self.ctx.mark("nginx reloaded (SIGHUP)")

    def reopen(self) -> None:
        os.kill(self.proc.pid, signal.SIGUSR1)
        time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGQUIT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.ctx.mark("nginx stopped")


def _indent(text: str, n: int) -> str:
    if not text:
        return ""
    return "\n".join((" " * n + ln) if ln.strip() else "" for ln in text.strip("\n").splitlines())


# --------------------------------------------------------------------------
# php-fpm
# --------------------------------------------------------------------------
POOL_DEFAULTS = {
    "user": "www-data",
    "group": "www-data",
    "listen.owner": "www-data",
    "listen.group": "www-data",
    "listen.mode": "0660",
    "pm": "dynamic",
    "pm.max_children": "5",
    "pm.start_servers": "2",
    "pm.min_spare_servers": "1",
    "pm.max_spare_servers": "3",
    "php_admin_value[date.timezone]": "Europe/Berlin",
    "php_admin_value[memory_limit]": "32M",
    "php_admin_flag[display_errors]": "off",
    "php_admin_flag[log_errors]": "on",
    "env[TZ]": "Europe/Berlin",
}


class Fpm:
    def __init__(self, ctx: "Ctx", pools: dict[str, dict[str, str]], glob: dict[str, str] | None = None):
        self.ctx = ctx
        self.wd = ctx.wd
        self.conf = self.wd.path("php-fpm.conf")
        self.log = self.wd.path("logs", "php-fpm.log")
        self.pools = pools
        self.glob = {
            "pid": self.wd.path("run", "php-fpm.pid"),
            "error_log": self.log,
            "log_level": "notice",
            "process_control_timeout": "0",
            "daemonize": "no",
        }
        self.glob.update(glob or {})
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def write(self) -> None:
        lines = [f"; generated by testdata/capture/capture.py (scenario {self.ctx.name})", "[global]"]
        lines += [f"{k} = {v}" for k, v in self.glob.items()]
        lines.append(f"include = {self.wd.path('fpm.d')}/*.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        for old in os.listdir(self.wd.path("fpm.d")):
            os.unlink(self.wd.path("fpm.d", old))
        for name, opts in self.pools.items():
            merged = dict(POOL_DEFAULTS)
            merged.update(opts)
            body = [f"[{name}]"] + [f"{k} = {v}" for k, v in merged.items() if v is not None]
            with open(self.wd.path("fpm.d", f"{name}.conf"), "w") as f:
                f.write("\n".join(body) + "\n")

    def _logsize(self) -> int:
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def _wait_log(self, needle: str, offset: int, timeout: float, proc_must_live: bool = True) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with open(self.log, "rb") as f:
                    f.seek(offset)
                    if needle.encode() in f.read():
                        return
            except OSError:
                pass
            if proc_must_live and self.proc is not None and self.proc.poll() is not None:
                raise CaptureError(f"php-fpm exited with {self.proc.returncode}:\n"
                                   f"{tail(self.wd.path('php-fpm.stdout'))}\n{tail(self.log)}")
            time.sleep(0.05)
        raise CaptureError(f"php-fpm: '{needle}' not logged within {timeout}s:\n{tail(self.log)}")

    def start(self, wait: bool = True) -> None:
        self.write()
        if self.starts == 0:
            t = subprocess.run([FPM, "-t", "-y", self.conf], env=SERVER_ENV, capture_output=True, text=True)
            if t.returncode != 0:
                raise CaptureError(f"php-fpm -t failed:\n{t.stdout}{t.stderr}")
        off = self._logsize()
        self.proc = spawn([FPM, "-y", self.conf, "-F"], self.wd.path("php-fpm.stdout"))
        self.starts += 1
        if wait:
            self.wait_ready(off)

    def start_failing(self, needle: str = "FPM initialization failed", timeout: float = 15) -> int:
        """Start FPM with a config that makes it fail during initialization: wait for `needle` in the
        log and for the master to exit. Returns its exit code (FPM exits with 78 = EX_CONFIG)."""
        self.write()
        off = self._logsize()
        self.proc = spawn([FPM, "-y", self.conf, "-F"], self.wd.path("php-fpm.stdout"))
        self.starts += 1
        self.ctx.mark(f"php-fpm started (master pid {self.proc.pid}), expected to fail")
        self._wait_log(needle, off, timeout, proc_must_live=False)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CaptureError(f"php-fpm logged '{needle}' but did not exit:\n{tail(self.log)}")
        self.ctx.mark(f"php-fpm failed to start: '{needle}' logged, master exited with code {rc}")
        return rc

    def wait_ready(self, off: int = 0) -> None:
        self._wait_log("ready to handle connections", off, 15)
        self.ctx.mark(f"php-fpm ready (master pid {self.proc.pid})")

    def stop(self, sig: int = signal.SIGTERM, label: str = "SIGTERM") -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, sig)
        self.ctx.mark(f"php-fpm master sent {label}")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.ctx.mark("php-fpm exited")

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)
        # children are in the same process group; give the kernel a moment
        time.sleep(0.2)
        self.ctx.mark("php-fpm master + children SIGKILLed (process group)")

    def reload(self) -> None:
        off = self._logsize()
        os.kill(self.proc.pid, signal.SIGUSR2)
        self.ctx.mark("php-fpm master sent SIGUSR2 (reload)")
        self.wait_ready(off)

    def reopen(self) -> None:
        off = self._logsize()
        os.kill(self.proc.pid, signal.SIGUSR1)
        try:
            self._wait_log("re-opened", 0, 5)
        except CaptureError:
            pass
        del off

    def child_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]


# --------------------------------------------------------------------------
# python backends
# --------------------------------------------------------------------------
class HttpBackend:
    """Tiny HTTP(S) backend. mode (changeable at run time):
    ok        answer 200 with a small JSON body
    close     read the request, close without answering (FIN)
    reset     read the request, close with SO_LINGER 0 (RST)
    nul       answer with a header containing a NUL byte
    bigheader answer with a ~16 KB Set-Cookie header (> proxy_buffer_size)
    plain400  answer the first bytes received (whatever they are) with HTTP 400
    silent    accept, read, never answer (until the peer closes)
    """

    def __init__(self, name: str, port: int | None = None, mode: str = "ok",
                 tls: ssl.SSLContext | None = None):
        self.name = name
        self.port = port or free_port()
        self.mode = mode
        self.tls = tls
        self.lsock: socket.socket | None = None
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()

    def start(self) -> "HttpBackend":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.lsock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()
        if self not in _BACKENDS:
            _BACKENDS.append(self)
        return self

    def stop(self) -> None:
        s, self.lsock = self.lsock, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self, s: socket.socket) -> None:
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _count(self, mode: str) -> None:
        with self._lock:
            self.hits[mode] = self.hits.get(mode, 0) + 1

    def _handle(self, conn: socket.socket) -> None:
        mode = self.mode
        self._count(mode)
        try:
            conn.settimeout(30)
            if mode == "plain400":
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: 12\r\nConnection: close\r\n\r\nbad request\n")
                return
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    return
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            line = data.split(b"\r\n", 1)[0].decode("latin-1")
            m = re.search(r"rid=([\w-]+)", line)
            rid = m.group(1) if m else "-"
            if mode == "silent":
                while conn.recv(4096):
                    pass
                return
            if mode == "close":
                return
            if mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            body = f'{{"ok":true,"backend":"{self.name}","rid":"{rid}"}}\n'.encode()
            hdr = [b"HTTP/1.1 200 OK", b"Content-Type: application/json",
                   b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
            if mode == "nul":
                hdr.append(b"X-Trace: " + rid.encode() + b"\x00garbage")
            elif mode == "bigheader":
                hdr.append(b"Set-Cookie: session=" + b"A" * 16000 + b"; Path=/")
            conn.sendall(b"\r\n".join(hdr) + b"\r\n\r\n" + body)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


SQUATTER_PY = r"""
import signal, socket, sys
# Another program holding a TCP port: accepts, reads what the peer sends, closes (FIN).
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(128)
print("listening", port, flush=True)
n = 0
while True:
    c, addr = s.accept()
    c.settimeout(2)
    try:
        got = len(c.recv(65536))
    except OSError:
        got = -1
    c.close()
    n += 1
    print("conn", n, addr[0], "read", got, flush=True)
"""


class PortSquatter:
    """A separate Python process (own process group) that binds 127.0.0.1:port and accepts, reads the
    request bytes and closes every connection without answering."""

    def __init__(self, ctx: "Ctx", port: int):
        self.ctx = ctx
        self.port = port
        self.script = ctx.wd.path("squatter.py")
        self.out = ctx.wd.path("squatter.stdout")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "PortSquatter":
        with open(self.script, "w") as f:
            f.write(SQUATTER_PY)
        open(self.out, "w").close()
        self.proc = spawn([sys.executable, self.script, str(self.port)], self.out)
        deadline = time.time() + 10
        while time.time() < deadline:
            with open(self.out) as f:
                if "listening" in f.read():
                    break
            if self.proc.poll() is not None:
                raise CaptureError(f"squatter exited with {self.proc.returncode}:\n{tail(self.out)}")
            time.sleep(0.05)
        else:
            raise CaptureError("squatter did not start listening within 10 s")
        self.ctx.mark(f"squatter process (pid {self.proc.pid}) listening on 127.0.0.1:{self.port}")
        return self

    def connections(self) -> int:
        with open(self.out) as f:
            return sum(1 for l in f if l.startswith("conn "))

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.ctx.mark(f"squatter exited after {self.connections()} connections")


class FakeDns:
    """UDP DNS server on 127.0.0.1:port. mode: ok | nxdomain | servfail | silent.
    In ok mode it answers A queries for the names in `records` (TTL 1) and
    NOERROR/no data for anything else."""

    def __init__(self, records: dict[str, str], port: int | None = None):
        self.records = {k.lower().rstrip("."): v for k, v in records.items()}
        self.port = port or free_port()
        self.mode = "ok"
        self.queries: dict[str, int] = {}
        self.sock: socket.socket | None = None

    def start(self) -> "FakeDns":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", self.port))
        s.settimeout(0.3)
        self.sock = s
        threading.Thread(target=self._serve, daemon=True).start()
        _BACKENDS.append(self)
        return self

    def stop(self) -> None:
        s, self.sock = self.sock, None
        if s:
            s.close()

    def _serve(self) -> None:
        while self.sock is not None:
            try:
                data, addr = self.sock.recvfrom(1500)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                resp = self._answer(data)
            except Exception:
                continue
            mode = self.mode
            self.queries[mode] = self.queries.get(mode, 0) + 1
            if resp is not None and self.sock is not None:
                self.sock.sendto(resp, addr)

    def _answer(self, q: bytes) -> bytes | None:
        if len(q) < 17:
            return None
        tid, flags = q[:2], struct.unpack(">H", q[2:4])[0]
        i, labels = 12, []
        while q[i] != 0:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        i += 1
        qtype, _qclass = struct.unpack(">HH", q[i:i + 4])
        question = q[12:i + 4]
        name = ".".join(labels).lower()
        mode = self.mode
        if mode == "silent":
            return None
        rcode = {"ok": 0, "nxdomain": 3, "servfail": 2}[mode]
        rflags = 0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
        answers = b""
        ancount = 0
        if mode == "ok" and qtype == 1 and name in self.records:
            ip = socket.inet_aton(self.records[name])
            answers = struct.pack(">HHHIH", 0xC00C, 1, 1, 1, 4) + ip
            ancount = 1
        return tid + struct.pack(">HHHHH", rflags, 1, ancount, 0, 0) + question + answers


def make_certs(d: str) -> dict[str, str]:
    """CA + CA-signed leaf for backend.test, a self-signed leaf, an expired CA-signed leaf."""
    def run(*args: str) -> None:
        r = subprocess.run([OPENSSL, *args], cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            raise CaptureError(f"openssl {' '.join(args)} failed: {r.stderr}")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    san = "subjectAltName=DNS:backend.test"
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
        "-subj", "/CN=upcause capture test CA")
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=backend.test", "-addext", san)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write(san + "\n")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.crt", "-days", "365", "-extfile", "san.ext")
    run("req", "-x509", *ec, "-keyout", "self.key", "-out", "self.crt", "-days", "365",
        "-subj", "/CN=backend.test", "-addext", san)
    run("req", *ec, "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=backend.test", "-addext", san)
    os.makedirs(os.path.join(d, "db"), exist_ok=True)
    open(os.path.join(d, "db", "index.txt"), "w").close()
    with open(os.path.join(d, "db", "serial"), "w") as f:
        f.write("1000\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = x\n[x]\ndir = .\ndatabase = db/index.txt\nserial = db/serial\n"
                "new_certs_dir = db\ndefault_md = sha256\npolicy = p\ncopy_extensions = copy\n"
                "[p]\ncommonName = supplied\n")
    run("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "expired.csr",
        "-out", "expired.crt", "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", "-notext")
    return {k: os.path.join(d, k) for k in ("ca.crt", "leaf.crt", "leaf.key", "self.crt", "self.key",
                                            "expired.crt", "expired.key")}


def server_tls(cert: str, key: str) -> ssl.SSLContext:
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(cert, key)
    return c


# --------------------------------------------------------------------------
# traffic
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    name: str
    cls: str
    cause: str


UAS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "curl/7.88.1",
    "upcause-capture/1.0 (+synthetic traffic)",
]


@dataclass
class Req:
    rid: str
    host: str
    path: str
    fault: Fault | None
    send_t: datetime | None = None
    done_t: datetime | None = None
    status: str = "ERR"
    truncated: bool = False
    nbytes: int = 0
    note: str = ""

    @property
    def failed(self) -> bool:
        if self.status in ("000", "ERR"):
            return True
        return int(self.status) >= 500 or self.truncated


def http_get(port: int, host: str, path: str, src_ip: str, ua: str, referer: str | None,
             timeout: float, abort_after: float | None) -> tuple[str, bool, int, str]:
    """Returns (status, truncated, body_bytes, note). status '000' when we aborted."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((src_ip, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        req = [f"GET {path} HTTP/1.1", f"Host: {host}", f"User-Agent: {ua}", "Accept: */*"]
        if referer:
            req.append(f"Referer: {referer}")
        req.append("Connection: close")
        s.sendall(("\r\n".join(req) + "\r\n\r\n").encode())
        start = time.monotonic()
        limit = abort_after if abort_after is not None else timeout
        data = b""
        while True:
            left = limit - (time.monotonic() - start)
            if left <= 0:
                if abort_after is not None:
                    return "000", False, 0, "client closed the connection (abort)"
                return "000", False, 0, f"client timeout after {timeout}s"
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = None
            if not chunk:
                break
            data += chunk
        if not data:
            return "ERR", False, 0, "connection closed without a response"
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
        hdrs = head.decode("latin-1").lower()
        truncated = False
        m = re.search(r"\r\ncontent-length: *(\d+)", hdrs)
        if m:
            truncated = len(body) < int(m.group(1))
        elif "transfer-encoding: chunked" in hdrs:
            truncated = not body.endswith(b"0\r\n\r\n")
        return status, truncated, len(body), "truncated body" if truncated else ""
    except OSError as e:
        return "ERR", False, 0, f"client error: {e}"
    finally:
        s.close()


# --------------------------------------------------------------------------
# scenario context
# --------------------------------------------------------------------------
class Ctx:
    def __init__(self, name: str):
        self.name = name
        self.wd = Workdir(name)
        self.port = free_port()
        self.reqs: list[Req] = []
        self.threads: list[threading.Thread] = []
        self.events: list[tuple[datetime, str]] = []
        self.lock = threading.Lock()
        self.seq = 0
        self.nginx: Nginx | None = None
        self.fpm: Fpm | None = None
        self.extra_confs: dict[str, str] = {}   # name in outdir -> path
        self.notes: list[str] = []
        self.window_from_retries: set[str] = set()

    def mark(self, text: str) -> None:
        t = now()
        self.events.append((t, text))
        log(f"  {self.name}: {text}")

    def new_nginx(self) -> Nginx:
        self.nginx = Nginx(self)
        return self.nginx

    def new_fpm(self, pools: dict[str, dict[str, str]], glob: dict[str, str] | None = None) -> Fpm:
        self.fpm = Fpm(self, pools, glob)
        return self.fpm

    def sock(self, name: str) -> str:
        return self.wd.path("run", f"php-fpm-{name}.sock")

    # -- traffic -------------------------------------------------------------
    def send(self, host: str, path: str, fault: Fault | None = None, abort_after: float | None = None,
             timeout: float = 60.0, src: str | None = None) -> Req:
        with self.lock:
            self.seq += 1
            n = self.seq
        rid = f"{self.name}-{n:04d}"
        sep = "&" if "?" in path else "?"
        base, _, q = path.partition("?")
        full = f"{base}?rid={rid}" + (f"&{q}" if q else "")
        del sep
        r = Req(rid, host, full, fault)
        with self.lock:
            self.reqs.append(r)
        src = src or f"127.0.0.{10 + n % 7}"
        ua = UAS[n % len(UAS)]
        referer = f"https://{host}/" if n % 3 == 0 else None

        def go() -> None:
            r.send_t = now()
            st, tr, nb, note = http_get(self.port, host, full, src, ua, referer, timeout, abort_after)
            r.done_t = now()
            r.status, r.truncated, r.nbytes, r.note = st, tr, nb, note

        th = threading.Thread(target=go, daemon=True)
        th.start()
        with self.lock:
            self.threads.append(th)
        return r

    def drive(self, seconds: float, rate: float, fn) -> None:
        """Call fn(i) `rate` times per second for `seconds` (fn sends requests)."""
        t0 = time.monotonic()
        i = 0
        while True:
            due = t0 + i / rate
            if due >= t0 + seconds:
                break
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            fn(i)
            i += 1

    def drive_async(self, seconds: float, rate: float, fn) -> threading.Thread:
        th = threading.Thread(target=self.drive, args=(seconds, rate, fn), daemon=True)
        th.start()
        return th

    def wait_all(self, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while True:
            with self.lock:
                ths = list(self.threads)
            alive = [t for t in ths if t.is_alive()]
            if not alive:
                return
            if time.time() > deadline:
                raise CaptureError(f"{len(alive)} client requests still running after {timeout}s")
            alive[0].join(timeout=0.5)


# --------------------------------------------------------------------------
# log analysis (for NOTES.md, README and verification)
# --------------------------------------------------------------------------
ERR_HEAD = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(\w+)\] (\d+)#(\d+): (?:\*(\d+) )?(.*)$")
ACCESS_RE = re.compile(
    r'^(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"'
    r'(?: host=(\S+) rt=(\S+) uaddr="([^"]*)" ustatus="([^"]*)" urt="([^"]*)" uct="([^"]*)" uht="([^"]*)")?$')


def open_text(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, "r", encoding="utf-8", errors="replace")


def log_files(d: str, base: str) -> list[str]:
    """All rotated generations of `base` in d (base, base.1, base.2.gz, base-2026...)."""
    out = []
    for fn in sorted(os.listdir(d)):
        if fn == base or fn.startswith(base + ".") or fn.startswith(base + "-"):
            out.append(os.path.join(d, fn))
    return out


def nginx_entries(d: str) -> list[tuple[str, str, str]]:
    """(time, level, message-with-continuations) from error.log*"""
    out = []
    for p in log_files(d, "error.log"):
        with open_text(p) as f:
            cur = None
            for line in f:
                line = line.rstrip("\n")
                m = ERR_HEAD.match(line)
                if m:
                    if cur:
                        out.append(cur)
                    cur = [m.group(1), m.group(2), m.group(6)]
                elif cur:
                    cur[2] += "\\n" + line
            if cur:
                out.append(cur)
    return [tuple(x) for x in out]


def nginx_signature(level: str, msg: str, root: str | None = None) -> str:
    s = msg
    for key in (", client: ", " while resolving, resolver:"):
        i = s.find(key)
        if i >= 0:
            s = s[:i] + (" while resolving" if "resolving" in key else "")
    if root:
        s = s.replace(root, "<tmp>")
    s = re.sub(r'FastCGI sent in stderr: "(.{0,70}).*?"?( while |$)',
               lambda m: 'FastCGI sent in stderr: "' + _norm(m.group(1)) + '..."' + m.group(2), s)
    s = re.sub(r'upstream sent invalid header: "(.{0,12}).*?" while',
               lambda m: 'upstream sent invalid header: "' + m.group(1) + '..." while', s)
    s = re.sub(r"127\.0\.0\.\d+:\d+", "127.0.0.X:PORT", s)
    s = re.sub(r"\brid=[\w-]+", "rid=...", s)
    s = re.sub(r"(signal \d+ \(\w+\) received from )\d+", r"\1N", s)
    s = re.sub(r"(process |worker process |exit code |pid )\d+", r"\1N", s)
    s = re.sub(r"\d+ worker_connections", "N worker_connections", s)
    s = re.sub(r"excess: \d+\.\d+ by zone", "excess: N by zone", s)
    return f"[{level}] {s}"


def _norm(t: str) -> str:
    t = re.sub(r"/tmp/upcause-[\w-]+/", "<tmp>/", t)
    t = re.sub(r"\d+", "N", t)
    return t


FPM_HEAD = re.compile(r"^\[(\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d(?:\.\d+)?)\] (\w+): (?:pid \d+, [\w]+\(\), line \d+: )?(.*)$")


def fpm_signature(line: str) -> str | None:
    line = line.rstrip("\n")
    if not line.strip():
        return None
    m = FPM_HEAD.match(line)
    if m:
        lvl, msg = m.group(2), m.group(3)
    else:
        lvl, msg = "raw", line
    msg = re.sub(r"/tmp/upcause-[\w-]+/", "<tmp>/", msg)
    msg = re.sub(r"\(request: \"[^\"]*\"\)", '(request: "...")', msg)
    msg = re.sub(r'said into (stderr|stdout): "(.{0,60}).*', lambda mm: f'said into {mm.group(1)}: "{_norm(mm.group(2))}..."', msg)
    msg = re.sub(r"(?<!signal )(?<!code )(?<!signal  )\b\d+(\.\d+)?", "N", msg)
    msg = re.sub(r"(child|pid|trace of|about to trace) \d+", r"\1 N", msg)
    if lvl == "raw":
        msg = msg[:90]
    return f"{lvl}: {msg}"


def fpm_lines(d: str) -> list[str]:
    out = []
    for p in log_files(d, "php-fpm.log"):
        with open_text(p) as f:
            out.extend(f.readlines())
    return out


def access_records(d: str) -> list[dict]:
    out = []
    for base in ("access.log", "access-combined.log"):
        for p in log_files(d, base):
            with open_text(p) as f:
                for line in f:
                    m = ACCESS_RE.match(line.rstrip("\n"))
                    if not m:
                        continue
                    rm = re.search(r"rid=([\w-]+)", m.group(4))
                    out.append({"file": os.path.basename(p), "rid": rm.group(1) if rm else None,
                                "status": m.group(5), "host": m.group(9), "uaddr": m.group(11),
                                "ustatus": m.group(12), "time": m.group(3)})
    return out


def count(items) -> list[tuple[str, int]]:
    c: dict[str, int] = {}
    for i in items:
        c[i] = c.get(i, 0) + 1
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
