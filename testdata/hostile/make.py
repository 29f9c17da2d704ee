#!/usr/bin/env python3
"""Writes the hostile-input fixtures of testdata/hostile/ (deterministic; re-run to regenerate).

Each directory is one case; tests/it/hostile.rs analyses each and checks the documented
behaviour (README "Hostile input"). Cases that need the file system at run time (unreadable
files, symlink loops, duplicates, files changing while read) are built by the test itself.
"""
import gzip, io, os, random, shutil, zlib

here = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(7)

def access(i, status=200, ts="22/Nov/2026:03:41:07 +0100", ua="curl/8.5.0", uri=None):
    uri = uri or f"/p.php?rid=h-{i:04d}"
    return f'10.0.0.{i % 250} - - [{ts}] "GET {uri} HTTP/1.1" {status} 12 "-" "{ua}"\n'

def error(i, ts="2026/11/22 03:41:07", msg="connect() failed (111: Connection refused) while connecting to upstream"):
    return (f'{ts} [error] 7#7: *{i} {msg}, client: 10.0.0.{i % 250}, server: h.test, '
            f'request: "GET /p.php?rid=h-{i:04d} HTTP/1.1", upstream: "http://127.0.0.1:8080/p.php?rid=h-{i:04d}", host: "h.test"\n')

def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)

def case(name):
    d = os.path.join(here, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d

def w(path, data):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# gzip: truncated mid-member; corrupt member in the middle; wrong names; empty files.
d = case("gzip")
body = "".join(access(i, 502 if i % 10 == 0 else 200) for i in range(4000)).encode()
full = gz(body)
w(f"{d}/truncated.access.log.2.gz", full[: len(full) * 2 // 3])
m1, m2, m3 = (gz("".join(access(i) for i in range(k, k + 1500)).encode()) for k in (0, 1500, 3000))
m2 = bytearray(m2)
for j in range(len(m2) // 3, len(m2) // 3 + 40):
    m2[j] ^= 0xA5
w(f"{d}/corrupt-middle.access.log.3.gz", m1 + bytes(m2) + m3)
w(f"{d}/plain-named.access.log.4.gz", "".join(access(i) for i in range(100)))
w(f"{d}/gzip-named.access.log.5", gz("".join(access(i) for i in range(100)).encode()))
w(f"{d}/empty.access.log", b"")
w(f"{d}/empty.error.log.1.gz", b"")

# NUL runs from copytruncate: at the start (the hole before new data) and in the middle.
d = case("nul")
lines = [access(i) for i in range(50)]
w(f"{d}/access.log", b"\0" * 4096 + "".join(lines[:25]).encode() + b"\0" * 1000 + "".join(lines[25:]).encode())
w(f"{d}/error.log", b"\0" * 512 + "".join(error(i) for i in range(10)).encode())

# Line ends and lengths: CRLF, no final newline, a line of several MB, invalid UTF-8.
d = case("lines")
w(f"{d}/crlf.error.log", "".join(error(i) for i in range(20)).replace("\n", "\r\n"))
w(f"{d}/nofinal.access.log", "".join(access(i, 502) for i in range(10)).rstrip("\n"))
# (The line of several MB is written by the test itself, to keep the repository small.)
bad = "".join(access(i, 502, ua="Mozilla\udcff") for i in range(5)).encode("utf-8", "surrogateescape")
bad += b'10.0.0.9 - - [22/Nov/2026:03:41:07 +0100] "GET /\xe9t\xe9\xff?rid=h-0009 HTTP/1.1" 502 1 "-" "\xc3\x28"\n'
w(f"{d}/badutf8.access.log", bad)

# A binary file among the logs.
d = case("binary")
w(f"{d}/blob.log", bytes(rng.randrange(256) for _ in range(20000)))
w(f"{d}/access.log", "".join(access(i) for i in range(20)))

# Clocks: lines out of order, a clock stepped back, a year change, a daylight-saving change
# (naive stamps in Europe/Berlin repeat 02:00-02:59 on 2026-10-25), a skewed error log.
d = case("clock")
acc = [access(1, 502, "22/Nov/2026:03:41:09 +0100"), access(2, 502, "22/Nov/2026:03:41:05 +0100"),
       access(3, 502, "22/Nov/2026:03:41:07 +0100"), access(4, 502, "22/Nov/2026:03:40:07 +0100")]
err = [error(1, "2026/11/22 03:41:09"), error(2, "2026/11/22 03:41:05"), error(3, "2026/11/22 03:41:07"),
       error(4, "2026/11/22 03:40:07")]
w(f"{d}/order.access.log", "".join(acc))
w(f"{d}/order.error.log", "".join(err))
w(f"{d}/newyear.access.log", access(11, 502, "31/Dec/2026:23:59:59 +0100") + access(12, 502, "01/Jan/2027:00:00:01 +0100"))
w(f"{d}/newyear.error.log", error(11, "2026/12/31 23:59:59") + error(12, "2027/01/01 00:00:01"))
# Skew: this error log's clock runs 2 s ahead of the access log's.
w(f"{d}/skew.access.log", "".join(access(i, 502, "22/Nov/2026:05:00:10 +0100") for i in range(21, 26)))
w(f"{d}/skew.error.log", "".join(error(i, "2026/11/22 05:00:12") for i in range(21, 26)))
d = case("dst")
# 2026-10-25 in Berlin the wall clock runs 02:00-02:59 twice: first CEST (+02:00), then CET.
# The error log's naive stamps must be read with the offset that keeps them in order.
walls = [("02:30:00", "+0200"), ("02:59:00", "+0200"), ("02:10:00", "+0100"), ("02:30:00", "+0100")]
w(f"{d}/access.log", "".join(access(31 + k, 502, f"25/Oct/2026:{t} {o}") for k, (t, o) in enumerate(walls)))
w(f"{d}/error.log", "".join(error(31 + k, f"2026/10/25 {t}") for k, (t, _) in enumerate(walls)))
# zstd, xz and bzip2 (issue 13): truncated mid-stream, a corrupt frame between two good ones,
# a zstd file under a .gz name, and a compressor upcause does not read (lz4, by its magic).
import bz2, lzma, subprocess
def zst(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-3", "-c"], input=data, capture_output=True, check=True).stdout
codecs = {"zst": zst, "xz": lambda d: lzma.compress(d, preset=6), "bz2": lambda d: bz2.compress(d, 9)}
d = case("codecs")
for n, (sfx, comp) in enumerate(codecs.items()):
    body = "".join(access(i, 502 if i % 10 == 0 else 200) for i in range(6000)).encode()
    full = comp(body)
    w(f"{d}/truncated.access.log.{n + 2}.{sfx}", full[: len(full) * 2 // 3])
    m1, m2, m3 = (comp("".join(access(i) for i in range(k, k + 1500)).encode()) for k in (0, 1500, 3000))
    m2 = bytearray(m2)
    for j in range(len(m2) // 3, len(m2) // 3 + 40):
        m2[j] ^= 0xA5
    w(f"{d}/corrupt-middle.access.log.{n + 5}.{sfx}", m1 + bytes(m2) + m3)
w(f"{d}/zstd-named.access.log.9.gz", zst("".join(access(i) for i in range(100)).encode()))
w(f"{d}/packed.access.log.10.lz4", bytes([0x04, 0x22, 0x4d, 0x18]) + b"\x64\x40\xa7" + b"x" * 64)

# Stamps far from the rest (issue 12): 100 failing requests with their error lines on
# 2026-11-20 14:00, plus one access line stamped 1970 and one stamped 9999.
d = case("farstamp")
acc = [access(i, 502, f"20/Nov/2026:14:00:{i % 60:02d} +0000") for i in range(100)]
acc.insert(40, access(100, 200, "01/Jan/1970:00:00:01 +0000"))
acc.insert(70, access(101, 502, "31/Dec/9999:23:59:59 +0000"))
w(f"{d}/access.log", "".join(acc))
w(f"{d}/error.log", "".join(error(i, f"2026/11/20 14:00:{i % 60:02d}") for i in range(100)))
print("wrote testdata/hostile/")
