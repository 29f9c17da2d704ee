#!/usr/bin/env python3
"""upcause log capture driver.

Usage: run.sh [scenario...]        (no argument = all scenarios)
       run.sh --list
       run.sh --readme             (only regenerate testdata/real/README.md)

Starts real nginx + php-fpm (Debian packages) on loopback with configs in a
temp dir, injects one fault per scenario, drives traffic with request ids and
writes testdata/real/<scenario>/ (raw logs, configs, labels.tsv, windows.tsv,
NOTES.md). Must run as root.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import infra  # noqa: E402
from infra import (CaptureError, Ctx, access_records, count, fpm_lines, fpm_signature, iso, log,  # noqa: E402
                   log_files, nginx_entries, nginx_signature)
from scenarios import SCENARIOS  # noqa: E402
from observations import COMMON_FPM, COMMON_NGINX, NOT_PRODUCED, OBS  # noqa: E402

OUT = os.path.normpath(os.path.join(HERE, "..", "real"))
NGINX_VERSION = ""
FPM_VERSION = ""


def versions() -> None:
    global NGINX_VERSION, FPM_VERSION
    import subprocess
    r = subprocess.run([infra.NGINX, "-v"], capture_output=True, text=True)
    NGINX_VERSION = (r.stderr or r.stdout).strip().replace("nginx version: ", "")
    r = subprocess.run([infra.FPM, "-v"], capture_output=True, text=True)
    FPM_VERSION = r.stdout.splitlines()[0] if r.stdout else "?"


def stop_all(ctx: Ctx) -> None:
    if ctx.nginx:
        ctx.nginx.stop()
    if ctx.fpm and ctx.fpm.proc and ctx.fpm.proc.poll() is None:
        ctx.fpm.stop(label="SIGTERM (end of scenario)")
    for b in list(infra._BACKENDS):
        b.stop()
    infra._BACKENDS.clear()


def finalize(ctx: Ctx, sc, started: float) -> dict:
    out = os.path.join(OUT, ctx.name)
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    # raw logs
    for fn in sorted(os.listdir(ctx.wd.logs)):
        shutil.copy2(os.path.join(ctx.wd.logs, fn), os.path.join(tmp, fn))
    # configs
    if os.path.exists(ctx.wd.path("nginx.conf")):
        shutil.copy2(ctx.wd.path("nginx.conf"), os.path.join(tmp, "nginx.conf"))
    if ctx.fpm:
        shutil.copy2(ctx.fpm.conf, os.path.join(tmp, "php-fpm.conf"))
        for fn in sorted(os.listdir(ctx.wd.path("fpm.d"))):
            shutil.copy2(ctx.wd.path("fpm.d", fn), os.path.join(tmp, f"php-fpm-pool-{fn}"))
    for name, path in ctx.extra_confs.items():
        shutil.copy2(path, os.path.join(tmp, name))

    reqs = sorted(ctx.reqs, key=lambda r: r.rid)
    acc = {a["rid"]: a for a in access_records(tmp) if a["rid"]}
    # labels.tsv
    with open(os.path.join(tmp, "labels.tsv"), "w") as f:
        f.write("rid\tfault\tclient_status\tcause_class\tcause\n")
        for r in reqs:
            fault = r.fault.name if r.fault else "-"
            if r.fault and r.failed:
                cc, c = r.fault.cls, r.fault.cause
            else:
                cc, c = "-", "-"
            f.write(f"{r.rid}\t{fault}\t{r.status}\t{cc}\t{c}\n")
    # windows.tsv
    faults = []
    for r in sorted(ctx.reqs, key=lambda r: r.send_t or infra.now()):
        if r.fault and r.fault not in faults:
            faults.append(r.fault)
    retried = [rid for rid, a in acc.items() if a.get("ustatus") and "," in a["ustatus"]]
    with open(os.path.join(tmp, "windows.tsv"), "w") as f:
        f.write("fault\tstart\tend\tcause_class\tcause\n")
        for F in faults:
            fr = [r for r in reqs if r.fault == F and r.failed]
            if not fr and F.name in ctx.window_from_retries:
                fr = [r for r in reqs if r.fault == F and r.rid in retried]
            if fr:
                start = min(r.send_t for r in fr)
                end = max(r.done_t for r in fr)
                f.write(f"{F.name}\t{iso(start)}\t{iso(end)}\t{F.cls}\t{F.cause}\n")
            else:
                f.write(f"{F.name}\t-\t-\t{F.cls}\t{F.cause}\n")

    # analysis
    entries = nginx_entries(tmp)
    nsig = count(nginx_signature(lvl, msg, ctx.wd.root) for _, lvl, msg in entries)
    flines = fpm_lines(tmp)
    fsig = count(s for s in (fpm_signature(l) for l in flines) if s)
    alltext = "\n".join(f"[{lvl}] {msg}" for _, lvl, msg in entries)
    fpmtext = "".join(flines)
    checks = []
    for rx in sc.expect_nginx:
        checks.append(("error.log", rx, bool(re.search(rx, alltext, re.M))))
    for rx in sc.expect_fpm:
        checks.append(("php-fpm.log", rx, bool(re.search(rx, fpmtext, re.M))))
    for fn, rx in sc.expect_files:
        checks.append((fn, rx, bool(re.search(rx, _read(tmp, fn), re.M))))
    for fn, rx in sc.absent_files:
        checks.append((f"{fn} (must not match)", rx, not re.search(rx, _read(tmp, fn), re.M)))
    mism = []
    for r in reqs:
        a = acc.get(r.rid)
        if a is None:
            mism.append(f"{r.rid}: client {r.status}, no access-log line")
            continue
        exp = "499" if r.status == "000" else r.status
        if a["status"] != exp:
            mism.append(f"{r.rid}: client {r.status}, access log {a['status']}")
    unexpected = [r for r in reqs if r.failed and not r.fault]
    status_counts = count(r.status + ("(truncated)" if r.truncated else "") for r in reqs)
    label_counts = count(f"{r.fault.cls} / {r.fault.cause}" for r in reqs if r.fault and r.failed)
    dur = time.time() - started

    res = {
        "name": ctx.name, "requests": len(reqs), "failures": sum(1 for r in reqs if r.failed),
        "labelled": sum(1 for r in reqs if r.fault and r.failed), "status_counts": status_counts,
        "nginx_sigs": nsig, "fpm_sigs": fsig, "checks": checks, "mismatch": mism,
        "unexpected": [f"{r.rid} {r.status} {r.note}" for r in unexpected], "duration": dur,
    }

    # NOTES.md
    n = [f"# {ctx.name}", "", sc.summary, "",
         f"{NGINX_VERSION}, {FPM_VERSION}; TZ=Europe/Berlin for every server process. "
         f"Captured {iso(ctx.events[0][0]) if ctx.events else '?'} in {dur:.0f} s by "
         f"`testdata/capture/run.sh {ctx.name}`.", "",
         "## Expected cause", "", sc.causes, "",
         "## Config values that matter", "", sc.config,
         "(nginx: `error_log ... info`, `worker_processes 1`, `user www-data`; FPM: `log_level = notice` unless "
         "stated, `process_control_timeout = 0`; full configs are next to this file.)", "",
         "## Timeline (driver clock)", ""]
    n += [f"- {iso(t)} {text}" for t, text in ctx.events]
    n += ["", "## What was captured", "",
          f"- requests sent: {len(reqs)}; failed for the client: {res['failures']}; labelled with a cause: "
          f"{res['labelled']}",
          "- client statuses: " + ", ".join(f"{k}: {v}" for k, v in status_counts),
          "- labels: " + (", ".join(f"{k}: {v}" for k, v in label_counts) or "none"), ""]
    n += ["nginx error.log signatures (normalised; count):", ""]
    n += [f"- `{s}` x{c}" for s, c in nsig] or ["- none"]
    if ctx.fpm:
        n += ["", "php-fpm.log signatures (normalised; count):", ""]
        n += [f"- `{s}` x{c}" for s, c in fsig[:40]] or ["- none"]
        if len(fsig) > 40:
            n.append(f"- ... {len(fsig) - 40} more")
    if os.path.exists(os.path.join(tmp, "php-error.log")):
        heads, cont = php_error_signatures(tmp, ctx.wd.root)
        n += ["", "php-error.log (PHP's own error_log) messages (normalised; count):", ""]
        n += [f"- `{s}` x{c}" for s, c in heads] or ["- none"]
        if cont:
            n.append(f"- plus {cont} continuation lines without a stamp (stack traces)")
    n += ["", "## Checks", ""]
    n += [f"- {_verdict(where, ok)} {where}: `{rx}`" for where, rx, ok in checks]
    if retried:
        n += [f"- requests whose first upstream attempt failed (access log `ustatus` has several values): "
              f"{len(retried)}: " + ", ".join(f"{rid} ({acc[rid]['ustatus']})" for rid in sorted(retried))]
    if mism:
        n += [f"- client status vs access-log status mismatches: {len(mism)}"] + [f"  - {m}" for m in mism[:20]]
    else:
        n += ["- every request has an access-log line whose status matches what the client got (000 = 499)"]
    if unexpected:
        n += [f"- failures NOT caused by the injected fault (labelled `-`): {len(unexpected)}"]
        n += [f"  - {u}" for u in res["unexpected"][:20]]
    trunc = [r.rid for r in reqs if r.truncated]
    if trunc:
        n += [f"- truncated bodies (client got 200 but less than Content-Length/chunk end): {', '.join(trunc)}"]
    notes = list(ctx.notes)
    obs = OBS.get(ctx.name, "").strip()
    n += ["", "## Observations", ""]
    if obs:
        n += [obs]
    n += [f"- {x}" for x in notes]
    n += [COMMON_NGINX.strip()]
    if ctx.fpm:
        n += [COMMON_FPM.strip()]
    with open(os.path.join(tmp, "NOTES.md"), "w") as f:
        f.write("\n".join(n) + "\n")

    for fn in os.listdir(tmp):
        os.chmod(os.path.join(tmp, fn), 0o644)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    return res


def _read(d: str, fn: str) -> str:
    try:
        with open(os.path.join(d, fn), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _verdict(where: str, ok: bool) -> str:
    if ok:
        return "OK"
    return "FOUND" if where.endswith("(must not match)") else "MISSING"


PHP_ERR_HEAD = re.compile(r"^\[(\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d)(?: ([\w/+-]+))?\] (.*)$")


def php_error_signatures(d: str, root: str) -> tuple[list[tuple[str, int]], int]:
    """PHP error_log lines: `[DD-Mon-YYYY HH:MM:SS Zone] PHP Fatal error:  ...`, stamp replaced by its shape."""
    heads, cont = [], 0
    for line in _read(d, "php-error.log").splitlines():
        m = PHP_ERR_HEAD.match(line)
        if not m:
            cont += 1 if line.strip() else 0
            continue
        msg = m.group(3).replace(root, "<tmp>") if root else m.group(3)
        msg = re.sub(r"\d+", "N", msg)
        heads.append(f"[DD-Mon-YYYY HH:MM:SS {m.group(2) or ''}] {msg}".replace(" ]", "]"))
    return count(heads), cont


def run_one(name: str) -> dict:
    sc = SCENARIOS[name]
    log(f"=== {name}: {sc.summary[:100]}")
    started = time.time()
    ctx = Ctx(name)
    try:
        sc.fn(ctx)
        ctx.wait_all()
        time.sleep(1.0)
    finally:
        stop_all(ctx)
    res = finalize(ctx, sc, started)
    ctx.wd.remove()
    log(f"--- {name}: {res['requests']} requests, {res['failures']} failed, {res['labelled']} labelled, "
        f"{res['duration']:.0f}s")
    for s, c in res["nginx_sigs"]:
        if not s.startswith("[notice]"):
            log(f"      nginx {c:4d}  {s[:160]}")
    for where, rx, ok in res["checks"]:
        if not ok:
            log(f"      {_verdict(where, ok)} in {where}: {rx}")
    if res["mismatch"]:
        log(f"      {len(res['mismatch'])} client/access status mismatches")
    if res["unexpected"]:
        log(f"      {len(res['unexpected'])} unexpected failures: {res['unexpected'][:5]}")
    return res


# --------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------
def read_labels(d: str) -> list[list[str]]:
    with open(os.path.join(d, "labels.tsv")) as f:
        return [l.rstrip("\n").split("\t") for l in f.readlines()[1:]]


def write_readme() -> None:
    rows = []
    for name, sc in SCENARIOS.items():
        d = os.path.join(OUT, name)
        if not os.path.exists(os.path.join(d, "labels.tsv")):
            rows.append(f"| `{name}` | {sc.summary} | {sc.causes} | not captured | |")
            continue
        lab = read_labels(d)
        failed = sum(1 for l in lab if l[3] != "-")
        sigs = count(nginx_signature(lvl, msg) for _, lvl, msg in nginx_entries(d))
        keep = [s for s, _ in sigs if re.match(r"\[(crit|error|warn)\]", s) or "prematurely closed" in s]
        keep = [re.sub(r"<tmp>|/tmp/upcause-[\w-]+", "…", s) for s in keep]
        keep = [s[:200].replace("|", "&#124;") for s in keep[:6]]
        sigtxt = "<br>".join(f"`{s}`" for s in keep)
        if os.path.exists(os.path.join(d, "php-error.log")):
            heads, _ = php_error_signatures(d, "")
            fat = [re.sub(r"/tmp/upcause-[\w-]+", "…", h) for h, _ in heads if "Fatal error" in h]
            if not keep:
                sigtxt = "none for the failures;"
            sigtxt += "<br>php-error.log: " + "<br>".join(f"`{h[:200].replace('|', '&#124;')}`" for h in fat[:4])
        rows.append(f"| `{name}` | {sc.summary} | {sc.causes} | {len(lab)} / {failed} | {sigtxt} |")
    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    txt = f"""# Real nginx / php-fpm logs for upcause tests

Every directory below was produced by really running Debian 12's nginx ({NGINX_VERSION or '1.22.1'}) and
php-fpm ({FPM_VERSION or 'PHP 8.2'}) on loopback, injecting one fault (or a few, in `mixed` and `rotated`) and
driving traffic with traceable request ids (`?rid=<scenario>-NNNN`). Nothing here is hand-edited.
Cause `RL` (`rate_limited`, `conn_limited`) is not an upstream failure: nginx's own limit_req/limit_conn 503s.

## Layout of a scenario directory

| file | what |
|---|---|
| `access.log` | nginx access log, format `upcause` (see `nginx.conf`: `$time_local` with `+0100`, `host=`, `rt=`, `uaddr=`, `ustatus=`, `urt=`, `uct=`, `uht=`) |
| `access-combined.log` | (some scenarios) a second vhost logging in nginx's predefined `combined` format |
| `error.log` | nginx error log at level `info` (zone-less local time, Europe/Berlin) |
| `php-fpm.log` | FPM master log (zone-less local time); absent in proxy-only scenarios (no FPM there) |
| `php-fpm-slow.log` | FPM slow log, where the scenario enables it |
| `php-error.log` | (`php_error_log` only) PHP's own error log (pool `php_admin_value[error_log]`), written by the workers: `[DD-Mon-YYYY HH:MM:SS Europe/Berlin] PHP Fatal error:  ...`, stack traces on continuation lines |
| `*.1`, `*.2.gz`, `*-YYYYMMDD.gz` | rotated generations (`rotated` only) |
| `nginx.conf`, `php-fpm.conf`, `php-fpm-pool-*.conf` | the exact configs used (paths point into the temp dir of the run) |
| `labels.tsv` | `rid fault client_status cause_class cause`: one row per request sent. `fault` = the injected fault the request was sent into (`-` = healthy traffic); `client_status` = what the client got (`000` = the client closed the connection itself); `cause_class`/`cause` = the expected root cause when the request failed because of that fault (5xx, 000, or a truncated 200), else `-` |
| `windows.tsv` | `fault start end cause_class cause`: per injected fault, client send time of the first failing request and completion time of the last one (RFC 3339, ms, +01:00). `-` when the fault never produced a client-visible failure. For `upstream_retry` the window spans the requests whose first upstream attempt failed (the client got 200) |
| `NOTES.md` | what was injected, config values that matter, timeline, all distinct nginx/FPM log signatures with counts, checks, observations |

Times: access logs carry `+0100`; nginx error log and FPM logs are local time without a zone (Europe/Berlin);
php-error.log is local time followed by the zone name (`Europe/Berlin`, PHP's date.timezone);
labels/windows are client-side times with offset.

## Scenarios

| scenario | what it exercises | expected cause(s) | requests / labelled failures | main nginx signatures (normalised) |
|---|---|---|---|---|
{chr(10).join(rows)}

## Could not be produced / deviations

{NOT_PRODUCED.strip()}

## Re-running the capture

```
sudo testdata/capture/run.sh                 # all scenarios (~{_runtime_hint()})
sudo testdata/capture/run.sh dns_failure tls_failure   # just these
testdata/capture/run.sh --list
```

Needs root (nginx `user www-data`, FPM pools as www-data), Debian packages `nginx`, `php8.2-fpm`, `openssl`
(`run.sh` installs them with apt-get when missing) and python3.11 (stdlib only). Servers are started directly
(`nginx -c CONF -p PREFIX`, `php-fpm8.2 -y CONF -F`), never as system services, each in its own process group
which is killed on exit; everything listens on 127.0.0.x or on unix sockets inside a temp dir. A scenario
directory is replaced only when its capture finished. Timings, pids, ports and temp paths differ between runs,
so re-running changes the files; the set of signatures should not.

Total size of testdata/real: {total / 1024:.0f} KiB.
"""
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(txt)


def _runtime_hint() -> str:
    p = os.path.join(HERE, ".last-run-seconds")
    try:
        with open(p) as f:
            return f"{int(float(f.read().strip()) / 60 + 0.5)} minutes on 2 cores"
    except OSError:
        pass
    # no full run on this machine yet: keep what the current README says
    m = re.search(r"all scenarios \(~([^)]+)\)", _read(OUT, "README.md"))
    return m.group(1) if m else "15 minutes"


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv and argv[0] == "--list":
        for n, sc in SCENARIOS.items():
            print(f"{n:28s} {sc.causes}")
        return 0
    if os.geteuid() != 0:
        print("capture must run as root (nginx user www-data, FPM pools)", file=sys.stderr)
        return 2
    versions()
    if argv and argv[0] == "--readme":
        write_readme()
        return 0
    names = argv or list(SCENARIOS)
    bad = [n for n in names if n not in SCENARIOS]
    if bad:
        print(f"unknown scenario(s): {bad}; use --list", file=sys.stderr)
        return 2
    os.makedirs(OUT, exist_ok=True)
    t0 = time.time()
    failed = []
    for n in names:
        try:
            run_one(n)
        except CaptureError as e:
            log(f"!!! {n} FAILED: {e}")
            failed.append(n)
        except Exception:
            log(f"!!! {n} FAILED with an exception:\n{traceback.format_exc()}")
            failed.append(n)
        finally:
            infra._cleanup()
            infra._PROCS.clear()
    total = time.time() - t0
    if not argv:
        with open(os.path.join(HERE, ".last-run-seconds"), "w") as f:
            f.write(f"{total:.0f}\n")
    write_readme()
    log(f"done in {total:.0f}s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
