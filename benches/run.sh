#!/usr/bin/env bash
# End-to-end benchmark (README "Performance"). Generates the deterministic corpus, then measures,
# alternating and taking medians of RUNS rounds, whole processes:
#   floor probe (inflate + newline count of every file, upcause's decoder, 1 and 2 threads;
#   flate2's default backend miniz_oxide, 2 threads; ISA-L, 2 threads, when it builds: see
#   below), `rg -z -c` (502/504 lines in the access logs,
#   and "upstream" everywhere), `zcat -f | wc -l`, and `upcause analyze` writing every report
#   (2 threads, 1 thread). Prints wall, CPU, peak RSS, MB/s and the ratio to the floor, then checks
#   upcause's counts against the generator's ground truth (exit 1 on a mismatch).
#
# Then the plain-text path: 1 GiB of cached plain access log (one rotated file, memory-mapped),
# `upcause analyze` on 1 and 2 threads against `wc -l` and `rg -c`.
#
#   benches/run.sh                      # 2 GiB corpus in bench-corpus/, 3 rounds
#   SIZE_MB=8192 DIR=bench-8g benches/run.sh
#   PLAIN=0 benches/run.sh              # skip the plain-text part (MAIN=0: only it)
#   QUIET=1 DIR=bench-quiet benches/run.sh   # the quiet error log of the first fixtures
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-2048}
RUNS=${RUNS:-3}
DIR=${DIR:-bench-corpus}
OUT=${OUT:-/tmp/upcause-bench-out}
need=()
command -v rg >/dev/null || need+=(ripgrep)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
cargo build --release -q --example gen_corpus
# The floor probe with ISA-L too when it builds here (cargo feature `isal`: autotools and nasm,
# README "Performance"); the analysis itself is the default build (zlib-rs) either way.
ISAL=0
if cargo build --release -q --example floor_probe --no-default-features --features isal 2> /tmp/upcause-isal-build.log; then
  ISAL=1
else
  echo "ISA-L does not build here (see /tmp/upcause-isal-build.log): floor with zlib-rs only" >&2
  cargo build --release -q --example floor_probe
fi
cargo build --release -q
# QUIET=1: the error log of the first fixtures (few lines besides the failures) instead of the
# production-like noisy default.
NOISY=$([ "${QUIET:-0}" = 1 ] && echo False || echo True)
have=$(python3 -c "import json,sys;t=json.load(open(sys.argv[1]));print(t['size_mb'], t.get('noisy'))" "$DIR/truth.json" 2>/dev/null || true)
if [ "$have" != "$SIZE_MB $NOISY" ]; then
  rm -rf "$DIR"
  echo "generating ${SIZE_MB} MB corpus in $DIR ..." >&2
  target/release/examples/gen_corpus "$DIR" "$SIZE_MB" 42 $([ "$NOISY" = False ] && echo --quiet)
fi
FMT=$(python3 -c "import json;print(json.load(open('$DIR/truth.json'))['shop_format'])")
BYTES=$(target/release/examples/floor_probe "$DIR" 2 upcause | cut -d' ' -f2)
DISK=$(du -cb "$DIR"/*.log* | tail -1 | cut -f1)
sync
# Warm the page cache once: every measurement reads cached files.
cat "$DIR"/*.log* > /dev/null

# RUNS alternating rounds over the commands named in array $2 (commands in associative array
# $3); appends "name wall_s user_s sys_s maxrss_kb" per process to file $1. Exit code 2 (upcause:
# some input had a problem) is not a failure.
measure() {
  local res=$1
  local -n names=$2 cmds=$3
  for r in $(seq "$RUNS"); do
    export ROUND=$r
    for n in "${names[@]}"; do
      t=$(mktemp)
      /usr/bin/time -f "%e %U %S %M" -o "$t" bash -c "${cmds[$n]}" || { c=$?; [ "$c" -eq 2 ] || { echo "$n failed ($c)" >&2; exit 1; }; }
      echo "$n $(cat "$t")" >> "$res"
      rm -f "$t"
    done
  done
}

if [ "${MAIN:-1}" = 1 ]; then
declare -A CMD
NAMES=(floor_upcause_2t floor_upcause_1t floor_miniz_2t rg_502_504 rg_upstream zcat_wc upcause_2t upcause_1t)
CMD[floor_upcause_2t]="target/release/examples/floor_probe $DIR 2 upcause"
CMD[floor_upcause_1t]="target/release/examples/floor_probe $DIR 1 upcause"
CMD[floor_miniz_2t]="target/release/examples/floor_probe $DIR 2 miniz"
if [ "$ISAL" = 1 ]; then
  NAMES=(floor_upcause_2t floor_isal_2t floor_upcause_1t floor_isal_1t "${NAMES[@]:2}")
  CMD[floor_isal_2t]="target/release/examples/floor_probe $DIR 2 isal"
  CMD[floor_isal_1t]="target/release/examples/floor_probe $DIR 1 isal"
fi
CMD[rg_502_504]="rg -z -c -j 2 ' 50[24] ' $DIR/shop.access.log* $DIR/api.access.log* > /dev/null"
CMD[rg_upstream]="rg -z -c -j 2 upstream $DIR > /dev/null"
CMD[zcat_wc]="zcat -f $DIR/*.log* | wc -l > /dev/null"
# Each round keeps its own memory figures ($ROUND): the report gives their median.
rm -f "$OUT".mem* "$OUT".tim*
# The 2-thread rounds also print their phases (UPCAUSE_TIMINGS, a few reads of /proc a phase):
# the tail after the scan is the wall time less the discovery and the scan (issue 16: about
# 0.1 s plus time proportional to the failures).
CMD[upcause_2t]="UPCAUSE_MEMSTATS=$OUT.mem2.\$ROUND UPCAUSE_TIMINGS=1 target/release/upcause analyze $DIR --log-format 'shop.access.log*=$FMT' --out $OUT -q -j 2 2> $OUT.tim2.\$ROUND"
CMD[upcause_1t]="UPCAUSE_MEMSTATS=$OUT.mem1.\$ROUND target/release/upcause analyze $DIR --log-format 'shop.access.log*=$FMT' --out $OUT -q -j 1"
res=$(mktemp)
measure "$res" NAMES CMD
python3 - "$res" "$BYTES" "$DISK" "$SIZE_MB" "$OUT" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for l in open(sys.argv[1]):
    n, e, u, s, m = l.split()
    rows[n].append((float(e), float(u) + float(s), int(m)))
bytes_out, disk, size = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def med(n, k): return statistics.median(x[k] for x in rows[n])
floor = max(med("floor_upcause_2t", 0), 0.005)
print(f"corpus: {size} MB requested, {bytes_out/2**20:.0f} MiB decompressed, {disk/2**20:.0f} MiB on disk; medians of {len(rows['upcause_2t'])} rounds")
print(f"{'command':<18} {'wall s':>7} {'CPU s':>7} {'peak RSS MiB':>12} {'MB/s':>8} {'x floor':>8}")
for n in rows:
    w, c, m = max(med(n, 0), 0.005), med(n, 1), med(n, 2)
    print(f"{n:<18} {w:7.2f} {c:7.2f} {m/1024:12.0f} {bytes_out/1e6/w:8.0f} {w/floor:8.2f}")
if "floor_isal_2t" in rows:
    for t in ("2", "1"):
        z, i = med(f"floor_upcause_{t}t", 0), med(f"floor_isal_{t}t", 0)
        print(f"floor with ISA-L, {t} thread(s): {i:.2f} s against {z:.2f} s with zlib-rs ({z / max(i, 0.005):.2f}x)")
import glob, re
for t in ("2", "1"):
    figs = []
    for f in sorted(glob.glob(sys.argv[5] + ".mem" + t + ".*")):
        m = re.search(r"peak RSS (\d+) MiB \(anonymous (\d+) MiB, file-backed (\d+) MiB", open(f).read())
        if m:
            figs.append(tuple(int(x) for x in m.groups()))
    if figs:
        peak, anon, file = (statistics.median(x[k] for x in figs) for k in range(3))
        rounds = ", ".join(str(x[1]) for x in figs)
        print(f"upcause_{t}t memory (sampled every 10 ms, median of {len(figs)} rounds): peak RSS {peak:.0f} MiB, "
              f"anonymous {anon:.0f} MiB (rounds: {rounds}), file-backed {file:.0f} MiB")
# The tail: each 2-thread round's wall time less its discovery and scan (UPCAUSE_TIMINGS).
tails, scans = [], []
for r, (wall, _, _) in enumerate(rows["upcause_2t"], 1):
    try:
        text = open(f"{sys.argv[5]}.tim2.{r}").read()
    except OSError:
        continue
    d = re.search(r"^upcause: discover: ([0-9.]+) s", text, re.M)
    sc = re.search(r"^upcause: scan: ([0-9.]+) s", text, re.M)
    if d and sc:
        scans.append(float(sc.group(1)))
        tails.append(wall - float(d.group(1)) - float(sc.group(1)))
if tails:
    print(f"upcause_2t phases (median of {len(tails)} rounds): scan {statistics.median(scans):.2f} s, "
          f"tail after it {statistics.median(tails):.2f} s (rounds: {', '.join(f'{t:.2f}' for t in tails)})")
PY
rm -f "$res"
# The counts upcause found against the generator's ground truth.
python3 - "$DIR/truth.json" "$OUT/summary.json" <<'PY'
import json, sys, os
t, s = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
bad = []
got_req = {f"{c['cause']}[{c['cause_class']}]": c["failed"] for c in s["request_causes"] if c["failed"]}
if got_req != t["request_causes"]: bad.append(f"request causes: got {got_req}, want {t['request_causes']}")
got_lines = {f"{c['cause']}[{c['cause_class']}]": c["failed"] for c in s["error_line_causes"]}
if got_lines != t["error_line_causes"]: bad.append(f"error-line causes: got {got_lines}, want {t['error_line_causes']}")
files = {os.path.basename(i["path"]): i["lines"] for i in s["inputs"]}
if files != t["files"]: bad.append(f"lines per file differ: {set(files.items()) ^ set(t['files'].items())}")
if s["requests"]["total"] != t["requests"]: bad.append(f"requests: got {s['requests']['total']}, want {t['requests']}")
if s["totals"]["malformed"]: bad.append(f"{s['totals']['malformed']} malformed lines")
if s["requests"].get("refused", 0) != t.get("refused", 0): bad.append(f"refused: got {s['requests'].get('refused')}, want {t.get('refused')}")
if bad:
    print("COUNT CHECK FAILED:\n  " + "\n  ".join(bad)); sys.exit(1)
print(f"count check: OK ({t['requests']} requests, {sum(t['request_causes'].values())} failing requests in "
      f"{len(t['request_causes'])} causes, {sum(t['error_line_causes'].values())} upstream error lines, {len(t['files'])} files)")
PY

fi
[ "${PLAIN:-1}" = 1 ] || exit 0
# Plain-text path: 1 GiB of the corpus's shop access log, whole lines, as one rotated file.
P="$DIR-plain"
if ! [ -f "$P/shop.access.log.1" ]; then
  mkdir -p "$P"
  { zcat -f "$DIR"/shop.access.log* || true; } | head -c 1073741824 | python3 -c "
import sys; b = sys.stdin.buffer.read(); sys.stdout.buffer.write(b[:b.rfind(b'\\n') + 1])" > "$P/shop.access.log.1"
fi
cat "$P/shop.access.log.1" > /dev/null
PB=$(stat -c %s "$P/shop.access.log.1")
declare -A PC
PNAMES=(wc_l rg_c_502 upcause_plain_1t upcause_plain_2t)
PC[wc_l]="wc -l $P/shop.access.log.1 > /dev/null"
PC[rg_c_502]="rg -c ' 502 ' $P/shop.access.log.1 > /dev/null"
PC[upcause_plain_1t]="target/release/upcause analyze $P --log-format '*=$FMT' --out $OUT-plain -q -j 1"
PC[upcause_plain_2t]="target/release/upcause analyze $P --log-format '*=$FMT' --out $OUT-plain -q -j 2"
res=$(mktemp)
measure "$res" PNAMES PC
python3 - "$res" "$PB" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for l in open(sys.argv[1]):
    n, e, u, s, m = l.split()
    rows[n].append((float(e), float(u) + float(s), int(m)))
b = int(sys.argv[2])
print(f"\nplain text: {b/2**20:.0f} MiB, one cached file; medians of {len(rows['wc_l'])} rounds")
print(f"{'command':<18} {'wall s':>7} {'CPU s':>7} {'peak RSS MiB':>12} {'MB/s':>8} {'MB/s/core':>9}")
for n in rows:
    w, c, m = (statistics.median(x[k] for x in rows[n]) for k in range(3))
    w = max(w, 0.005)  # /usr/bin/time reports 0.00 s for tiny inputs
    cores = 2 if n.endswith("2t") else 1
    print(f"{n:<18} {w:7.2f} {c:7.2f} {m/1024:12.0f} {b/1e6/w:8.0f} {b/1e6/w/cores:9.0f}")
PY
rm -f "$res"

