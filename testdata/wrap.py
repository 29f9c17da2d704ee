#!/usr/bin/env python3
"""Re-wrap the real captured logs (testdata/real/<scenario>/) the way production ships them.

    python3 testdata/wrap.py OUTDIR [--scenario NAME ...] [--shape NAME ...] [--check]

Writes OUTDIR/<shape>/<scenario>/... for every scenario directory of testdata/real that has a
labels.tsv (or only those given) and every shape (or only those given); labels.tsv and windows.tsv
are copied unchanged into every output scenario directory, configs and NOTES.md are not (wrapped
runs get no format hint). Prints one summary line per shape. `--check` then unwraps every written
shape with plain Python and asserts that the inner lines per source equal the original ones.
Python 3.11, standard library only (plus the `zstd` command for the `zst` shape), deterministic:
every "random" choice comes from random.Random seeded with a fixed string; no wall clock is read.

Sources of a scenario (rotation generations are decompressed and concatenated oldest first:
NAME-YYYYMMDD[.gz] by date, then NAME.N[.gz] by N descending, then the live NAME):
  access   = access.log*           nginx, format `upcause` (+0100 in every line)
  combined = access-combined.log*  nginx, format `combined`
  error    = error.log*            nginx error log, zone-less local stamps (Europe/Berlin)
  fpm      = php-fpm.log*          FPM master log, zone-less local stamps
  slow     = php-fpm-slow.log*     FPM slow log
  php      = php-error.log*        PHP's own error_log: `[DD-Mon-YYYY HH:MM:SS <zone>] PHP ...`, the
                                   zone is the identifier PHP writes (date('e'): Europe/Berlin, UTC, ...)
Records: an error entry is its stamped line plus the following lines without a `YYYY/MM/DD `
stamp (multi-line `FastCGI sent in stderr: "...` entries); a PHP record likewise is its
`[... <zone>] ` line plus the following unstamped lines (`Stack trace:`, `#0 ...`, `  thrown in`);
a slow-log record is the blank line FPM writes before each block, the `[stamp]  [pool x] pid N`
header and the lines up to the next blank line; every other line is a record of its own.
Unstamped FPM lines (blank lines, the raw worker lines of the debug layout) take the time of the
previous stamped line of their source. The sources are merged by k-way merge on (UTC second,
source rank fpm<slow<php<error<access<combined: causes before effects), which keeps every source's lines in their
original order and each record contiguous.
Envelope times: the second is the line's own stamp converted to UTC (error/FPM stamps are
Europe/Berlin local: +01:00 in winter, +02:00 between the last Sundays of March and October;
PHP stamps are converted with their own zone via zoneinfo, ambiguous hours -> first occurrence);
the sub-second part is a seeded random value, strictly increasing over the lines of one second
in merged order (so increasing within a second in every output file). All pieces of a split
line share the time of the line.

Shapes and the format facts a parser must know:
  docker-json        containers/<id>/<id>-json.log; id = sha256("upcause-wrap/<scen>/<name>")
                     hex (64); container "nginx" (access + combined on stdout, error on stderr)
                     and "php-fpm" (php-fpm.log + slow log + php-error.log on stderr; absent
                     without all three). php-error.log models `error_log = /proc/self/fd/2`
                     relayed by the master with catch_workers_output=yes and
                     decorate_workers_output=no: every physical line is its own log entry, raw,
                     PHP's `[... <zone>]` stamp kept; continuation lines carry no stamp and follow
                     their first line directly (records are never interleaved here).
                     Record {"log":"<bytes>\\n","stream":"stdout","time":"<RFC3339Nano UTC>"}.
                     `log` is encoded like moby's jsonlog.ffjsonWriteJSONBytesAsString (checked
                     against the moby source): `"`->\\"  `\\`->\\\\  LF->\\n  CR->\\r, every other
                     byte < 0x20 (TAB too) and `<` `>` `&` -> \\u00xx (lowercase hex), invalid
                     UTF-8 bytes -> \\ufffd, U+2028/2029 -> \\u2028/\\u2029, other non-ASCII raw.
                     `time` is Go's time.RFC3339Nano (moby's fastTimeMarshalJSON): trailing zeros
                     of the fraction are trimmed, no fraction at all when it is zero.
                     Lines with more than 16384 bytes of content are split into pieces of at
                     most 16384 bytes; all but the last piece lack the trailing \\n. Assumption:
                     we never cut inside a UTF-8 sequence (real Docker cuts at exactly 16 KiB and
                     can split a character, which the JSON then shows as \\ufffd).
  docker-json-split  the same, split at 200 bytes (cut moved back to a UTF-8 sequence start).
  cri                pods/default_web-7d4b9c_<uid>/{nginx,php-fpm}/0.log, uid = UUIDv4-shaped
                     from sha256; `<RFC3339Nano UTC> <stdout|stderr> F <raw line>` (containerd's
                     format: trailing fraction zeros trimmed); an empty line is `... F ` .
  cri-split          lines longer than 200 bytes become `P` records of 200 bytes (never inside a
                     UTF-8 sequence) and a final `F` record with the rest.
  compose            compose.log: `docker compose logs --no-color` of both services, names padded
                     to a common width (longest name + 2) then `| `: `nginx-1    | `,
                     `php-fpm-1  | `; no timestamps; stdout and stderr interleaved.
  docker-t           nginx.log, php-fpm.log: `docker logs -t`: `<RFC3339NanoFixed> <line>`
                     (always 9 fraction digits, Z), stdout and stderr interleaved.
  syslog             syslog: rsyslog traditional file format, RFC 3164 without <PRI>:
                     `Nov 22 04:14:42 web1 nginx: <msg>` (`Mmm dd`, day space-padded, no year:
                     infer it), time = local time. nginx's tag has no pid. Access lines are the
                     message as is; an error entry is ONE message that starts with nginx's own
                     `YYYY/MM/DD HH:MM:SS` stamp; rsyslog escapes control characters as `#` + 3
                     octal digits, so a multi-line entry is one line with `#012` between its
                     lines (TAB would be `#011`). rsyslog does NOT escape `#` itself, and
                     nginx's `pid#tid` (`2711#2711`) contains `#271`: only `#000`..`#037`
                     (and `#177`) can be escapes -- decode just those. FPM (`error_log = syslog`, ident php-fpm,
                     LOG_PID, facility daemon): `php-fpm[PID]: [LEVEL] message` (zlog.c
                     zlog_buf_prefix: no date; at log_level=debug `[LEVEL] func(), line N: msg`,
                     the `pid N, ` of the file layout moves into the header). Raw worker lines
                     (decorate_workers_output=no) are relayed verbatim, without `[LEVEL]`. A blank
                     line of the FPM file (message that ends in \\n) is an empty syslog message
                     (php_syslog splits at \\n): `... php-fpm[PID]: ` with nothing after ": ".
                     PID = `pid N` of a debug-layout line, else the master pid of the last
                     `fpm is running, pid N` (the first one for earlier lines), else 812.
                     The slow log stays a plain file www-slow.log in the same directory, and
                     PHP's own log a plain file php-error.log (PHP writes it itself, not via syslog).
                     Other daemons are mixed in after about every third message (seeded):
                     CRON[pid], sshd[pid], systemd[1], kernel (with `[uptime]`), dhclient[640],
                     `rsyslogd: [origin ...] rsyslogd was HUPed`.
  syslog-rfc3339     same messages, RSYSLOG_FileFormat: `2026-11-22T04:14:42.123456+01:00 web1 ...`
  syslog-5424        same messages, `<PRI>1 <RFC3339 local, 6 digits> web1 APP PROCID - - <msg>`
                     (single space before msg, as syslog-ng writes; control characters escaped
                     the rsyslog way, #012). nginx: APP nginx, PROCID `-`; PRI = local7 (23*8) +
                     severity: access 190 (info), error by nginx level emerg..debug -> 184..191
                     (error 187, crit 186, warn 188, notice 189, info 190). FPM: APP php-fpm,
                     PROCID = PID above; PRI = daemon (3*8) + syslog_priorities[zlog_level] --
                     FPM passes its CONFIGURED log_level, not the message level, to syslog()
                     (zlog.c vzlog/zlog_stream_buf_flush), so it is 29 (notice) for every line,
                     31 in the debug-layout scenario. Others: CRON 78, sshd 38 (auth.info),
                     systemd 30, kernel 4, dhclient 30, rsyslogd 46.
  journald           journal-short-iso.log (`journalctl -o short-iso`):
                     `2026-11-22T04:14:42+0100 web1 nginx[PID]: <msg>`; short-precise.log
                     (`-o short-precise`): `Nov 22 04:14:42.123456 web1 nginx[PID]: <msg>` (day
                     zero-padded, strftime %d); journal.json (`-o json`): one compact object per
                     entry, keys __CURSOR, __REALTIME_TIMESTAMP, __MONOTONIC_TIMESTAMP, _BOOT_ID,
                     _TRANSPORT, PRIORITY, SYSLOG_FACILITY, SYSLOG_IDENTIFIER, [SYSLOG_PID],
                     [SYSLOG_TIMESTAMP], MESSAGE, _PID, _UID, _GID, _COMM, _EXE, _CMDLINE,
                     _CAP_EFFECTIVE, _SYSTEMD_CGROUP, _SYSTEMD_UNIT, _SYSTEMD_SLICE,
                     _SYSTEMD_INVOCATION_ID, _MACHINE_ID, _HOSTNAME, _SOURCE_REALTIME_TIMESTAMP
                     (the order of older journalctl; newer ones print hash order). All values are
                     strings; MESSAGE keeps \\n. A multi-line MESSAGE is printed by the short
                     formats as its first line, then every further line prefixed by as many
                     spaces as the header (`<time> web1 ident[pid]: `) is long. The short formats
                     print _SOURCE_REALTIME_TIMESTAMP (same second as __REALTIME_TIMESTAMP).
                     Setup: nginx error and access log to the journal's /dev/log
                     (`syslog:server=unix:/dev/log,nohostname`) so an error entry is one entry
                     with embedded \\n (with `error_log stderr` journald would split it into one
                     entry per line); FPM error_log = syslog. nginx PID = the pid of the error
                     entry itself (nginx `pid#tid`), for access entries that of the latest error
                     entry. Units nginx.service / php8.2-fpm.service / cron.service /
                     ssh.service / init.scope / ifup@eth0.service / rsyslog.service; kernel
                     entries have no _PID (as in a real journal) and no `[uptime]` prefix.
                     The three files hold the SAME entries: read one of them at a time.
                     www-slow.log and php-error.log as in syslog.
  json-access        the plain scenario with every access-log generation rewritten as nginx
                     `escape=json` output: access.log* keys (nginx variable names) time_iso8601
                     (scenarios at even index in sorted order) or time_local (odd index),
                     remote_addr, remote_user, request, status (number), body_bytes_sent
                     (number), http_referer, http_user_agent, host, request_time and
                     upstream_addr/status/response_time/connect_time/header_time as strings
                     holding nginx's lists verbatim; access-combined.log* keys @timestamp
                     (ISO 8601, +01:00), client_ip, remote_user, method, uri, protocol, status
                     (string), bytes (string), referer, user_agent. A `-` of the text log is an
                     empty string (nginx writes nothing for an empty variable under escape=json).
                     ngx_escape_json: `"`->\\"  `\\`->\\\\, \\n \\r \\t \\b \\f short, other bytes
                     < 0x20 as \\u00xx, `/` and non-ASCII not escaped. Compact, no spaces.
                     .gz generations stay gzip (mtime 0). Error/FPM/slow/PHP files unchanged.
  zst, xz, bz2       the plain scenario, every log file (all generations) recompressed: a live
                     NAME -> NAME.1.EXT, NAME.N[.gz] -> NAME.(N+1).EXT, NAME-YYYYMMDD[.gz] ->
                     NAME-YYYYMMDD.EXT (so php-error.log -> php-error.log.1.EXT). The biggest
                     log file of each scenario is written as two concatenated streams/frames
                     (split at a line boundary near its middle) for all three codecs (pbzip2
                     writes multi-stream bzip2 too). zstd via the `zstd` command (level 3);
                     without it the shape is skipped with a note.
Hosts/ids: hostname web1; boot/machine/invocation ids and cursors derive from sha256 of fixed
strings and the scenario name.
"""

import argparse
import base64
import bz2
import calendar
import datetime
import gzip
import hashlib
import heapq
import json
import lzma
import random
import re
import shutil
import subprocess
import sys
import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
from pathlib import Path
from time import gmtime  # calendar conversion only, never the wall clock

REAL = Path(__file__).resolve().parent / "real"
SHAPES = [
    "docker-json", "docker-json-split", "cri", "cri-split", "compose", "docker-t",
    "syslog", "syslog-rfc3339", "syslog-5424", "journald", "json-access", "zst", "xz", "bz2",
]
HOST = "web1"
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
MON = {m: i for i, m in enumerate(MONTHS, 1)}
# Within one second the order of the sources is made up (the plain logs stamp whole seconds):
# FPM's own lines first, then nginx's error log, then its access log, the order in which one
# failure is usually written (FPM stops or fails to start, nginx cannot connect and logs it,
# the request ends and is logged). The other order would invent a failure that preceded its
# own cause within the second.
RANK = {"fpm": 0, "slow": 1, "php": 2, "error": 3, "access": 4, "combined": 5}
BASENAMES = {
    "access.log": "access", "access-combined.log": "combined", "error.log": "error",
    "php-fpm.log": "fpm", "php-fpm-slow.log": "slow", "php-error.log": "php",
}
FILE_RE = re.compile(
    r"^(access\.log|access-combined\.log|error\.log|php-fpm\.log|php-fpm-slow\.log|php-error\.log)"
    r"(?:\.(\d+)|-(\d{8}))?(\.gz)?$")
NGINX_CONTAINER = {"access": "stdout", "combined": "stdout", "error": "stderr"}
FPM_CONTAINER = {"fpm": "stderr", "slow": "stderr", "php": "stderr"}

ACCESS_TIME = re.compile(r"\[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\]")
ERROR_STAMP = re.compile(r"^(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) ")
ERROR_LEVEL = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] (\d+)#")
FPM_STAMP = re.compile(r"^\[(\d\d)-([A-Z][a-z]{2})-(\d{4}) (\d\d):(\d\d):(\d\d)(?:\.(\d{6}))?\] ")
FPM_LINE = re.compile(r"^\[[^\]]*\] (DEBUG|NOTICE|WARNING|ERROR|ALERT): (.*)$", re.S)
PHP_STAMP = re.compile(r"^\[(\d\d)-([A-Z][a-z]{2})-(\d{4}) (\d\d):(\d\d):(\d\d) ([^\]\s]+)\] ")
SLOW_HEADER = re.compile(r"^\[[^\]]+\]  \[pool [^\]]+\] pid \d+$")
UPCAUSE_RE = re.compile(
    r'^(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] "(?P<request>[^"]*)" '
    r'(?P<status>\d{3}) (?P<body_bytes_sent>\d+) "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)" '
    r'host=(?P<host>\S+) rt=(?P<request_time>\S+) uaddr="(?P<upstream_addr>[^"]*)" '
    r'ustatus="(?P<upstream_status>[^"]*)" urt="(?P<upstream_response_time>[^"]*)" '
    r'uct="(?P<upstream_connect_time>[^"]*)" uht="(?P<upstream_header_time>[^"]*)"$')
COMBINED_RE = re.compile(
    r'^(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] "(?P<request>[^"]*)" '
    r'(?P<status>\d{3}) (?P<body_bytes_sent>\d+) "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)"$')
NGX_SEVERITY = {"emerg": 0, "alert": 1, "crit": 2, "error": 3, "warn": 4, "notice": 5, "info": 6, "debug": 7}
ZLOG_SEVERITY = {"DEBUG": 7, "NOTICE": 5, "WARNING": 4, "ERROR": 3, "ALERT": 1}


# ---------------------------------------------------------------- time helpers

def _last_sunday(year, month):
    last = calendar.monthrange(year, month)[1]
    return last - (calendar.weekday(year, month, last) + 1) % 7


def berlin_offset(utc):
    """UTC offset in seconds of Europe/Berlin at the UTC instant `utc` (EU rules since 1996)."""
    year = gmtime(utc).tm_year
    start = calendar.timegm((year, 3, _last_sunday(year, 3), 1, 0, 0))
    end = calendar.timegm((year, 10, _last_sunday(year, 10), 1, 0, 0))
    return 7200 if start <= utc < end else 3600


def local_to_utc(y, mo, d, h, mi, s):
    naive = calendar.timegm((y, mo, d, h, mi, s))
    for off in (7200, 3600):  # DST first: the ambiguous hour maps to its first occurrence
        if berlin_offset(naive - off) == off:
            return naive - off
    return naive - 3600  # non-existent spring-forward hour


def zone_to_utc(zone, y, mo, d, hh, mi, ss):
    """UTC epoch second of a wall-clock time in the zone PHP wrote (`date('e')`: an IANA identifier,
    `UTC`, or an offset like `+01:00`). Ambiguous/non-existent local times: fold=0, which matches
    local_to_utc (first occurrence; the pre-transition offset in the spring gap)."""
    naive = calendar.timegm((y, mo, d, hh, mi, ss))
    m = re.match(r"^([+-])(\d\d):?(\d\d)$", zone)
    if m:
        return naive - (int(m.group(2)) * 3600 + int(m.group(3)) * 60) * (1 if m.group(1) == "+" else -1)
    if zone in ("UTC", "Z", "GMT"):
        return naive
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        if zone == "Europe/Berlin":  # no tz database installed: the built-in EU rules
            return local_to_utc(y, mo, d, hh, mi, ss)
        raise
    return int(datetime.datetime(y, mo, d, hh, mi, ss, tzinfo=tz).timestamp())


def gm(utc):
    return gmtime(utc)


def local_tm(utc):
    off = berlin_offset(utc)
    return gm(utc + off), off


def rfc3339nano(sec, ns, fixed=False):
    t = gm(sec)
    base = "%04d-%02d-%02dT%02d:%02d:%02d" % t[:6]
    if fixed:
        return base + ".%09dZ" % ns
    if ns == 0:
        return base + "Z"
    return base + ("." + ("%09d" % ns).rstrip("0")) + "Z"


def local_iso_us(sec, us):
    t, off = local_tm(sec)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06d+%02d:00" % (t[:6] + (us, off // 3600))


def rfc3164_stamp(sec):
    t, _ = local_tm(sec)
    return "%s %2d %02d:%02d:%02d" % (MONTHS[t.tm_mon - 1], t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def line_sec(src, line):
    """UTC epoch second of a line's own stamp, or None."""
    if src in ("access", "combined"):
        m = ACCESS_TIME.search(line)
        if not m:
            return None
        dd, mon, yy, hh, mi, ss, sign, oh, om = m.groups()
        off = (int(oh) * 3600 + int(om) * 60) * (1 if sign == "+" else -1)
        return calendar.timegm((int(yy), MON[mon], int(dd), int(hh), int(mi), int(ss))) - off
    if src == "error":
        m = ERROR_STAMP.match(line)
        return local_to_utc(*map(int, m.groups())) if m else None
    if src == "php":
        m = PHP_STAMP.match(line)
        if not m:
            return None
        dd, mon, yy, hh, mi, ss, zone = m.groups()
        return zone_to_utc(zone, int(yy), MON[mon], int(dd), int(hh), int(mi), int(ss))
    m = FPM_STAMP.match(line)
    if not m:
        return None
    dd, mon, yy, hh, mi, ss, _us = m.groups()
    return local_to_utc(int(yy), MON[mon], int(dd), int(hh), int(mi), int(ss))


def h(*parts, n=64):
    return hashlib.sha256("/".join(("upcause-wrap",) + parts).encode()).hexdigest()[:n]


# ---------------------------------------------------------------- reading

class Rec:
    __slots__ = ("src", "lines", "sec", "ns")

    def __init__(self, src, lines, sec):
        self.src, self.lines, self.sec, self.ns = src, lines, sec, []


def read_bytes(path):
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def split_lines(data):
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def gen_order(m):
    num, date = m.group(2), m.group(3)
    if date:
        return (0, int(date))
    if num:
        return (1, -int(num))
    return (2, 0)


class Scenario:
    def __init__(self, name, index):
        self.name, self.index = name, index
        self.dir = REAL / name
        self.files = {}  # src -> [(filename, raw decompressed bytes)] oldest first
        found = []
        for p in sorted(self.dir.iterdir()):
            m = FILE_RE.match(p.name)
            if m and p.is_file():
                found.append((BASENAMES[m.group(1)], gen_order(m), p.name))
        for src, order, fname in sorted(found):
            self.files.setdefault(src, []).append((fname, read_bytes(self.dir / fname)))
        self.lines = {src: [l for _, d in gens for l in split_lines(d)] for src, gens in self.files.items()}
        self.fpm_debug = any(FPM_STAMP.match(l) and FPM_STAMP.match(l).group(7)
                             for l in self.lines.get("fpm", []))
        self.timeline = self._merge()
        self._assign_ns()

    def records(self, src):
        lines = self.lines[src]
        recs = []
        if src in ("error", "php"):
            stamp = ERROR_STAMP if src == "error" else PHP_STAMP
            for l in lines:
                if stamp.match(l) or not recs:
                    recs.append(Rec(src, [l], line_sec(src, l)))
                else:
                    recs[-1].lines.append(l)
        elif src == "slow":
            for l in lines:
                if l == "" or not recs:
                    recs.append(Rec(src, [l], line_sec(src, l)))
                elif SLOW_HEADER.match(l) and recs[-1].lines != [""]:
                    recs.append(Rec(src, [l], line_sec(src, l)))
                else:
                    recs[-1].lines.append(l)
                    if recs[-1].sec is None:
                        recs[-1].sec = line_sec(src, l)
        else:
            recs = [Rec(src, [l], line_sec(src, l)) for l in lines]
        # unstamped records take the previous stamped time (the next one at the start)
        last = None
        for r in recs:
            if r.sec is None:
                r.sec = last
            else:
                last = r.sec
        nxt = None
        for r in reversed(recs):
            if r.sec is None:
                r.sec = nxt
            else:
                nxt = r.sec
        return recs

    def _merge(self):
        per = {src: self.records(src) for src in self.lines}
        fallback = min((r.sec for rs in per.values() for r in rs if r.sec is not None), default=0)
        for rs in per.values():
            for r in rs:
                if r.sec is None:
                    r.sec = fallback
        heap = [(rs[0].sec, RANK[src], 0, src) for src, rs in per.items() if rs]
        heapq.heapify(heap)
        out = []
        while heap:
            _, rank, i, src = heapq.heappop(heap)
            out.append(per[src][i])
            if i + 1 < len(per[src]):
                heapq.heappush(heap, (per[src][i + 1].sec, rank, i + 1, src))
        return out

    def _assign_ns(self):
        count = {}
        for r in self.timeline:
            count[r.sec] = count.get(r.sec, 0) + len(r.lines)
        pools = {}
        for sec, n in count.items():
            rng = random.Random("ns/%s/%d" % (self.name, sec))
            pools[sec] = iter(sorted(rng.sample(range(1, 10 ** 9), n)))
        for r in self.timeline:
            r.ns = [next(pools[r.sec]) for _ in r.lines]

    def srcs(self, names):
        return [r for r in self.timeline if r.src in names]

    def copy_tsv(self, dest):
        dest.mkdir(parents=True, exist_ok=True)
        for f in ("labels.tsv", "windows.tsv"):
            if (self.dir / f).exists():
                shutil.copyfile(self.dir / f, dest / f)


def enc(s):
    return s.encode("utf-8", "surrogateescape")


def write(path, chunks):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(chunks) if isinstance(chunks, list) else chunks
    path.write_bytes(data)
    return len(data)


# ---------------------------------------------------------------- container shapes

_GO_TABLE = {c: "\\u%04x" % c for c in range(0x20)}
_GO_TABLE.update({ord("\n"): "\\n", ord("\r"): "\\r", ord('"'): '\\"', ord("\\"): "\\\\",
                  ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                  0x2028: "\\u2028", 0x2029: "\\u2029"})
_GO_TABLE.update({c: "\\ufffd" for c in range(0xDC80, 0xDD00)})  # surrogateescape'd invalid bytes


def go_json_bytes(b):
    """moby jsonlog ffjsonWriteJSONBytesAsString."""
    return '"' + b.decode("utf-8", "surrogateescape").translate(_GO_TABLE) + '"'


def split_pieces(b, limit):
    """Split raw line bytes into pieces of at most `limit` bytes, never inside a UTF-8 sequence."""
    if len(b) <= limit:
        return [b]
    out, start = [], 0
    while len(b) - start > limit:
        cut = start + limit
        while cut > start and (b[cut] & 0xC0) == 0x80:
            cut -= 1
        if cut == start:
            cut = start + limit
        out.append(b[start:cut])
        start = cut
    out.append(b[start:])
    return out


def containers(scen):
    res = []
    for name, routes in (("nginx", NGINX_CONTAINER), ("php-fpm", FPM_CONTAINER)):
        recs = scen.srcs(routes)
        if recs:
            res.append((name, routes, recs))
    return res


def shape_docker_json(scen, dest, limit):
    n = 0
    for name, routes, recs in containers(scen):
        cid = h(scen.name, name)
        out = []
        for r in recs:
            stream = routes[r.src]
            for line, ns in zip(r.lines, r.ns):
                t = rfc3339nano(r.sec, ns)
                pieces = split_pieces(enc(line), limit)
                for i, p in enumerate(pieces):
                    if i == len(pieces) - 1:
                        p += b"\n"
                    out.append(('{"log":%s,"stream":"%s","time":"%s"}\n' % (go_json_bytes(p), stream, t))
                               .encode("utf-8", "surrogateescape"))
        n += write(dest / "containers" / cid / (cid + "-json.log"), out)
    return n


def pod_dir(scen):
    u = uuid.UUID(bytes=bytes.fromhex(h(scen.name, "pod", n=32)), version=4)
    return "pods/default_web-7d4b9c_%s" % u


def shape_cri(scen, dest, limit):
    n = 0
    for name, routes, recs in containers(scen):
        out = []
        for r in recs:
            stream = routes[r.src].encode()
            for line, ns in zip(r.lines, r.ns):
                t = rfc3339nano(r.sec, ns).encode()
                pieces = split_pieces(enc(line), limit) if limit else [enc(line)]
                for i, p in enumerate(pieces):
                    tag = b"F" if i == len(pieces) - 1 else b"P"
                    out.append(b"%s %s %s %s\n" % (t, stream, tag, p))
        n += write(dest / pod_dir(scen) / name / "0.log", out)
    return n


def shape_compose(scen, dest):
    names = {"nginx": "nginx-1", "php-fpm": "php-fpm-1"}
    width = max(len(v) for v in names.values()) + 2
    prefix = {src: ("%-*s| " % (width, names["nginx" if src in NGINX_CONTAINER else "php-fpm"])).encode()
              for src in RANK}
    out = [prefix[r.src] + enc(l) + b"\n" for r in scen.timeline for l in r.lines]
    return write(dest / "compose.log", out)


def shape_docker_t(scen, dest):
    n = 0
    for name, routes, recs in containers(scen):
        out = [rfc3339nano(r.sec, ns, fixed=True).encode() + b" " + enc(l) + b"\n"
               for r in recs for l, ns in zip(r.lines, r.ns)]
        n += write(dest / (name + ".log"), out)
    return n


# ---------------------------------------------------------------- syslog / journald messages

class Msg:
    __slots__ = ("sec", "ns", "ident", "pid", "text", "fac", "sev", "kind", "src")

    def __init__(self, sec, ns, ident, pid, text, fac, sev, kind, src=None):
        (self.sec, self.ns, self.ident, self.pid, self.text, self.fac, self.sev, self.kind,
         self.src) = sec, ns, ident, pid, text, fac, sev, kind, src


def fpm_syslog_form(line, debug):
    """(pid from a debug-layout line or None, syslog message) of one FPM file line."""
    m = FPM_LINE.match(line)
    if not m:
        return None, line
    level, rest = m.groups()
    if debug:
        pm = re.match(r"^pid (\d+), (.*)$", rest, re.S)
        if pm:
            return int(pm.group(1)), "[%s] %s" % (level, pm.group(2))
    return None, "[%s] %s" % (level, rest)


def boot_time(scen):
    first = scen.timeline[0].sec if scen.timeline else 0
    return first - 3 * 86400 - random.Random("boot/" + scen.name).randrange(3600)


def build_messages(scen):
    """Messages of the host's syslog in arrival order, other daemons mixed in (seeded)."""
    rng = random.Random("noise/" + scen.name)
    fpm_lines = scen.lines.get("fpm", [])
    running = [int(m.group(1)) for l in fpm_lines for m in [re.search(r"fpm is running, pid (\d+)", l)] if m]
    debug_pids = [p for l in fpm_lines for p in [fpm_syslog_form(l, scen.fpm_debug)[0]] if p]
    fpm_pid = (debug_pids or running or [812])[0]
    err_pids = [int(m.group(2)) for l in scen.lines.get("error", []) for m in [ERROR_LEVEL.match(l)] if m]
    ngx_pid = (err_pids or [811])[0]
    zlog_sev = 7 if scen.fpm_debug else 5
    boot = boot_time(scen)
    state = {"cron": 2211, "sshd": 3021, "session": 42}
    fp = base64.b64encode(bytes.fromhex(h("sshkey"))).decode().rstrip("=")
    msgs = []
    recs = [r for r in scen.timeline if r.src not in ("slow", "php")]
    for i, r in enumerate(recs):
        if r.src in ("access", "combined"):
            msgs.append(Msg(r.sec, r.ns[0], "nginx", ngx_pid, r.lines[0], 23, 6, "nginx", r.src))
        elif r.src == "error":
            m = ERROR_LEVEL.match(r.lines[0])
            sev = NGX_SEVERITY.get(m.group(1), 3) if m else 3
            if m:
                ngx_pid = int(m.group(2))
            msgs.append(Msg(r.sec, r.ns[0], "nginx", ngx_pid, "\n".join(r.lines), 23, sev, "nginx", "error"))
        else:
            pid, text = fpm_syslog_form(r.lines[0], scen.fpm_debug)
            mr = re.search(r"fpm is running, pid (\d+)", r.lines[0])
            if pid:
                fpm_pid = pid
            elif mr:
                fpm_pid = int(mr.group(1))
            msgs.append(Msg(r.sec, r.ns[0], "php-fpm", fpm_pid, text, 3, zlog_sev, "fpm", "fpm"))
        if rng.random() < 1 / 3:
            a = r.ns[-1]
            nxt = recs[i + 1] if i + 1 < len(recs) else None
            b = nxt.ns[0] if nxt is not None and nxt.sec == r.sec else 10 ** 9
            ns = a + (b - a) // 2
            kind = rng.choice(["cron", "sshd", "systemd", "kernel", "dhclient", "rsyslogd"])
            if kind == "cron":
                state["cron"] += rng.randrange(1, 40)
                m = Msg(r.sec, ns, "CRON", state["cron"],
                        "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)", 9, 6, kind)
            elif kind == "sshd":
                state["sshd"] += rng.randrange(1, 40)
                m = Msg(r.sec, ns, "sshd", state["sshd"],
                        "Accepted publickey for deploy from 10.0.0.5 port %d ssh2: ED25519 SHA256:%s"
                        % (rng.randrange(40000, 61000), fp), 4, 6, kind)
            elif kind == "systemd":
                state["session"] += 1
                m = Msg(r.sec, ns, "systemd", 1, "Started session-%d.scope - Session %d of User deploy."
                        % (state["session"], state["session"]), 3, 6, kind)
            elif kind == "kernel":
                m = Msg(r.sec, ns, "kernel", None,
                        "TCP: request_sock_TCP: Possible SYN flooding on port 80. Sending cookies.", 0, 4, kind)
            elif kind == "dhclient":
                m = Msg(r.sec, ns, "dhclient", 640, "DHCPREQUEST for 10.0.0.7 on eth0 to 10.0.0.1 port 67",
                        3, 6, kind)
            else:
                m = Msg(r.sec, ns, "rsyslogd", 501, '[origin software="rsyslogd" swVersion="8.2302.0" '
                        'x-pid="501"] rsyslogd was HUPed', 5, 6, kind)
            msgs.append(m)
    return msgs, boot


def rsyslog_escape(s):
    if not any(ord(c) < 0x20 or c == "\x7f" for c in s):
        return s
    return "".join("#%03o" % ord(c) if ord(c) < 0x20 or c == "\x7f" else c for c in s)


def syslog_text(m, boot):
    """(tag as rsyslog writes it, message) for the syslog file shapes."""
    if m.kind == "kernel":
        up = (m.sec - boot) + m.ns / 1e9
        return "kernel:", "[%.6f] %s" % (up, m.text)
    if m.kind in ("nginx", "rsyslogd"):
        return m.ident + ":", m.text
    return "%s[%d]:" % (m.ident, m.pid), m.text


def shape_syslog(scen, dest, variant):
    msgs, boot = build_messages(scen)
    out = []
    for m in msgs:
        tag, text = syslog_text(m, boot)
        text = rsyslog_escape(text)
        if variant == "syslog":
            out.append("%s %s %s %s\n" % (rfc3164_stamp(m.sec), HOST, tag, text))
        elif variant == "syslog-rfc3339":
            out.append("%s %s %s %s\n" % (local_iso_us(m.sec, m.ns // 1000), HOST, tag, text))
        else:
            procid = "-" if m.kind in ("nginx", "rsyslogd", "kernel") else str(m.pid)
            out.append("<%d>1 %s %s %s %s - - %s\n" % (m.fac * 8 + m.sev, local_iso_us(m.sec, m.ns // 1000),
                                                        HOST, m.ident, procid, text))
    n = write(dest / "syslog", [enc(s) for s in out])
    return n + write_plain_files(scen, dest)


PLAIN_FILES = {"slow": "www-slow.log", "php": "php-error.log"}  # kept as files next to syslog/journal


def write_plain_files(scen, dest):
    n = 0
    for src, fname in PLAIN_FILES.items():
        if src in scen.lines:
            n += write(dest / fname, [enc(l) + b"\n" for l in scen.lines[src]])
    return n


UNITS = {
    "nginx": ("nginx.service", 33, 33, "nginx", "/usr/sbin/nginx", "nginx: worker process"),
    "fpm": ("php8.2-fpm.service", 0, 0, "php-fpm8.2", "/usr/sbin/php-fpm8.2",
            "php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)"),
    "cron": ("cron.service", 0, 0, "cron", "/usr/sbin/cron", "/usr/sbin/CRON -f"),
    "sshd": ("ssh.service", 0, 0, "sshd", "/usr/sbin/sshd", "sshd: deploy [priv]"),
    "systemd": ("init.scope", 0, 0, "systemd", "/usr/lib/systemd/systemd", "/sbin/init"),
    "dhclient": ("ifup@eth0.service", 0, 0, "dhclient", "/usr/sbin/dhclient",
                 "/sbin/dhclient -4 -v -i -pf /run/dhclient.eth0.pid eth0"),
    "rsyslogd": ("rsyslog.service", 0, 0, "rsyslogd", "/usr/sbin/rsyslogd", "/usr/sbin/rsyslogd -n -iNONE"),
}


def journal_header(m, fmt):
    src_us = m.sec * 10 ** 6 + m.ns // 1000
    src_us -= min(37, src_us % 10 ** 6)  # _SOURCE_REALTIME_TIMESTAMP, same second
    sec, us = divmod(src_us, 10 ** 6)
    t, off = local_tm(sec)
    ident = m.ident if m.pid is None or m.kind == "kernel" else "%s[%d]" % (m.ident, m.pid)
    if fmt == "iso":
        stamp = "%04d-%02d-%02dT%02d:%02d:%02d+%02d00" % (t[:6] + (off // 3600,))
    else:
        stamp = "%s %02d %02d:%02d:%02d.%06d" % (MONTHS[t.tm_mon - 1], t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, us)
    return "%s %s %s: " % (stamp, HOST, ident), src_us


def shape_journald(scen, dest):
    msgs, boot = build_messages(scen)
    boot_id, machine_id, seqnum_id = h(scen.name, "boot", n=32), h("machine", n=32), h(scen.name, "seq", n=32)
    seq = 1 + random.Random("seq/" + scen.name).randrange(10 ** 5, 10 ** 6)
    iso, precise, js = [], [], []
    for m in msgs:
        if m.kind == "kernel":
            m.pid = None
        for fmt, out in (("iso", iso), ("precise", precise)):
            head, src_us = journal_header(m, fmt)
            lines = m.text.split("\n")
            out.append(head + lines[0] + "\n")
            out.extend(" " * len(head) + l + "\n" for l in lines[1:])
        real = m.sec * 10 ** 6 + m.ns // 1000
        mono = real - boot * 10 ** 6
        seq += 1
        xor = int(hashlib.sha256(("%d/%s" % (seq, m.text)).encode("utf-8", "surrogateescape")).hexdigest()[:16], 16)
        e = {"__CURSOR": "s=%s;i=%x;b=%s;m=%x;t=%x;x=%016x" % (seqnum_id, seq, boot_id, mono, real, xor),
             "__REALTIME_TIMESTAMP": str(real), "__MONOTONIC_TIMESTAMP": str(mono), "_BOOT_ID": boot_id}
        if m.kind == "kernel":
            e.update({"_TRANSPORT": "kernel", "PRIORITY": str(m.sev), "SYSLOG_FACILITY": "0",
                      "SYSLOG_IDENTIFIER": "kernel", "MESSAGE": m.text,
                      "_SOURCE_MONOTONIC_TIMESTAMP": str(mono - 211), "_MACHINE_ID": machine_id,
                      "_HOSTNAME": HOST})
        else:
            unit, uid, gid, comm, exe, cmd = UNITS[m.kind]
            transport = "journal" if m.kind == "systemd" else "syslog"
            e.update({"_TRANSPORT": transport, "PRIORITY": str(m.sev), "SYSLOG_FACILITY": str(m.fac),
                      "SYSLOG_IDENTIFIER": m.ident})
            if transport == "syslog" and m.kind not in ("nginx",):
                e["SYSLOG_PID"] = str(m.pid)
            if transport == "syslog":
                e["SYSLOG_TIMESTAMP"] = rfc3164_stamp(m.sec) + " "
            e.update({"MESSAGE": m.text, "_PID": str(m.pid), "_UID": str(uid), "_GID": str(gid),
                      "_COMM": comm, "_EXE": exe, "_CMDLINE": cmd,
                      "_CAP_EFFECTIVE": "0" if uid else "1ffffffffff",
                      "_SYSTEMD_CGROUP": ("/" if unit == "init.scope" else "/system.slice/") + unit,
                      "_SYSTEMD_UNIT": unit, "_SYSTEMD_SLICE": "-.slice" if unit == "init.scope" else "system.slice",
                      "_SYSTEMD_INVOCATION_ID": h(scen.name, unit, n=32), "_MACHINE_ID": machine_id,
                      "_HOSTNAME": HOST, "_SOURCE_REALTIME_TIMESTAMP": str(journal_header(m, "iso")[1])})
        js.append(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
    n = write(dest / "journal-short-iso.log", [enc(s) for s in iso])
    n += write(dest / "short-precise.log", [enc(s) for s in precise])
    n += write(dest / "journal.json", [enc(s) for s in js])
    return n + write_plain_files(scen, dest)


# ---------------------------------------------------------------- json-access

def text_unescape(v):
    """Undo nginx's default log escaping (\\xHH) into raw bytes."""
    b = enc(v)
    if b"\\x" not in b:
        return b
    return re.sub(rb"\\x([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), b)


_NGX_JSON = {c: "\\u%04x" % c for c in range(0x20)}
_NGX_JSON.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord("\b"): "\\b", ord("\f"): "\\f",
                  ord('"'): '\\"', ord("\\"): "\\\\"})


def ngx_json(v):
    """escape=json value of a text-log field: `-` (empty variable) -> empty string."""
    if v == "-":
        return ""
    return text_unescape(v).decode("utf-8", "surrogateescape").translate(_NGX_JSON)


def iso_from_local(tl):
    m = re.match(r"(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-]\d\d)(\d\d)$", tl)
    dd, mon, yy, hh, mi, ss, oh, om = m.groups()
    return "%s-%02d-%sT%s:%s:%s%s:%s" % (yy, MON[mon], dd, hh, mi, ss, oh, om)


def local_from_iso(iso):
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)([+-]\d\d):(\d\d)$", iso)
    yy, mo, dd, hh, mi, ss, oh, om = m.groups()
    return "%s/%s/%s:%s:%s:%s %s%s" % (dd, MONTHS[int(mo) - 1], yy, hh, mi, ss, oh, om)


UPCAUSE_KEYS = ["remote_addr", "remote_user", "request", "status", "body_bytes_sent", "http_referer",
                "http_user_agent", "host", "request_time", "upstream_addr", "upstream_status",
                "upstream_response_time", "upstream_connect_time", "upstream_header_time"]


def json_access_line(line, kind, iso):
    if kind == "access":
        m = UPCAUSE_RE.match(line)
        if not m:
            return None
        g = m.groupdict()
        parts = ['"time_iso8601":"%s"' % iso_from_local(g["time_local"]) if iso
                 else '"time_local":"%s"' % g["time_local"]]
        for k in UPCAUSE_KEYS:
            if k in ("status", "body_bytes_sent"):
                parts.append('"%s":%s' % (k, g[k]))
            else:
                parts.append('"%s":"%s"' % (k, ngx_json(g[k])))
        return "{" + ",".join(parts) + "}"
    m = COMBINED_RE.match(line)
    if not m:
        return None
    g = m.groupdict()
    req = g["request"].split(" ")
    if len(req) < 3:
        return None
    method, uri, proto = req[0], " ".join(req[1:-1]), req[-1]
    vals = [("@timestamp", iso_from_local(g["time_local"])), ("client_ip", g["remote_addr"]),
            ("remote_user", g["remote_user"]), ("method", method), ("uri", uri), ("protocol", proto),
            ("status", g["status"]), ("bytes", g["body_bytes_sent"]), ("referer", g["http_referer"]),
            ("user_agent", g["http_user_agent"])]
    return "{" + ",".join('"%s":"%s"' % (k, v if k in ("@timestamp",) else ngx_json(v)) for k, v in vals) + "}"


def shape_json_access(scen, dest):
    iso = scen.index % 2 == 0
    n = 0
    for src, gens in scen.files.items():
        for fname, data in gens:
            raw = (scen.dir / fname).read_bytes()
            if src in ("access", "combined"):
                out = []
                for l in split_lines(data):
                    j = json_access_line(l, src, iso)
                    if j is None:
                        print("  json-access: %s/%s: line kept as text: %.80s" % (scen.name, fname, l),
                              file=sys.stderr)
                        j = l
                    out.append(enc(j) + b"\n")
                body = b"".join(out)
                if fname.endswith(".gz"):
                    body = gzip.compress(body, mtime=0)
                n += write(dest / fname, body)
            else:
                n += write(dest / fname, raw)
    return n


# ---------------------------------------------------------------- compression

def compressed_name(fname, ext):
    m = FILE_RE.match(fname)
    base, num, date = m.group(1), m.group(2), m.group(3)
    if date:
        return "%s-%s.%s" % (base, date, ext)
    if num:
        return "%s.%d.%s" % (base, int(num) + 1, ext)
    return "%s.1.%s" % (base, ext)


def halves(data):
    mid = data.find(b"\n", len(data) // 2)
    if mid < 0 or mid + 1 >= len(data):
        return [data]
    return [data[:mid + 1], data[mid + 1:]]


def compress(codec, data):
    if codec == "xz":
        return lzma.compress(data)
    if codec == "bz2":
        return bz2.compress(data, 9)
    return subprocess.run(["zstd", "-q", "-3", "-c", "--no-progress"], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def shape_compressed(scen, dest, codec):
    allf = [(fname, data) for gens in scen.files.values() for fname, data in gens]
    biggest = max(allf, key=lambda x: len(x[1]))[0] if allf else None
    n = 0
    for fname, data in allf:
        parts = halves(data) if fname == biggest else [data]
        n += write(dest / compressed_name(fname, codec), b"".join(compress(codec, p) for p in parts))
    return n


# ---------------------------------------------------------------- driver

def run_shape(shape, scen, dest):
    if shape == "docker-json":
        return shape_docker_json(scen, dest, 16384)
    if shape == "docker-json-split":
        return shape_docker_json(scen, dest, 200)
    if shape == "cri":
        return shape_cri(scen, dest, None)
    if shape == "cri-split":
        return shape_cri(scen, dest, 200)
    if shape == "compose":
        return shape_compose(scen, dest)
    if shape == "docker-t":
        return shape_docker_t(scen, dest)
    if shape in ("syslog", "syslog-rfc3339", "syslog-5424"):
        return shape_syslog(scen, dest, shape)
    if shape == "journald":
        return shape_journald(scen, dest)
    if shape == "json-access":
        return shape_json_access(scen, dest)
    return shape_compressed(scen, dest, shape)


# ---------------------------------------------------------------- self-check (unwrap)

def is_upcause(l):
    return UPCAUSE_RE.match(l) is not None


def is_access(l):
    return is_upcause(l) or COMBINED_RE.match(l) is not None


def demux_nginx(lines, errors_only=False):
    """Split an nginx stream (no stream tags) into access / combined / error lines."""
    out = {"access": [], "combined": [], "error": []}
    for l in lines:
        if not errors_only and is_upcause(l):
            out["access"].append(l)
        elif not errors_only and COMBINED_RE.match(l):
            out["combined"].append(l)
        else:
            out["error"].append(l)
    return out


def demux_fpm(lines):
    """Split a php-fpm stream into master-log, slow-log and PHP error-log lines (slow block = blank +
    header + body; PHP record = `[stamp zone]` line + the following lines up to the next FPM stamp,
    PHP stamp, slow header or the blank line before one)."""
    out = {"fpm": [], "slow": [], "php": []}
    in_block = in_php = False
    for i, l in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if PHP_STAMP.match(l):
            in_php, in_block = True, False
            out["php"].append(l)
            continue
        if in_php and not (FPM_STAMP.match(l) or SLOW_HEADER.match(l)
                           or (l == "" and nxt is not None and SLOW_HEADER.match(nxt))):
            out["php"].append(l)
            continue
        in_php = False
        if SLOW_HEADER.match(l):
            in_block = True
            out["slow"].append(l)
        elif l == "":
            if nxt is not None and SLOW_HEADER.match(nxt):
                out["slow"].append(l)
            else:
                out["fpm"].append(l)
            in_block = False
        elif in_block and (l.startswith("script_filename = ") or l.startswith("[0x") or l.startswith("+++ ")):
            out["slow"].append(l)
        else:
            in_block = False
            out["fpm"].append(l)
    return out


def merge_into(acc, part):
    for k, v in part.items():
        acc.setdefault(k, []).extend(v)


def fpm_norm(line):
    return re.sub(r"^(\[[^\]]+?)\.\d{6}\]", r"\1.??????]", line)


def fpm_unsyslog(sec, pid, msg, debug):
    m = re.match(r"^\[(DEBUG|NOTICE|WARNING|ERROR|ALERT)\] (.*)$", msg, re.S)
    if not m:
        return msg
    t, _ = local_tm(sec)
    stamp = "[%02d-%s-%04d %02d:%02d:%02d" % (t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)
    if debug:
        return "%s.??????] %s: pid %d, %s" % (stamp, m.group(1), pid, m.group(2))
    return "%s] %s: %s" % (stamp, m.group(1), m.group(2))


def read_text_lines(p):
    return split_lines(p.read_bytes())


def parse_rfc3339(s):
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)$", s)
    assert m, "bad timestamp %r" % s
    y, mo, d, hh, mi, ss, frac, z = m.groups()
    sec = calendar.timegm((int(y), int(mo), int(d), int(hh), int(mi), int(ss)))
    if z != "Z":
        zz = z.replace(":", "")
        sec -= (int(zz[1:3]) * 3600 + int(zz[3:5]) * 60) * (1 if zz[0] == "+" else -1)
    return sec, int((frac or "0").ljust(9, "0"))


def php_sec_independent(line):
    """A PHP stamp's UTC second without zoneinfo (Europe/Berlin by the built-in EU rules, UTC and
    +hh:mm by arithmetic), so --check catches a wrong zone conversion in line_sec; None otherwise."""
    m = PHP_STAMP.match(line)
    if not m:
        return None
    dd, mon, yy, hh, mi, ss, zone = m.groups()
    t = (int(yy), MON[mon], int(dd), int(hh), int(mi), int(ss))
    if zone == "Europe/Berlin":
        return local_to_utc(*t)
    o = re.match(r"^(?:UTC|GMT|Z)$|^([+-])(\d\d):?(\d\d)$", zone)
    if not o:
        return line_sec("php", line)
    off = 0
    if o.group(1):
        off = (int(o.group(2)) * 3600 + int(o.group(3)) * 60) * (1 if o.group(1) == "+" else -1)
    return calendar.timegm(t) - off


def check_times(pairs, errs, label):
    """pairs: (envelope utc sec, inner line, src). The envelope second must equal the line's stamp."""
    for sec, line, src in pairs:
        own = php_sec_independent(line) if src == "php" else line_sec(src, line)
        if own is not None and own != sec:
            errs.append("%s: envelope second %d != stamp second %d: %.80s" % (label, sec, own, line))
            return


def unwrap_syslog_family(path, variant, debug):
    """-> (per-source lines, [(utc sec, line, src)]) of a syslog / rfc3339 / 5424 file."""
    got, times = {}, []
    other = {"CRON", "sshd", "systemd", "kernel", "dhclient", "rsyslogd"}
    year = None
    for l in read_text_lines(path):
        if variant == "syslog":
            m = re.match(r"^([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\S+) ([^\s\[:]+)(?:\[(\d+)\])?: (.*)$", l, re.S)
            assert m, "bad syslog line %r" % l
            mon, dd, hh, mi, ss, host, ident, pid, text = m.groups()
            year = year or 2026
            sec = local_to_utc(year, MON[mon], int(dd), int(hh), int(mi), int(ss))
        elif variant == "syslog-rfc3339":
            m = re.match(r"^(\S+) (\S+) ([^\s\[:]+)(?:\[(\d+)\])?: (.*)$", l, re.S)
            assert m, "bad rfc3339 line %r" % l
            ts, host, ident, pid, text = m.groups()
            sec = parse_rfc3339(ts)[0]
        else:
            m = re.match(r"^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) - - (.*)$", l, re.S)
            assert m, "bad 5424 line %r" % l
            pri, ts, host, ident, pid, text = m.groups()
            pid = None if pid == "-" else pid
            sec = parse_rfc3339(ts)[0]
        assert host == HOST
        text = re.sub(r"#(0[0-3][0-7])", lambda mm: chr(int(mm.group(1), 8)), text)
        if ident == "nginx":
            if ERROR_STAMP.match(text):
                parts = text.split("\n")
                merge_into(got, {"error": parts})
                times.append((sec, parts[0], "error"))
            else:
                src = "access" if is_upcause(text) else "combined"
                merge_into(got, {src: [text]})
                times.append((sec, text, src))
        elif ident == "php-fpm":
            merge_into(got, {"fpm": [fpm_unsyslog(sec, int(pid), text, debug)]})
        else:
            assert ident in other, "unknown ident %r" % ident
    return got, times


def unwrap_journal_short(path, fmt):
    got = {}
    msgs = []
    head_re = (re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}) (\S+) ([^\s\[:]+)(?:\[(\d+)\])?: ")
               if fmt == "iso" else
               re.compile(r"^([A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d\.\d{6}) (\S+) ([^\s\[:]+)(?:\[(\d+)\])?: "))
    for l in read_text_lines(path):
        m = head_re.match(l)
        if m and not l.startswith(" "):
            msgs.append([m.group(1), m.group(3), m.group(4), [l[m.end():]], m.end()])
        else:
            width = msgs[-1][4]
            assert l[:width] == " " * width, "bad continuation %r" % l
            msgs[-1][3].append(l[width:])
    return msgs, got


def route_journal(stamp, ident, pid, text_lines, debug, got, fmt):
    if ident == "nginx":
        text = text_lines[0]
        if ERROR_STAMP.match(text):
            merge_into(got, {"error": text_lines})
        else:
            assert len(text_lines) == 1
            merge_into(got, {"access" if is_upcause(text) else "combined": text_lines})
    elif ident == "php-fpm":
        if fmt == "iso":
            sec = local_to_utc(*map(int, re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)", stamp).groups()))
        elif fmt == "precise":
            m = re.match(r"([A-Z][a-z]{2}) (\d\d) (\d\d):(\d\d):(\d\d)", stamp)
            sec = local_to_utc(2026, MON[m.group(1)], *map(int, m.groups()[1:]))
        else:
            sec = stamp
        merge_into(got, {"fpm": [fpm_unsyslog(sec, int(pid), "\n".join(text_lines), debug)]})


def expected(scen, syslogish):
    exp = {k: list(v) for k, v in scen.lines.items()}
    if syslogish:
        for src in PLAIN_FILES:
            exp.pop(src, None)
        if "fpm" in exp:
            exp["fpm"] = [fpm_norm(l) for l in exp["fpm"]]
    return exp


def compare(exp, got, label, errs):
    for src in sorted(set(exp) | set(got)):
        a, b = exp.get(src, []), got.get(src, [])
        if a != b:
            i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            errs.append("%s: source %s differs at line %d (%d vs %d lines): want %.100r got %.100r"
                        % (label, src, i, len(a), len(b), a[i] if i < len(a) else None, b[i] if i < len(b) else None))


def check_plain_files(scen, dest, label, errs):
    """www-slow.log / php-error.log next to syslog and the journal: the source's lines verbatim."""
    for src, fname in PLAIN_FILES.items():
        p = dest / fname
        if src not in scen.lines:
            if p.exists():
                errs.append("%s: unexpected %s" % (label, fname))
        elif not p.exists() or read_text_lines(p) != scen.lines[src]:
            errs.append("%s: %s differs" % (label, fname))


def check_shape(shape, scen, dest):
    errs = []
    label = "%s/%s" % (shape, scen.name)
    if shape in ("docker-json", "docker-json-split"):
        limit = 16384 if shape == "docker-json" else 200
        got, times = {}, []
        for name, routes, _ in containers(scen):
            cid = h(scen.name, name)
            streams, cur, last = {"stdout": [], "stderr": []}, {}, None
            for raw in (dest / "containers" / cid / (cid + "-json.log")).read_bytes().split(b"\n")[:-1]:
                obj = json.loads(raw)
                assert list(obj) == ["log", "stream", "time"], raw
                piece = enc(obj["log"])
                assert len(piece.rstrip(b"\n")) <= limit
                assert raw.decode("utf-8", "surrogateescape").count("\\u003c") == obj["log"].count("<")
                assert "\\t" not in raw.decode("utf-8", "surrogateescape")
                sec, ns = parse_rfc3339(obj["time"])
                assert not re.search(r"\.\d*0Z$", obj["time"]), obj["time"]
                if last is not None and (sec, ns) < last and sec == last[0]:
                    errs.append("%s: time not increasing within a second: %s" % (label, obj["time"]))
                last = (sec, ns)
                buf = cur.setdefault(obj["stream"], [b"", sec])
                buf[0] += piece
                if piece.endswith(b"\n"):
                    line = buf[0][:-1].decode("utf-8", "surrogateescape")
                    streams[obj["stream"]].append(line)
                    times.append((buf[1], line, None))
                    del cur[obj["stream"]]
            assert not cur, "unterminated partial record"
            if name == "nginx":
                merge_into(got, demux_nginx(streams["stdout"]))
                merge_into(got, {"error": streams["stderr"]})
                times = [(s, l, "error" if ERROR_STAMP.match(l) else ("access" if is_access(l) else None))
                         for s, l, _ in times]
            else:
                merge_into(got, demux_fpm(streams["stderr"]))
                times = [(s, l, src or ("fpm" if FPM_STAMP.match(l) else "php" if PHP_STAMP.match(l) else None))
                         for s, l, src in times]
        check_times([t for t in times if t[2]], errs, label)
        compare(expected(scen, False), got, label, errs)
    elif shape in ("cri", "cri-split"):
        got, times = {}, []
        for name, routes, _ in containers(scen):
            streams, cur = {"stdout": [], "stderr": []}, {}
            for raw in (dest / pod_dir(scen) / name / "0.log").read_bytes().split(b"\n")[:-1]:
                m = re.match(rb"^(\S+) (stdout|stderr) ([PF]) (.*)$", raw, re.S)
                assert m, raw
                ts, stream, tag, content = m.group(1).decode(), m.group(2).decode(), m.group(3), m.group(4)
                if shape == "cri":
                    assert tag == b"F"
                else:
                    assert len(content) <= 200
                sec, _ = parse_rfc3339(ts)
                buf = cur.setdefault(stream, [b"", sec])
                buf[0] += content
                if tag == b"F":
                    line = buf[0].decode("utf-8", "surrogateescape")
                    streams[stream].append(line)
                    src = ("error" if ERROR_STAMP.match(line) else "access" if is_access(line)
                           else "fpm" if FPM_STAMP.match(line) and not SLOW_HEADER.match(line)
                           else "php" if PHP_STAMP.match(line) else None)
                    times.append((buf[1], line, src))
                    del cur[stream]
            assert not cur
            if name == "nginx":
                merge_into(got, demux_nginx(streams["stdout"]))
                merge_into(got, {"error": streams["stderr"]})
            else:
                merge_into(got, demux_fpm(streams["stderr"]))
        check_times([t for t in times if t[2]], errs, label)
        compare(expected(scen, False), got, label, errs)
    elif shape == "compose":
        per = {"nginx-1": [], "php-fpm-1": []}
        for l in read_text_lines(dest / "compose.log"):
            m = re.match(r"^(nginx-1|php-fpm-1) +\| (.*)$", l, re.S)
            assert m and m.start(2) == 13, l
            per[m.group(1)].append(m.group(2))
        got = {}
        merge_into(got, demux_nginx(per["nginx-1"]))
        merge_into(got, demux_fpm(per["php-fpm-1"]))
        got = {k: v for k, v in got.items() if v}
        compare(expected(scen, False), got, label, errs)
    elif shape == "docker-t":
        got, times = {}, []
        for name, _, _ in containers(scen):
            lines = []
            for l in read_text_lines(dest / (name + ".log")):
                m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$", l, re.S)
                assert m, l
                lines.append(m.group(2))
                src = ("error" if ERROR_STAMP.match(m.group(2)) else "access" if is_access(m.group(2))
                       else "php" if PHP_STAMP.match(m.group(2)) else None)
                times.append((parse_rfc3339(m.group(1))[0], m.group(2), src))
            merge_into(got, demux_nginx(lines) if name == "nginx" else demux_fpm(lines))
        got = {k: v for k, v in got.items() if v}
        check_times([t for t in times if t[2]], errs, label)
        compare(expected(scen, False), got, label, errs)
    elif shape in ("syslog", "syslog-rfc3339", "syslog-5424"):
        got, times = unwrap_syslog_family(dest / "syslog", shape, scen.fpm_debug)
        check_times(times, errs, label)
        compare(expected(scen, True), got, label, errs)
        check_plain_files(scen, dest, label, errs)
    elif shape == "journald":
        for fname, fmt in (("journal-short-iso.log", "iso"), ("short-precise.log", "precise")):
            msgs, got = unwrap_journal_short(dest / fname, fmt)
            for stamp, ident, pid, lines, _ in msgs:
                route_journal(stamp, ident, pid, lines, scen.fpm_debug, got, fmt)
            compare(expected(scen, True), got, "%s[%s]" % (label, fname), errs)
        got = {}
        last = 0
        for raw in read_text_lines(dest / "journal.json"):
            e = json.loads(raw)
            assert list(e)[:4] == ["__CURSOR", "__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP", "_BOOT_ID"]
            real = int(e["__REALTIME_TIMESTAMP"])
            assert real >= last, "journal not in time order"
            last = real
            if e["SYSLOG_IDENTIFIER"] == "kernel":
                continue
            assert e["_SYSTEMD_UNIT"] and e["_PID"] and e["_HOSTNAME"] == HOST
            route_journal(real // 10 ** 6, e["SYSLOG_IDENTIFIER"], e["_PID"], e["MESSAGE"].split("\n"),
                          scen.fpm_debug, got, "json")
        compare(expected(scen, True), got, "%s[journal.json]" % label, errs)
        check_plain_files(scen, dest, label, errs)
    elif shape == "json-access":
        for src, gens in scen.files.items():
            for fname, data in gens:
                out = read_bytes(dest / fname)
                if src not in ("access", "combined"):
                    if out != data:
                        errs.append("%s: %s changed" % (label, fname))
                    continue
                back = []
                for l in split_lines(out):
                    o = json.loads(l)
                    if src == "access":
                        keys = list(o)
                        assert keys[0] in ("time_iso8601", "time_local") and keys[1:] == UPCAUSE_KEYS, keys
                        assert isinstance(o["status"], int) and isinstance(o["body_bytes_sent"], int)
                        tl = o.get("time_local") or local_from_iso(o["time_iso8601"])
                        d = {k: ("-" if o[k] == "" else str(o[k])) for k in UPCAUSE_KEYS}
                        back.append('%s - %s [%s] "%s" %s %s "%s" "%s" host=%s rt=%s uaddr="%s" ustatus="%s" '
                                    'urt="%s" uct="%s" uht="%s"' % (
                                        d["remote_addr"], d["remote_user"], tl, d["request"], d["status"],
                                        d["body_bytes_sent"], d["http_referer"], d["http_user_agent"], d["host"],
                                        d["request_time"], d["upstream_addr"], d["upstream_status"],
                                        d["upstream_response_time"], d["upstream_connect_time"],
                                        d["upstream_header_time"]))
                    else:
                        assert isinstance(o["status"], str)
                        d = {k: ("-" if v == "" else v) for k, v in o.items()}
                        back.append('%s - %s [%s] "%s %s %s" %s %s "%s" "%s"' % (
                            d["client_ip"], d["remote_user"], local_from_iso(o["@timestamp"]), d["method"],
                            d["uri"], d["protocol"], d["status"], d["bytes"], d["referer"], d["user_agent"]))
                    assert "\\/" not in l
                compare({fname: split_lines(data)}, {fname: back}, label, errs)
    else:
        for gens in scen.files.values():
            for fname, data in gens:
                p = dest / compressed_name(fname, shape)
                raw = p.read_bytes()
                if shape == "xz":
                    back = lzma.decompress(raw)
                elif shape == "bz2":
                    back = bz2.decompress(raw)
                else:
                    back = subprocess.run(["zstd", "-q", "-d", "-c"], input=raw, stdout=subprocess.PIPE,
                                          check=True).stdout
                if back != data:
                    errs.append("%s: %s does not decompress to the original" % (label, p.name))
    return errs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--scenario", action="append", default=[])
    ap.add_argument("--shape", action="append", default=[])
    ap.add_argument("--check", action="store_true", help="unwrap every written shape and compare with the originals")
    args = ap.parse_args()
    all_scen = sorted(p.name for p in REAL.iterdir() if (p / "labels.tsv").is_file())
    for s in args.scenario:
        if s not in all_scen:
            ap.error("unknown scenario %r" % s)
    for s in args.shape:
        if s not in SHAPES:
            ap.error("unknown shape %r (shapes: %s)" % (s, ", ".join(SHAPES)))
    names = [s for s in all_scen if not args.scenario or s in args.scenario]
    shapes = [s for s in SHAPES if not args.shape or s in args.shape]
    if "zst" in shapes and shutil.which("zstd") is None:
        print("zst: skipped, the `zstd` command is not installed (Debian package zstd)")
        shapes.remove("zst")
    scens = [Scenario(n, all_scen.index(n)) for n in names]
    failures = 0
    for shape in shapes:
        total = files = 0
        for scen in scens:
            dest = args.outdir / shape / scen.name
            if dest.exists():
                shutil.rmtree(dest)
            scen.copy_tsv(dest)
            total += run_shape(shape, scen, dest)
            files += sum(1 for p in dest.rglob("*") if p.is_file() and not p.name.endswith(".tsv"))
        line = "%-18s %2d scenarios, %4d files, %9d bytes" % (shape, len(scens), files, total)
        if args.check:
            errs = [e for scen in scens for e in check_shape(shape, scen, args.outdir / shape / scen.name)]
            failures += len(errs)
            line += ", check " + ("ok" if not errs else "FAILED (%d)" % len(errs))
            for e in errs[:10]:
                print("  " + e, file=sys.stderr)
        print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
