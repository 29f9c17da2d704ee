"""Scenario definitions for the upcause capture. Each scenario function gets a
Ctx (infra.py), builds nginx/php-fpm/backends, drives traffic and injects the
fault. Post-processing (labels, windows, notes) is done by capture.py."""
from __future__ import annotations

import gzip
import os
import shutil
import threading
import time
from dataclasses import dataclass, field

from infra import (Ctx, Fault, FakeDns, HttpBackend, PortSquatter, free_port, make_certs, now, server_tls)


@dataclass
class Scenario:
    name: str
    fn: object
    summary: str
    causes: str
    config: str
    expect_nginx: list[str] = field(default_factory=list)
    expect_fpm: list[str] = field(default_factory=list)
    obs: str = ""
    # (file in the scenario dir, regex) that must match / must NOT match (multi-line search)
    expect_files: list[tuple[str, str]] = field(default_factory=list)
    absent_files: list[tuple[str, str]] = field(default_factory=list)


SCENARIOS: dict[str, Scenario] = {}


def scenario(name, summary, causes, config, expect_nginx=(), expect_fpm=(), obs="", expect_files=(),
             absent_files=()):
    def deco(fn):
        SCENARIOS[name] = Scenario(name, fn, summary, causes, config, list(expect_nginx), list(expect_fpm), obs,
                                   list(expect_files), list(absent_files))
        return fn
    return deco


class Phase:
    """Mutable phase shared between the scenario thread and a background driver."""
    def __init__(self):
        self.fault: Fault | None = None
        self.mode = "ok"


class Background:
    def __init__(self, ctx: Ctx, rate: float, fn):
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self._run, args=(ctx, rate, fn), daemon=True)
        self.th.start()

    def _run(self, ctx, rate, fn):
        t0 = time.monotonic()
        i = 0
        while not self.stop_ev.is_set():
            d = t0 + i / rate - time.monotonic()
            if d > 0 and self.stop_ev.wait(d):
                break
            fn(i)
            i += 1

    def stop(self):
        self.stop_ev.set()
        self.th.join()


def traffic(ctx: Ctx, seconds: float, rate: float, hosts, path="/ok.php", fault=None, wait=True):
    """Fixed-rate traffic; by default waits until the requests it sent are answered, so that a fault
    injected right after it does not hit requests of the previous phase."""
    sent = []
    ctx.drive(seconds, rate, lambda i: sent.append(ctx.send(hosts[i % len(hosts)], path, fault)))
    deadline = time.time() + 70
    while wait and any(r.done_t is None for r in sent) and time.time() < deadline:
        time.sleep(0.05)


def slowlog(ctx: Ctx, timeout="1s") -> dict:
    return {"slowlog": ctx.wd.path("logs", "php-fpm-slow.log"), "request_slowlog_timeout": timeout}


# ==========================================================================
# FPM availability
# ==========================================================================
@scenario("fpm_stopped_unix",
          "FPM on a unix socket stopped with SIGTERM after warm-up (socket removed), restarted 6 s later; "
          "api.test logs in `combined` format to access-combined.log",
          "C2 / fpm_socket_missing",
          "fastcgi_pass unix socket; FPM pm=dynamic max_children=5; nginx defaults otherwise",
          [r"\[crit\].*connect\(\) to unix:.*failed \(2: No such file or directory\) while connecting to upstream"],
          [r"NOTICE: Terminating \.\.\.", r"exiting, bye-bye!", r"ready to handle connections"])
def fpm_stopped_unix(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    ng.php_server("api.test", f"unix:{sock}", fmt="combined", logfile="access-combined.log")
    fpm.start()
    ng.start()
    F = Fault("fpm_stopped", "C2", "fpm_socket_missing")
    hosts = ["shop.test", "shop.test", "api.test"]
    traffic(ctx, 4, 8, hosts)
    fpm.stop()
    traffic(ctx, 6, 8, hosts, fault=F)
    fpm.start()
    traffic(ctx, 3, 8, hosts)


@scenario("fpm_stopped_tcp",
          "FPM on TCP 127.0.0.1:PORT stopped with SIGTERM after warm-up, restarted 6 s later",
          "C1 / backend_down",
          "fastcgi_pass 127.0.0.1:PORT; FPM pm=dynamic max_children=5",
          [r"\[error\].*connect\(\) failed \(111: Connection refused\) while connecting to upstream"],
          [r"NOTICE: Terminating \.\.\.", r"exiting, bye-bye!"])
def fpm_stopped_tcp(ctx: Ctx):
    port = free_port()
    fpm = ctx.new_fpm({"www": {"listen": f"127.0.0.1:{port}"}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"127.0.0.1:{port}")
    ng.php_server("api.test", f"127.0.0.1:{port}")
    fpm.start()
    ng.start()
    F = Fault("fpm_stopped", "C1", "backend_down")
    hosts = ["shop.test", "api.test"]
    traffic(ctx, 4, 8, hosts)
    fpm.stop()
    traffic(ctx, 6, 8, hosts, fault=F)
    fpm.start()
    traffic(ctx, 3, 8, hosts)


@scenario("fpm_killed_unix",
          "FPM master and children SIGKILLed (process group) after warm-up: the unix socket file stays; restarted 6 s later",
          "C1 / backend_down",
          "fastcgi_pass unix socket; FPM pm=dynamic max_children=5",
          [r"\[error\].*connect\(\) to unix:.*failed \(111: Connection refused\) while connecting to upstream"],
          [r"ready to handle connections"])
def fpm_killed_unix(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    fpm.start()
    ng.start()
    F = Fault("fpm_killed", "C1", "backend_down")
    traffic(ctx, 4, 8, ["shop.test"])
    fpm.kill9()
    ctx.mark(f"socket file still present after SIGKILL: {os.path.exists(sock)}")
    traffic(ctx, 6, 8, ["shop.test"], fault=F)
    fpm.start()
    traffic(ctx, 3, 8, ["shop.test"])


@scenario("startup_race",
          "nginx started and receiving traffic first; FPM (pool www on a unix socket for shop.test, pool api on TCP "
          "for api.test) started ~5 s later. No warm-up: failures start with the first request",
          "shop.test: C2 / startup_race; api.test: C1 / startup_race",
          "FPM started 5 s after nginx; traffic continues during the FPM start",
          [r"\[crit\].*connect\(\) to unix:.*\(2: No such file or directory\)",
           r"\[error\].*connect\(\) failed \(111: Connection refused\)"],
          [r"fpm is running", r"ready to handle connections"])
def startup_race(ctx: Ctx):
    sock = ctx.sock("www")
    port = free_port()
    fpm = ctx.new_fpm({"www": {"listen": sock}, "api": {"listen": f"127.0.0.1:{port}"}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    ng.php_server("api.test", f"127.0.0.1:{port}")
    ng.start()
    ph = Phase()
    FU = Fault("fpm_not_started_unix", "C2", "startup_race")
    FT = Fault("fpm_not_started_tcp", "C1", "startup_race")
    ph.fault = True

    def fn(i):
        host = "shop.test" if i % 2 == 0 else "api.test"
        f = (FU if host == "shop.test" else FT) if ph.fault else None
        ctx.send(host, "/ok.php", f)
    bg = Background(ctx, 8, fn)
    time.sleep(5)
    fpm.start()
    ph.fault = None
    time.sleep(4)
    bg.stop()


# --------------------------------------------------------------------------
# FPM does not come back: start failures (issue 14, "why FPM was down")
# --------------------------------------------------------------------------
@scenario("fpm_bad_user",
          "after warm-up FPM (unix socket) is restarted with a pool whose `user` does not exist "
          "(`user = upcause-nosuchuser`): the new master fails during initialization, the socket is gone; ~6 s "
          "later FPM is started again with the good pool and traffic recovers",
          "C15 / fpm_start_failure",
          "fastcgi_pass unix socket; bad pool: `user = upcause-nosuchuser` (see php-fpm-pool-www.bad-user.conf); "
          "good pool user www-data; no `php-fpm -t` before the bad start",
          [r"\[crit\].*connect\(\) to unix:.*failed \(2: No such file or directory\) while connecting to upstream"],
          [r"ERROR: \[pool www\] cannot get uid for user 'upcause-nosuchuser'", r"ERROR: FPM initialization failed",
           r"exiting, bye-bye!", r"ready to handle connections"])
def fpm_bad_user(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    ng.php_server("api.test", f"unix:{sock}")
    fpm.start()
    ng.start()
    F = Fault("fpm_start_failed_bad_user", "C15", "fpm_start_failure")
    hosts = ["shop.test", "shop.test", "api.test"]
    traffic(ctx, 4, 8, hosts)
    # a config change (pool user) followed by a restart: stop, start with the bad pool
    fpm.stop()
    fpm.pools["www"]["user"] = "upcause-nosuchuser"
    rc = fpm.start_failing("FPM initialization failed")
    bad = ctx.wd.path("php-fpm-pool-www.bad-user.conf")
    shutil.copy2(ctx.wd.path("fpm.d", "www.conf"), bad)
    ctx.extra_confs["php-fpm-pool-www.bad-user.conf"] = bad
    ctx.notes.append(f"the failed FPM master exited with code {rc}; its two ERROR lines also went to its stderr")
    ctx.mark(f"socket file present after the failed start: {os.path.exists(sock)}")
    traffic(ctx, 6, 8, hosts, fault=F)
    fpm.pools["www"]["user"] = "www-data"
    fpm.start()
    traffic(ctx, 3, 8, hosts)


@scenario("fpm_port_taken",
          "FPM's pool listens on TCP 127.0.0.1:PORT; after warm-up FPM is stopped, another process (a Python server "
          "that accepts, reads the request and closes without answering) binds the port, FPM is started again and "
          "fails to bind; ~6 s later the squatter exits and FPM is started again",
          "C15 / fpm_start_failure",
          "fastcgi_pass 127.0.0.1:PORT; fastcgi_connect_timeout 2s; fastcgi_read_timeout 3s; the squatter sets "
          "SO_REUSEADDR, listen backlog 128, reads up to 64 KiB (2 s timeout) then close() (FIN)",
          [r"\[error\].*upstream prematurely closed connection while reading response header from upstream"],
          [r"ERROR: unable to bind listening socket for address '127\.0\.0\.1:\d+': Address already in use \(98\)",
           r"ERROR: FPM initialization failed"])
def fpm_port_taken(ctx: Ctx):
    port = free_port()
    fpm = ctx.new_fpm({"www": {"listen": f"127.0.0.1:{port}"}})
    ng = ctx.new_nginx()
    loc = "fastcgi_connect_timeout 2s;\nfastcgi_read_timeout 3s;"
    ng.php_server("shop.test", f"127.0.0.1:{port}", loc_extra=loc)
    ng.php_server("api.test", f"127.0.0.1:{port}", loc_extra=loc)
    fpm.start()
    ng.start()
    F = Fault("fpm_start_failed_port_taken", "C15", "fpm_start_failure")
    hosts = ["shop.test", "api.test"]
    traffic(ctx, 4, 8, hosts)
    fpm.stop()
    sq = PortSquatter(ctx, port).start()
    rc = fpm.start_failing("FPM initialization failed")
    ctx.notes.append(f"the failed FPM master exited with code {rc}; its two ERROR lines also went to its stderr")
    traffic(ctx, 6, 8, hosts, fault=F)
    n = sq.connections()
    sq.stop()
    ctx.notes.append(f"the squatter accepted {n} connections from nginx (one per failing request)")
    fpm.start()
    traffic(ctx, 3, 8, hosts)


# ==========================================================================
# misconfiguration
# ==========================================================================
@scenario("wrong_port",
          "api.test's fastcgi_pass points at a TCP port where nothing ever listens; shop.test uses FPM's real port",
          "C1 / upstream_misconfigured",
          "FPM listen 127.0.0.1:P; api.test fastcgi_pass 127.0.0.1:Q (Q never bound)",
          [r"\[error\].*connect\(\) failed \(111: Connection refused\) while connecting to upstream.*api\.test"],
          [r"ready to handle connections"])
def wrong_port(ctx: Ctx):
    port, wrong = free_port(), free_port()
    fpm = ctx.new_fpm({"www": {"listen": f"127.0.0.1:{port}"}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"127.0.0.1:{port}")
    ng.php_server("api.test", f"127.0.0.1:{wrong}")
    fpm.start()
    ng.start()
    F = Fault("wrong_port", "C1", "upstream_misconfigured")
    traffic(ctx, 4, 8, ["shop.test"])
    ctx.drive(8, 8, lambda i: ctx.send("shop.test", "/ok.php") if i % 2 else ctx.send("api.test", "/ok.php", F))
    traffic(ctx, 2, 8, ["shop.test"])


@scenario("wrong_socket_path",
          "api.test's fastcgi_pass names a unix socket path that never exists (php8.1 vs php8.2); shop.test uses the right one",
          "C2 / upstream_misconfigured",
          "FPM listen <tmp>/run/php-fpm-www.sock; api.test fastcgi_pass unix:<tmp>/run/php8.1-fpm.sock",
          [r"\[crit\].*connect\(\) to unix:.*php8\.1-fpm\.sock failed \(2: No such file or directory\)"],
          [r"ready to handle connections"])
def wrong_socket_path(ctx: Ctx):
    sock = ctx.sock("www")
    ng = ctx.new_nginx()
    fpm = ctx.new_fpm({"www": {"listen": sock}})
    ng.php_server("shop.test", f"unix:{sock}")
    ng.php_server("api.test", f"unix:{ctx.wd.path('run', 'php8.1-fpm.sock')}")
    fpm.start()
    ng.start()
    F = Fault("wrong_socket_path", "C2", "upstream_misconfigured")
    traffic(ctx, 4, 8, ["shop.test"])
    ctx.drive(8, 8, lambda i: ctx.send("shop.test", "/ok.php") if i % 2 else ctx.send("api.test", "/ok.php", F))
    traffic(ctx, 2, 8, ["shop.test"])


@scenario("socket_permission",
          "nginx worker (www-data) cannot connect to FPM's unix socket. api.test -> pool `api` with listen.owner/group "
          "root, listen.mode 0600; admin.test -> pool `admin` with listen.acl_users = root (FPM warns that listen.owner "
          "is ignored); shop.test -> pool `www` with the right owner",
          "C3 / socket_permission",
          "pool api: listen.owner=root listen.group=root listen.mode=0600; pool admin: listen.acl_users=root "
          "(listen.owner=www-data set too, so FPM logs the ACL warning)",
          [r"\[crit\].*connect\(\) to unix:.*php-fpm-api\.sock failed \(13: Permission denied\)",
           r"\[crit\].*connect\(\) to unix:.*php-fpm-admin\.sock failed \(13: Permission denied\)"],
          [r"ACL set, listen\.owner = 'www-data' is ignored"])
def socket_permission(ctx: Ctx):
    ng = ctx.new_nginx()
    fpm = ctx.new_fpm({
        "www": {"listen": ctx.sock("www")},
        "api": {"listen": ctx.sock("api"), "listen.owner": "root", "listen.group": "root", "listen.mode": "0600"},
        "admin": {"listen": ctx.sock("admin"), "listen.acl_users": "root", "listen.group": None},
    })
    ng.php_server("shop.test", f"unix:{ctx.sock('www')}")
    ng.php_server("api.test", f"unix:{ctx.sock('api')}")
    ng.php_server("admin.test", f"unix:{ctx.sock('admin')}")
    fpm.start()
    ng.start()
    FM = Fault("socket_mode_0600_root", "C3", "socket_permission")
    FA = Fault("socket_acl_excludes_nginx", "C3", "socket_permission")
    traffic(ctx, 4, 8, ["shop.test"])

    def fn(i):
        if i % 3 == 0:
            ctx.send("shop.test", "/ok.php")
        elif i % 3 == 1:
            ctx.send("api.test", "/ok.php", FM)
        else:
            ctx.send("admin.test", "/ok.php", FA)
    ctx.drive(8, 8, fn)
    traffic(ctx, 2, 8, ["shop.test"])


@scenario("allowed_clients",
          "FPM listens on TCP with listen.allowed_clients = 127.0.0.2 while nginx connects from 127.0.0.1. "
          "shop.test -> pool www (catch_workers_output=no), api.test -> pool api (catch_workers_output=yes), "
          "admin.test -> pool www but with fastcgi_bind 127.0.0.2 (works)",
          "C13 / allowed_clients",
          "listen.allowed_clients=127.0.0.2 on both pools; admin.test: fastcgi_bind 127.0.0.2",
          [r"\[error\].*recv\(\) failed \(104: Connection reset by peer\) while reading response header from upstream"],
          [r"Connection disallowed: IP address '127\.0\.0\.1' has been dropped"])
def allowed_clients(ctx: Ctx):
    p1, p2 = free_port(), free_port()
    fpm = ctx.new_fpm({
        "www": {"listen": f"127.0.0.1:{p1}", "listen.allowed_clients": "127.0.0.2"},
        "api": {"listen": f"127.0.0.1:{p2}", "listen.allowed_clients": "127.0.0.2", "catch_workers_output": "yes"},
    })
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"127.0.0.1:{p1}")
    ng.php_server("api.test", f"127.0.0.1:{p2}")
    ng.php_server("admin.test", f"127.0.0.1:{p1}", loc_extra="fastcgi_bind 127.0.0.2;")
    fpm.start()
    ng.start()
    FW = Fault("allowed_clients_www", "C13", "allowed_clients")
    FA = Fault("allowed_clients_api", "C13", "allowed_clients")
    traffic(ctx, 4, 6, ["admin.test"])

    def fn(i):
        if i % 3 == 0:
            ctx.send("admin.test", "/ok.php")
        elif i % 3 == 1:
            ctx.send("shop.test", "/ok.php", FW)
        else:
            ctx.send("api.test", "/ok.php", FA)
    ctx.drive(8, 6, fn)
    traffic(ctx, 2, 6, ["admin.test"])


# ==========================================================================
# slowness / timeouts
# ==========================================================================
@scenario("fastcgi_read_timeout",
          "slow.php sleeps 5 s, longer than fastcgi_read_timeout 2 s; request_terminate_timeout 0; slow log on",
          "C5 / slow_backend",
          "fastcgi_read_timeout 2s; request_terminate_timeout=0; request_slowlog_timeout=1s; pm.max_children=10",
          [r"\[error\].*upstream timed out \(110: Connection timed out\) while reading response header from upstream"],
          [r"executing too slow", r"about to trace|failed to ptrace"])
def fastcgi_read_timeout(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock, "pm.max_children": "10", "request_terminate_timeout": "0",
                               **slowlog(ctx, "1s")}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}", loc_extra="fastcgi_read_timeout 2s;")
    fpm.start()
    ng.start()
    F = Fault("slow_script", "C5", "slow_backend")
    ctx.drive(4, 6, lambda i: ctx.send("shop.test", "/slow.php?sleep=0.2" if i % 3 == 0 else "/ok.php"))
    ctx.drive(6, 6, lambda i: ctx.send("shop.test", "/slow.php?sleep=5", F) if i % 6 == 0
              else ctx.send("shop.test", "/ok.php"))
    ctx.wait_all()
    time.sleep(3.5)
    traffic(ctx, 3, 6, ["shop.test"])


@scenario("timeouts_misaligned",
          "fastcgi_read_timeout 2 s < request_terminate_timeout 4 s, script sleeps 10 s: nginx answers 504 first, FPM "
          "kills the worker ~2 s later",
          "C5 / timeouts_misaligned",
          "fastcgi_read_timeout 2s; request_terminate_timeout=4s; no slow log",
          [r"upstream timed out \(110: Connection timed out\) while reading response header from upstream"],
          [r"execution timed out \(\d+\.\d+ sec\), terminating", r"exited on signal 15 \(SIGTERM\)"])
def timeouts_misaligned(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock, "pm.max_children": "10", "request_terminate_timeout": "4s"}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}", loc_extra="fastcgi_read_timeout 2s;")
    fpm.start()
    ng.start()
    F = Fault("timeouts_misaligned", "C5", "timeouts_misaligned")
    traffic(ctx, 4, 6, ["shop.test"])
    ctx.drive(6, 6, lambda i: ctx.send("shop.test", "/slow.php?sleep=10", F) if i % 6 == 0
              else ctx.send("shop.test", "/ok.php"))
    ctx.wait_all()
    time.sleep(3)
    traffic(ctx, 3, 6, ["shop.test"])


@scenario("request_terminate_timeout",
          "request_terminate_timeout 2 s, fastcgi_read_timeout 30 s, script sleeps 10 s: FPM kills the worker",
          "C6 / fpm_request_terminated",
          "request_terminate_timeout=2s; fastcgi_read_timeout 30s",
          [r"\[error\].*(recv\(\) failed \(104: Connection reset by peer\)|upstream prematurely closed).*while reading response header from upstream"],
          [r"execution timed out \(\d+\.\d+ sec\), terminating", r"exited on signal 15 \(SIGTERM\)"])
def request_terminate_timeout(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock, "pm.max_children": "10", "request_terminate_timeout": "2s"}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}", loc_extra="fastcgi_read_timeout 30s;")
    fpm.start()
    ng.start()
    F = Fault("request_terminate_timeout", "C6", "fpm_request_terminated")
    traffic(ctx, 4, 6, ["shop.test"])
    ctx.drive(6, 6, lambda i: ctx.send("shop.test", "/slow.php?sleep=10", F) if i % 6 == 0
              else ctx.send("shop.test", "/ok.php"))
    ctx.wait_all()
    traffic(ctx, 3, 6, ["shop.test"])


@scenario("client_abort",
          "the client gives up (closes its socket) after 1 s on slow.php?sleep=4 (nginx 499); slow log enabled",
          "C5 / slow_backend (client timed out first)",
          "client timeout 1 s; request_slowlog_timeout=1s; fastcgi_read_timeout default 60s",
          [r"\[info\].*client prematurely closed connection"],
          [r"executing too slow"])
def client_abort(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock, "pm.max_children": "10", **slowlog(ctx, "1s")}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    fpm.start()
    ng.start()
    F = Fault("client_gives_up", "C5", "slow_backend")
    traffic(ctx, 4, 6, ["shop.test"])
    ctx.drive(6, 6, lambda i: ctx.send("shop.test", "/slow.php?sleep=4", F, abort_after=1.0) if i % 6 == 0
              else ctx.send("shop.test", "/ok.php"))
    ctx.wait_all()
    time.sleep(3)
    traffic(ctx, 3, 6, ["shop.test"])


# ==========================================================================
# pool exhaustion
# ==========================================================================
def _exhaust(ctx: Ctx, F: Fault, slow_n=20, sleep=3):
    traffic(ctx, 4, 5, ["shop.test"])
    ctx.mark(f"{slow_n} concurrent slow.php?sleep={sleep}")
    slow = [ctx.send("shop.test", f"/slow.php?sleep={sleep}", F) for _ in range(slow_n)]
    traffic(ctx, 7, 5, ["shop.test"], fault=F)
    while any(r.done_t is None for r in slow):
        time.sleep(0.2)
    ctx.mark("all slow requests answered")
    time.sleep(1)
    traffic(ctx, 3, 5, ["shop.test"])


@scenario("max_children_unix",
          "pm=dynamic, pm.max_children=2, listen.backlog=1 on a unix socket; 20 concurrent slow (3 s) requests plus "
          "ongoing fast traffic",
          "C4 / fpm_pool_exhausted",
          "pm.max_children=2 start_servers=1 listen.backlog=1; request_slowlog_timeout=2s",
          [r"\[error\].*connect\(\) to unix:.*failed \(11: Resource temporarily unavailable\) while connecting to upstream"],
          [r"server reached pm\.max_children setting \(2\)"])
def max_children_unix(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock, "pm.max_children": "2", "pm.start_servers": "1",
                               "pm.min_spare_servers": "1", "pm.max_spare_servers": "2", "listen.backlog": "1",
                               **slowlog(ctx, "2s")}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    fpm.start()
    ng.start()
    _exhaust(ctx, Fault("pool_exhausted", "C4", "fpm_pool_exhausted"))


@scenario("max_children_tcp",
          "same as max_children_unix on TCP 127.0.0.1:PORT with fastcgi_connect_timeout 1s, fastcgi_read_timeout 4s",
          "C4 / fpm_pool_exhausted",
          "pm.max_children=2 listen.backlog=1; fastcgi_connect_timeout 1s; fastcgi_read_timeout 4s",
          [r"upstream timed out \(110: Connection timed out\) while (connecting to|reading response header from) upstream"],
          [r"server reached pm\.max_children setting \(2\)"])
def max_children_tcp(ctx: Ctx):
    port = free_port()
    fpm = ctx.new_fpm({"www": {"listen": f"127.0.0.1:{port}", "pm.max_children": "2", "pm.start_servers": "1",
                               "pm.min_spare_servers": "1", "pm.max_spare_servers": "2", "listen.backlog": "1",
                               **slowlog(ctx, "2s")}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"127.0.0.1:{port}",
                  loc_extra="fastcgi_connect_timeout 1s;\nfastcgi_read_timeout 4s;")
    fpm.start()
    ng.start()
    _exhaust(ctx, Fault("pool_exhausted", "C4", "fpm_pool_exhausted"))


@scenario("traffic_spike",
          "healthy low rate (2 req/s slow.php?sleep=0.5 + 2 req/s ok.php), then a 6 s burst at 10x the slow rate "
          "(20 req/s) against pm.max_children=4 with listen.backlog=8 on a unix socket",
          "C4 / fpm_pool_exhausted",
          "pm.max_children=4 listen.backlog=8; slow.php?sleep=0.5",
          [r"\(11: Resource temporarily unavailable\) while connecting to upstream"],
          [r"server reached pm\.max_children setting \(4\)"])
def traffic_spike(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock, "pm.max_children": "4", "pm.start_servers": "2",
                               "pm.min_spare_servers": "1", "pm.max_spare_servers": "3", "listen.backlog": "8"}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    fpm.start()
    ng.start()
    F = Fault("traffic_spike", "C4", "fpm_pool_exhausted")
    base = lambda f=None: (lambda i: ctx.send("shop.test", "/slow.php?sleep=0.5" if i % 2 == 0 else "/ok.php", f))
    ctx.drive(5, 4, base())
    ctx.mark("burst: 20 req/s slow.php?sleep=0.5 for 6 s")
    bg = Background(ctx, 2, base(F))
    ctx.drive(6, 20, lambda i: ctx.send("shop.test", "/slow.php?sleep=0.5", F))
    bg.stop()
    ctx.wait_all()
    ctx.mark("burst over")
    ctx.drive(5, 4, base())


# ==========================================================================
# worker deaths
# ==========================================================================
def _php_worker_fault(ctx: Ctx, pool_extra: dict, faults: list[tuple[int, str, Fault]], rate=6, seconds=8,
                      settle=0.0, glob=None):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock, **pool_extra}}, glob)
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    fpm.start()
    ng.start()
    traffic(ctx, 4, rate, ["shop.test"])

    def fn(i):
        for every, path, f in faults:
            if i % every == 0:
                ctx.send("shop.test", path, f)
                return
        ctx.send("shop.test", "/ok.php")
    ctx.drive(seconds, rate, fn)
    ctx.wait_all()
    if settle:
        time.sleep(settle)
    traffic(ctx, 3, rate, ["shop.test"])


@scenario("worker_segfault",
          "crash.php makes the worker SIGSEGV itself (502); partial.php flushes ~60 KB of body, then segfaults "
          "(client gets a truncated 200)",
          "C7 / worker_crash (both the 502s and the truncated 200s)",
          "catch_workers_output=no (default); emergency_restart_threshold=0 (default)",
          [r"\[error\].*recv\(\) failed \(104: Connection reset by peer\) while reading response header from upstream",
           r"while reading upstream"],
          [r"exited on signal 11 \(SIGSEGV"])
def worker_segfault(ctx: Ctx):
    _php_worker_fault(ctx, {}, [(4, "/crash.php", Fault("segfault", "C7", "worker_crash")),
                                (9, "/partial.php", Fault("segfault_mid_body", "C7", "worker_crash"))])


@scenario("worker_sigkill",
          "killed.php SIGKILLs its own worker (what the OOM killer does); no timeout, no reload",
          "C8 / worker_killed",
          "catch_workers_output=no (default)",
          [r"\[error\].*recv\(\) failed \(104: Connection reset by peer\) while reading response header from upstream"],
          [r"exited on signal 9 \(SIGKILL\)"])
def worker_sigkill(ctx: Ctx):
    _php_worker_fault(ctx, {}, [(4, "/killed.php", Fault("sigkill", "C8", "worker_killed"))])


@scenario("hard_timeout",
          "hard.php: ini_set('max_execution_time', 1) then bcrypt cost 20 (a C call PHP cannot interrupt); after "
          "1+2 s of CPU PHP writes the hard-timeout fatal and _exit(124)",
          "C9 / hard_timeout",
          "catch_workers_output=yes (decorated); zend.hard_timeout=2 (default)",
          [r"while reading response header from upstream"],
          [r"exited with code 124", r"Maximum execution time of 1\+2 seconds exceeded \(terminated\)"])
def hard_timeout(ctx: Ctx):
    _php_worker_fault(ctx, {"catch_workers_output": "yes"},
                      [(12, "/hard.php", Fault("hard_timeout", "C9", "hard_timeout"))], rate=6, seconds=6)


@scenario("memory_limit",
          "memory.php allocates 1 MB strings until memory_limit (32M) is hit: PHP fatal, HTTP 500, worker survives",
          "C10 / php_memory_limit",
          "php_admin_value[memory_limit]=32M; catch_workers_output=yes (decorated)",
          [r"\[error\].*FastCGI sent in stderr: \"PHP message: PHP Fatal error:  Allowed memory size of 33554432 bytes exhausted"],
          [r"said into stderr: \"NOTICE: PHP message: PHP Fatal error:  Allowed memory size"])
def memory_limit(ctx: Ctx):
    _php_worker_fault(ctx, {"catch_workers_output": "yes"},
                      [(6, "/memory.php", Fault("memory_limit", "C10", "php_memory_limit"))])


@scenario("php_fatal",
          "fatal.php throws an uncaught RuntimeException: HTTP 500 and a multi-line `FastCGI sent in stderr` entry "
          "with the stack trace",
          "C11 / php_fatal",
          "catch_workers_output=no (default): FPM's own log gets nothing from the worker",
          [r"FastCGI sent in stderr: \"PHP message: PHP Fatal error:  Uncaught RuntimeException"],
          [])
def php_fatal(ctx: Ctx):
    _php_worker_fault(ctx, {}, [(6, "/fatal.php", Fault("uncaught_exception", "C11", "php_fatal"))])


LOOP_PHP = r"""<?php
// interruptible CPU loop: max_execution_time (1 s of CPU time) stops it between two opcodes
// with "PHP Fatal error:  Maximum execution time of 1 second exceeded"
ini_set('max_execution_time', '1');
function rebuild_search_index(): string {
    $h = '';
    while (true) {
        $h = md5($h . 'token');
    }
    return $h;
}
rebuild_search_index();
echo "not reached\n";
"""


@scenario("php_error_log",
          "the pool sends PHP's errors to its own file (`php_admin_value[error_log] = <logs>/php-error.log`, the "
          "RHEL-family `www-error.log` shape) instead of to nginx: memory.php exhausts memory_limit (32M), fatal.php "
          "throws an uncaught RuntimeException, loop.php runs a CPU loop past max_execution_time 1 s; warn.php adds "
          "warnings to the file under 200s. Saved as php-error.log",
          "memory: C10 / php_memory_limit; uncaught exception and max_execution_time: C11 / php_fatal",
          "php_admin_value[error_log]=<tmp>/logs/php-error.log (file pre-created, owner www-data, 0644); "
          "php_admin_flag[log_errors]=on; display_errors off; date.timezone=Europe/Berlin (the PHP stamps carry "
          "the zone name); memory_limit 32M; loop.php: ini_set('max_execution_time', '1'); catch_workers_output=no",
          [], [],
          expect_files=[
              ("php-error.log", r"^\[\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d Europe/Berlin\] PHP Fatal error:  Allowed memory size of "
                                r"33554432 bytes exhausted"),
              ("php-error.log", r"^\[[^\]]+ Europe/Berlin\] PHP Fatal error:  Uncaught RuntimeException: order 4711"),
              ("php-error.log", r"^\[[^\]]+ Europe/Berlin\] PHP Fatal error:  Maximum execution time of 1 second "
                                r"exceeded"),
              ("php-error.log", r"^\[[^\]]+ Europe/Berlin\] PHP Warning:  Undefined variable"),
              ("access.log", r'"GET /memory\.php\?rid=\S+ HTTP/1\.1" 500 ')],
          absent_files=[("error.log", r"FastCGI sent in stderr")])
def php_error_log(ctx: Ctx):
    sock = ctx.sock("www")
    plog = ctx.wd.path("logs", "php-error.log")
    open(plog, "w").close()
    shutil.chown(plog, "www-data", "www-data")
    os.chmod(plog, 0o644)
    with open(ctx.wd.path("www", "loop.php"), "w") as f:
        f.write(LOOP_PHP)
    fpm = ctx.new_fpm({"www": {"listen": sock, "php_admin_value[error_log]": plog,
                               "php_admin_flag[log_errors]": "on"}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    fpm.start()
    ng.start()
    kinds = [("/memory.php", Fault("memory_limit", "C10", "php_memory_limit")),
             ("/fatal.php", Fault("uncaught_exception", "C11", "php_fatal")),
             ("/loop.php", Fault("max_execution_time", "C11", "php_fatal"))]
    ctx.drive(4, 6, lambda i: ctx.send("shop.test", "/warn.php" if i % 8 == 3 else "/ok.php"))
    ctx.wait_all()

    def fn(i):
        if i % 6 == 0:
            path, f = kinds[(i // 6) % len(kinds)]
            ctx.send("shop.test", path, f)
        elif i % 8 == 3:
            ctx.send("shop.test", "/warn.php")
        else:
            ctx.send("shop.test", "/ok.php")
    ctx.drive(9, 6, fn)
    ctx.wait_all()
    traffic(ctx, 3, 6, ["shop.test"])


@scenario("fpm_debug_layout",
          "FPM with log_level=debug (microsecond timestamps, pid/function/line prefix), catch_workers_output=yes and "
          "decorate_workers_output=no (raw worker lines); warn.php raises PHP warnings; one crash.php",
          "C7 / worker_crash (the crash only; warnings are 200s)",
          "global log_level=debug; catch_workers_output=yes; decorate_workers_output=no",
          [r"FastCGI sent in stderr: \"PHP message: PHP Warning:", r"recv\(\) failed \(104"],
          [r"^\[\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d\.\d{6}\] DEBUG: pid \d+, ", r"exited on signal 11",
           r"^NOTICE: (sapi_cgi_log_message\(\), line \d+: )?PHP message: PHP Warning:"])
def fpm_debug_layout(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock, "catch_workers_output": "yes", "decorate_workers_output": "no"}},
                      {"log_level": "debug"})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    fpm.start()
    ng.start()
    F = Fault("segfault", "C7", "worker_crash")
    ctx.drive(4, 4, lambda i: ctx.send("shop.test", "/warn.php" if i % 3 == 0 else "/ok.php"))
    ctx.send("shop.test", "/crash.php", F)
    ctx.drive(4, 4, lambda i: ctx.send("shop.test", "/warn.php" if i % 3 == 0 else "/ok.php"))


@scenario("fpm_reload_cut",
          "5 long requests (sleep 5) in flight, then FPM reloaded with SIGUSR2 (process_control_timeout 0); later 5 "
          "more in flight and FPM restarted (SIGTERM, 1 s gap, start) while fast traffic continues",
          "C14 / fpm_restart_cut",
          "global process_control_timeout=0; pm.max_children=10",
          [r"while reading response header from upstream"],
          [r"Reloading in progress", r"reloading: execvp", r"Terminating \.\.\.", r"exiting, bye-bye!"])
def fpm_reload_cut(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock, "pm.max_children": "10"}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    fpm.start()
    ng.start()
    ph = Phase()
    bg = Background(ctx, 5, lambda i: ctx.send("shop.test", "/ok.php", ph.fault))
    time.sleep(4)
    F1 = Fault("fpm_reload_sigusr2", "C14", "fpm_restart_cut")
    F2 = Fault("fpm_restart_sigterm", "C14", "fpm_restart_cut")
    # everything sent from the first long request until FPM is ready again is "in" the fault: fast
    # requests queue behind the long ones in the listen backlog and are cut as well
    ph.fault = F1
    for _ in range(5):
        ctx.send("shop.test", "/slow.php?sleep=5", F1)
        time.sleep(0.2)
    time.sleep(1.5)
    fpm.reload()
    time.sleep(1)
    ph.fault = None
    time.sleep(4)
    ph.fault = F2
    for _ in range(5):
        ctx.send("shop.test", "/slow.php?sleep=5", F2)
        time.sleep(0.2)
    time.sleep(1.5)
    fpm.stop()
    time.sleep(1)
    fpm.start()
    ph.fault = None
    time.sleep(4)
    bg.stop()


# ==========================================================================
# HTTP (proxy_pass) backends
# ==========================================================================
def _proxy_setup(ctx: Ctx, backend: HttpBackend, host="api.test", loc_extra=""):
    ng = ctx.new_nginx()
    ng.proxy_server(host, f"http://127.0.0.1:{backend.port}", loc_extra=loc_extra)
    backend.start()
    ng.start()
    return ng


def _mode_phases(ctx: Ctx, be: HttpBackend, phases: list[tuple[str, float, Fault | None]], rate=6, host="api.test"):
    ph = Phase()
    bg = Background(ctx, rate, lambda i: ctx.send(host, "/v1/items", ph.fault))
    for mode, secs, f in phases:
        if f is not None and ph.fault is not None:   # fault -> fault: switch both at once
            ph.fault = f
            be.mode = mode
        elif f is not None:        # healthy -> fault: tag first, then break the backend
            ph.fault = f
            time.sleep(0.3)
            be.mode = mode
        else:                      # heal first, untag a moment later
            be.mode = mode
            time.sleep(0.5)
            ph.fault = None
        ctx.mark(f"backend mode {mode}")
        time.sleep(secs)
    bg.stop()


@scenario("http_backend_down",
          "proxy_pass to a Python HTTP backend that answered during warm-up, then was stopped (nothing listening), "
          "restarted 6 s later",
          "C1 / backend_down",
          "proxy_pass http://127.0.0.1:PORT (single server, no upstream{} block)",
          [r"\[error\].*connect\(\) failed \(111: Connection refused\) while connecting to upstream"], [])
def http_backend_down(ctx: Ctx):
    be = HttpBackend("api")
    _proxy_setup(ctx, be)
    F = Fault("backend_stopped", "C1", "backend_down")
    traffic(ctx, 4, 6, ["api.test"], "/v1/items")
    be.stop()
    ctx.mark("backend stopped")
    traffic(ctx, 6, 6, ["api.test"], "/v1/items", F)
    be.start()
    ctx.mark("backend restarted")
    traffic(ctx, 3, 6, ["api.test"], "/v1/items")


@scenario("http_closes_early",
          "HTTP backend reads the request and closes without answering (FIN) for 4 s, then resets (SO_LINGER 0) for 4 s",
          "C7 / worker_crash",
          "proxy_pass http://127.0.0.1:PORT",
          [r"upstream prematurely closed connection while reading response header from upstream",
           r"recv\(\) failed \(104: Connection reset by peer\) while reading response header from upstream"], [])
def http_closes_early(ctx: Ctx):
    be = HttpBackend("api")
    _proxy_setup(ctx, be)
    _mode_phases(ctx, be, [("ok", 4, None), ("close", 4, Fault("backend_closes", "C7", "worker_crash")),
                           ("reset", 4, Fault("backend_resets", "C7", "worker_crash")), ("ok", 3, None)])


@scenario("http_invalid_header",
          "HTTP backend sends a response header containing a NUL byte (X-Trace: <rid>\\0garbage)",
          "C25 / protocol_mismatch",
          "proxy_pass http://127.0.0.1:PORT",
          [r"upstream sent invalid header: .*while reading response header from upstream"], [])
def http_invalid_header(ctx: Ctx):
    be = HttpBackend("api")
    _proxy_setup(ctx, be)
    _mode_phases(ctx, be, [("ok", 4, None), ("nul", 6, Fault("nul_in_header", "C25", "protocol_mismatch")),
                           ("ok", 3, None)])


@scenario("http_header_too_big",
          "HTTP backend sends a 16 KB Set-Cookie header, more than proxy_buffer_size (4k default)",
          "C26 / header_too_big",
          "proxy_buffer_size default (one page, 4k)",
          [r"upstream sent too big header while reading response header from upstream"], [])
def http_header_too_big(ctx: Ctx):
    be = HttpBackend("api")
    _proxy_setup(ctx, be)
    _mode_phases(ctx, be, [("ok", 4, None), ("bigheader", 6, Fault("header_too_big", "C26", "header_too_big")),
                           ("ok", 3, None)])


@scenario("no_live_upstreams",
          "upstream{} group `backend` with two HTTP servers (max_fails=1 fail_timeout=10s); both stopped after warm-up "
          "for 6 s, then restarted; traffic continues through the fail_timeout tail",
          "C1 / backend_down (including the `no live upstreams` requests)",
          "upstream backend { server A max_fails=1 fail_timeout=10s; server B max_fails=1 fail_timeout=10s; }",
          [r"connect\(\) failed \(111: Connection refused\)", r"\[warn\].*upstream server temporarily disabled",
           r"\[error\].*no live upstreams while connecting to upstream"], [])
def no_live_upstreams(ctx: Ctx):
    a, b = HttpBackend("a"), HttpBackend("b")
    ng = ctx.new_nginx()
    ng.upstreams = (f"upstream backend {{\n    server 127.0.0.1:{a.port} max_fails=1 fail_timeout=10s;\n"
                    f"    server 127.0.0.1:{b.port} max_fails=1 fail_timeout=10s;\n}}")
    ng.proxy_server("api.test", "http://backend")
    a.start()
    b.start()
    ng.start()
    F = Fault("both_peers_down", "C1", "backend_down")
    ph = Phase()
    bg = Background(ctx, 6, lambda i: ctx.send("api.test", "/v1/items", ph.fault))
    time.sleep(4)
    ph.fault = F
    time.sleep(0.3)
    a.stop()
    b.stop()
    ctx.mark("both backends stopped")
    time.sleep(6)
    a.start()
    b.start()
    ctx.mark("both backends restarted")
    time.sleep(12)
    ph.fault = None
    time.sleep(3)
    bg.stop()


@scenario("upstream_retry",
          "upstream{} group with two servers; server A stopped after warm-up: clients keep getting 200 (failover to B) "
          "while $upstream_status reads `502, 200` once per fail_timeout",
          "none client-facing (labels `-`); the masked peer failure is C1 / backend_down (windows.tsv)",
          "upstream backend { server A max_fails=1 fail_timeout=10s; server B max_fails=1 fail_timeout=10s; }",
          [r"connect\(\) failed \(111: Connection refused\) while connecting to upstream",
           r"upstream server temporarily disabled"], [])
def upstream_retry(ctx: Ctx):
    a, b = HttpBackend("a"), HttpBackend("b")
    ng = ctx.new_nginx()
    ng.upstreams = (f"upstream backend {{\n    server 127.0.0.1:{a.port} max_fails=1 fail_timeout=10s;\n"
                    f"    server 127.0.0.1:{b.port} max_fails=1 fail_timeout=10s;\n}}")
    ng.proxy_server("api.test", "http://backend")
    a.start()
    b.start()
    ng.start()
    F = Fault("peer_a_down", "C1", "backend_down")
    ctx.window_from_retries.add(F.name)
    traffic(ctx, 4, 5, ["api.test"], "/v1/items")
    a.stop()
    ctx.mark("backend A stopped")
    traffic(ctx, 25, 5, ["api.test"], "/v1/items", F)
    a.start()
    ctx.mark("backend A restarted")
    traffic(ctx, 3, 5, ["api.test"], "/v1/items")


@scenario("dns_failure",
          "proxy_pass http://$backend_host:PORT with `resolver 127.0.0.1:<fake DNS>`: the fake DNS answers A records "
          "during warm-up, then NXDOMAIN (5 s), SERVFAIL (5 s), nothing at all (6 s), then answers again",
          "C21 / dns_failure",
          "resolver 127.0.0.1:DNSPORT valid=1s ipv6=off; resolver_timeout 2s; answer TTL 1",
          [r"could not be resolved \(3: Host not found\)", r"could not be resolved \(2: Server failure\)",
           r"could not be resolved \(110: Operation timed out\)"], [])
def dns_failure(ctx: Ctx):
    be = HttpBackend("api")
    dns = FakeDns({"backend.test": "127.0.0.1"}).start()
    ng = ctx.new_nginx()
    ng.http_extra = f"resolver 127.0.0.1:{dns.port} valid=1s ipv6=off;\nresolver_timeout 2s;"
    ng.proxy_server("api.test", f"http://$backend_host:{be.port}", extra="set $backend_host backend.test;")
    be.start()
    ng.start()
    ph = Phase()
    bg = Background(ctx, 5, lambda i: ctx.send("api.test", "/v1/items", ph.fault))
    phases = [("ok", 4, None), ("nxdomain", 5, Fault("dns_nxdomain", "C21", "dns_failure")),
              ("servfail", 5, Fault("dns_servfail", "C21", "dns_failure")),
              ("silent", 6, Fault("dns_timeout", "C21", "dns_failure"))]
    for mode, secs, f in phases:
        ph.fault = f
        if mode != "ok":
            time.sleep(0.3)
        dns.mode = mode
        ctx.mark(f"DNS mode {mode}")
        time.sleep(secs)
    dns.mode = "ok"
    ctx.mark("DNS mode ok (recovering; tail still tagged dns_timeout)")
    time.sleep(5)
    ph.fault = None
    time.sleep(3)
    bg.stop()
    ctx.notes.append("DNS queries received by the fake DNS per mode (silent = never answered): " + ", ".join(f"{k}={v}" for k, v in dns.queries.items()))


@scenario("tls_failure",
          "proxy_pass https:// failures next to a healthy verified TLS backend (secure.test): plainport.test -> a plain "
          "HTTP port (wrong version number); hang.test -> a port that never answers the ClientHello (handshake "
          "timeout); selfsigned.test -> self-signed cert with proxy_ssl_verify on; mismatch.test -> valid cert, wrong "
          "proxy_ssl_name; expired.test -> CA-signed but expired cert",
          "plainport/hang: C23 / tls_handshake_failure; selfsigned/mismatch/expired: C24 / tls_cert_untrusted",
          "proxy_ssl_verify on; proxy_ssl_trusted_certificate = test CA; proxy_ssl_name backend.test; "
          "proxy_ssl_server_name on; proxy_connect_timeout 2s (hang.test)",
          [r"SSL_do_handshake\(\) failed \(SSL: error:0A00010B:SSL routines::wrong version number\) while SSL handshaking to upstream",
           r"upstream timed out \(110: Connection timed out\) while SSL handshaking to upstream",
           r"upstream SSL certificate verify error: \(18:self-signed certificate\)",
           r"upstream SSL certificate does not match \"wrong\.example\"",
           r"upstream SSL certificate verify error: \(10:certificate has expired\)"], [])
def tls_failure(ctx: Ctx):
    certs = make_certs(ctx.wd.path("tls"))
    good = HttpBackend("secure", tls=server_tls(certs["leaf.crt"], certs["leaf.key"]))
    plain = HttpBackend("plain", mode="plain400")
    hang = HttpBackend("hang", mode="silent")
    selfs = HttpBackend("selfsigned", tls=server_tls(certs["self.crt"], certs["self.key"]))
    exp = HttpBackend("expired", tls=server_tls(certs["expired.crt"], certs["expired.key"]))
    verify = (f"proxy_ssl_verify on;\nproxy_ssl_trusted_certificate {certs['ca.crt']};\n"
              "proxy_ssl_server_name on;\n")
    ng = ctx.new_nginx()
    ng.proxy_server("secure.test", f"https://127.0.0.1:{good.port}", loc_extra=verify + "proxy_ssl_name backend.test;")
    ng.proxy_server("plainport.test", f"https://127.0.0.1:{plain.port}")
    ng.proxy_server("hang.test", f"https://127.0.0.1:{hang.port}", loc_extra="proxy_connect_timeout 2s;")
    ng.proxy_server("selfsigned.test", f"https://127.0.0.1:{selfs.port}",
                    loc_extra=verify + "proxy_ssl_name backend.test;")
    ng.proxy_server("mismatch.test", f"https://127.0.0.1:{good.port}", loc_extra=verify + "proxy_ssl_name wrong.example;")
    ng.proxy_server("expired.test", f"https://127.0.0.1:{exp.port}", loc_extra=verify + "proxy_ssl_name backend.test;")
    for b in (good, plain, hang, selfs, exp):
        b.start()
    ng.start()
    traffic(ctx, 4, 6, ["secure.test"], "/v1/items")
    for host, f in [("plainport.test", Fault("https_to_plain_port", "C23", "tls_handshake_failure")),
                    ("hang.test", Fault("tls_handshake_timeout", "C23", "tls_handshake_failure")),
                    ("selfsigned.test", Fault("self_signed_cert", "C24", "tls_cert_untrusted")),
                    ("mismatch.test", Fault("cert_name_mismatch", "C24", "tls_cert_untrusted")),
                    ("expired.test", Fault("cert_expired", "C24", "tls_cert_untrusted"))]:
        ctx.mark(f"traffic to {host}")
        ctx.drive(3, 6, lambda i, h=host, f=f: ctx.send(h, "/v1/items", f) if i % 2 else ctx.send("secure.test", "/v1/items"))
    ctx.wait_all()
    traffic(ctx, 3, 6, ["secure.test"], "/v1/items")


# ==========================================================================
# nginx's own refusals (not upstream failures)
# ==========================================================================
LOGIN_PHP = r"""<?php
header('Content-Type: text/plain');
echo "login form rid=", $_GET['rid'] ?? '-', "\n";
"""

EXPORT_PHP = r"""<?php
// a slow download: the location has limit_conn addr 1
usleep((int)((float)($_GET['sleep'] ?? 1) * 1000000));
header('Content-Type: text/csv');
for ($i = 0; $i < 200; $i++) { echo "$i,order-$i,42.00\n"; }
"""


@scenario("nginx_limit_req",
          "limit_req (zone login, rate 2r/s, burst 2 nodelay) on /login.php and limit_conn (zone addr, 1 connection "
          "per address) on /export.php: one client (127.0.0.66) hammers /login.php at 8 req/s for 2.5 s, twice; "
          "another (127.0.0.77) opens 5 concurrent slow /export.php downloads (2 s), twice; healthy traffic "
          "from other addresses to ok.php, login.php and export.php throughout. nginx answers the rejected ones "
          "503 itself",
          "RL / rate_limited (limit_req), RL / conn_limited (limit_conn)",
          "limit_req_zone $binary_remote_addr zone=login:1m rate=2r/s; limit_req zone=login burst=2 nodelay; "
          "limit_conn_zone $binary_remote_addr zone=addr:1m; limit_conn addr 1; limit_req_status / "
          "limit_conn_status default (503), limit_*_log_level default (error)",
          [r"\[error\].*limiting requests, excess: [\d.]+ by zone \"login\"",
           r"\[error\].*limiting connections by zone \"addr\""],
          [r"ready to handle connections"])
def nginx_limit_req(ctx: Ctx):
    sock = ctx.sock("www")
    for name, body in (("login.php", LOGIN_PHP), ("export.php", EXPORT_PHP)):
        with open(ctx.wd.path("www", name), "w") as f:
            f.write(body)
    fpm = ctx.new_fpm({"www": {"listen": sock, "pm.max_children": "10", "pm.start_servers": "3",
                               "pm.max_spare_servers": "5"}})
    ng = ctx.new_nginx()
    ng.http_extra = ("limit_req_zone $binary_remote_addr zone=login:1m rate=2r/s;\n"
                     "limit_conn_zone $binary_remote_addr zone=addr:1m;")
    fcgi = ("include /etc/nginx/fastcgi_params;\n"
            "fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n"
            f"fastcgi_pass unix:{sock};")
    extra = ("location = /login.php {\n    limit_req zone=login burst=2 nodelay;\n"
             + "\n".join("    " + l for l in fcgi.splitlines()) + "\n}\n"
             "location = /export.php {\n    limit_conn addr 1;\n"
             + "\n".join("    " + l for l in fcgi.splitlines()) + "\n}")
    ng.php_server("shop.test", f"unix:{sock}", extra=extra)
    fpm.start()
    ng.start()
    FR = Fault("login_burst", "RL", "rate_limited")
    FC = Fault("concurrent_downloads", "RL", "conn_limited")

    def healthy(i):
        k = i % 8
        if k == 2:
            ctx.send("shop.test", "/login.php")
        elif k == 5:
            ctx.send("shop.test", "/export.php?sleep=0.3")
        else:
            ctx.send("shop.test", "/ok.php")
    bg = Background(ctx, 4, healthy)
    time.sleep(4)

    def login_burst():
        ctx.mark("login burst: 127.0.0.66 -> /login.php at 8 req/s for 2.5 s")
        ctx.drive(2.5, 8, lambda i: ctx.send("shop.test", "/login.php", FR, src="127.0.0.66"))

    def downloads():
        ctx.mark("5 concurrent /export.php?sleep=2 from 127.0.0.77")
        rs = []
        for _ in range(5):
            rs.append(ctx.send("shop.test", "/export.php?sleep=2", FC, src="127.0.0.77"))
            time.sleep(0.05)
        while any(r.done_t is None for r in rs):
            time.sleep(0.1)

    login_burst()
    time.sleep(2)
    downloads()
    time.sleep(2)
    login_burst()
    time.sleep(1)
    downloads()
    time.sleep(3)
    bg.stop()


# ==========================================================================
# multi-fault / long
# ==========================================================================
@scenario("mixed",
          "several faults overlapping on different vhosts: api.test (pool api, TCP) gets slow (sleep 4 > "
          "fastcgi_read_timeout 2s) from t=4..14 s; shop.test (pool www, unix) gets worker segfaults t=7..12 s; "
          "img.test's HTTP backend is down t=9..16 s; static.test (combined log format) serves files throughout",
          "api.test: C5 / slow_backend; shop.test: C7 / worker_crash; img.test: C1 / backend_down",
          "api.test fastcgi_read_timeout 2s, pool api max_children=12 request_slowlog_timeout=1s; pool www "
          "catch_workers_output=yes",
          [r"upstream timed out \(110: Connection timed out\) while reading response header from upstream",
           r"recv\(\) failed \(104: Connection reset by peer\) while reading response header from upstream",
           r"connect\(\) failed \(111: Connection refused\) while connecting to upstream"],
          [r"exited on signal 11", r"executing too slow"])
def mixed(ctx: Ctx):
    sock = ctx.sock("www")
    aport = free_port()
    img = HttpBackend("img")
    fpm = ctx.new_fpm({"www": {"listen": sock, "catch_workers_output": "yes"},
                       "api": {"listen": f"127.0.0.1:{aport}", "pm.max_children": "12", "pm.start_servers": "3",
                               "pm.max_spare_servers": "6", **slowlog(ctx, "1s")}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    ng.php_server("api.test", f"127.0.0.1:{aport}", loc_extra="fastcgi_read_timeout 2s;")
    ng.proxy_server("img.test", f"http://127.0.0.1:{img.port}")
    ng.static_server("static.test", fmt="combined", logfile="access-combined.log")
    img.start()
    fpm.start()
    ng.start()
    FA = Fault("api_slow", "C5", "slow_backend")
    FS = Fault("shop_segfault", "C7", "worker_crash")
    FI = Fault("img_backend_down", "C1", "backend_down")
    st = {"api": None, "shop": None, "img": None}

    def fn(i):
        k = i % 7
        if k in (0, 1):
            if st["shop"] and i % 2 == 0:
                ctx.send("shop.test", "/crash.php", st["shop"])
            else:
                ctx.send("shop.test", "/ok.php")
        elif k in (2, 3):
            if st["api"]:
                ctx.send("api.test", "/slow.php?sleep=4", st["api"])
            else:
                ctx.send("api.test", "/ok.php")
        elif k in (4, 5):
            ctx.send("img.test", "/thumb/42.jpg", st["img"])
        else:
            ctx.send("static.test", "/app.css" if i % 2 else "/index.html")
    bg = Background(ctx, 8, fn)
    t0 = time.monotonic()

    def at(t):
        d = t0 + t - time.monotonic()
        if d > 0:
            time.sleep(d)
    at(4); st["api"] = FA; ctx.mark("api.test slow on")
    at(7); st["shop"] = FS; ctx.mark("shop.test crash.php on")
    at(9); st["img"] = FI; time.sleep(0.3); img.stop(); ctx.mark("img backend stopped")
    at(12); st["shop"] = None; ctx.mark("shop.test crash.php off")
    at(14); st["api"] = None; ctx.mark("api.test slow off")
    at(16); img.start(); ctx.mark("img backend restarted"); time.sleep(0.5); st["img"] = None
    at(21)
    bg.stop()
    ctx.wait_all()
    time.sleep(2)


@scenario("rotated",
          "~105 s of mostly healthy traffic (shop.test -> access.log in `upcause` format, api.test -> "
          "access-combined.log in `combined` format), FPM stopped twice for 4 s and a few worker segfaults; logs "
          "rotated twice the logrotate way (mv + nginx USR1 / FPM USR1; delaycompress for access/error/php-fpm "
          "logs, dateext + compress for the combined log)",
          "FPM stops: C2 / fpm_socket_missing; crash.php: C7 / worker_crash",
          "rotation 1 at ~35 s, rotation 2 at ~70 s; FPM down at ~15 s and ~85 s",
          [r"\(2: No such file or directory\)", r"recv\(\) failed \(104"],
          [r"error log file re-opened", r"exited on signal 11", r"exiting, bye-bye!"])
def rotated(ctx: Ctx):
    sock = ctx.sock("www")
    fpm = ctx.new_fpm({"www": {"listen": sock}})
    ng = ctx.new_nginx()
    ng.php_server("shop.test", f"unix:{sock}")
    ng.php_server("api.test", f"unix:{sock}", fmt="combined", logfile="access-combined.log")
    fpm.start()
    ng.start()
    L = ctx.wd.logs
    F1 = Fault("fpm_stopped_1", "C2", "fpm_socket_missing")
    F2 = Fault("segfaults", "C7", "worker_crash")
    F3 = Fault("fpm_stopped_2", "C2", "fpm_socket_missing")
    ph = Phase()

    def fn(i):
        host = "shop.test" if i % 2 == 0 else "api.test"
        if ph.fault is F2:
            if i % 5 == 0:
                ctx.send(host, "/crash.php", F2)
            else:
                ctx.send(host, "/ok.php")
        else:
            ctx.send(host, "/ok.php", ph.fault)
    bg = Background(ctx, 4, fn)
    t0 = time.monotonic()

    def at(t):
        d = t0 + t - time.monotonic()
        if d > 0:
            time.sleep(d)

    def mv(a, b):
        os.rename(os.path.join(L, a), os.path.join(L, b))

    def gz(a):
        p = os.path.join(L, a)
        with open(p, "rb") as src, gzip.open(p + ".gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.unlink(p)
    datestamp = now().strftime("%Y%m%d")
    at(15); ph.fault = F1; time.sleep(0.3); fpm.stop()
    at(19); fpm.start(); ph.fault = None
    at(35)
    for base in ("access.log", "error.log", "php-fpm.log"):
        mv(base, base + ".1")
    mv("access-combined.log", f"access-combined.log-{datestamp}")
    ng.reopen()
    fpm.reopen()
    gz(f"access-combined.log-{datestamp}")
    ctx.mark(f"rotation 1: *.log -> *.log.1, access-combined.log -> access-combined.log-{datestamp}.gz; USR1 to both")
    at(50); ph.fault = F2; ctx.mark("crash.php on")
    at(56); ph.fault = None; ctx.mark("crash.php off")
    at(70)
    for base in ("access.log", "error.log", "php-fpm.log"):
        mv(base + ".1", base + ".2")
        mv(base, base + ".1")
    ng.reopen()
    fpm.reopen()
    for base in ("access.log", "error.log", "php-fpm.log"):
        gz(base + ".2")
    ctx.mark("rotation 2: *.log.1 -> *.log.2.gz, *.log -> *.log.1; USR1 to both")
    at(85); ph.fault = F3; time.sleep(0.3); fpm.stop()
    at(89); fpm.start(); ph.fault = None
    at(105)
    bg.stop()
