#!/usr/bin/env bash
# Issue 12 bench: the join must not grow quadratically when every request shares one client
# address (a load balancer without real_ip). Writes the same 30-minute outage twice
# (benches/gen_lb.py: 360 k requests over 7 URIs, half failing with an EAGAIN line each), once
# from one address and once from distinct addresses, and times `upcause analyze` on both,
# alternating, medians of RUNS rounds. The ratio one/distinct is expected to be at most 1.5.
#
#   benches/lb.sh            # RUNS=3, DIR=bench-lb
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DIR=${DIR:-bench-lb}
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
cargo build --release -q
for m in one distinct; do
  [ -s "$DIR/$m/error.log" ] || python3 benches/gen_lb.py "$DIR/$m" "$m"
done
cat "$DIR"/*/*.log > /dev/null
FMT='$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time ua="$upstream_addr" us="$upstream_status"'
res=$(mktemp)
for r in $(seq "$RUNS"); do
  for m in one distinct; do
    t=$(mktemp)
    /usr/bin/time -f "%e %M" -o "$t" target/release/upcause analyze "$DIR/$m" --log-format "$FMT" \
      --out "/tmp/upcause-lb-$m" -q || { c=$?; [ "$c" -eq 2 ] || exit 1; }
    echo "$m $(cat "$t")" >> "$res"
    rm -f "$t"
  done
done
python3 - "$res" "$DIR" <<'PY'
import sys, statistics, collections, csv
rows = collections.defaultdict(list)
for l in open(sys.argv[1]):
    m, wall, rss = l.split()
    rows[m].append((float(wall), int(rss)))
med = {m: statistics.median(w for w, _ in v) for m, v in rows.items()}
for m in ("one", "distinct"):
    print(f"{m:<9} wall {med[m]:6.2f} s (median of {len(rows[m])}), peak RSS {max(r for _, r in rows[m]) // 1024} MiB")
print(f"ratio one/distinct: {med['one'] / med['distinct']:.2f} (expected at most 1.5)")
# Same verdicts either way: every failing request joined to its own line.
for m in ("one", "distinct"):
    req = list(csv.DictReader(open(f"/tmp/upcause-lb-{m}/requests.csv")))
    joined = sum(1 for r in req if r["proximate"] != "none")
    print(f"{m:<9} {len(req)} failing requests, {joined} with their nginx line, causes {collections.Counter(r['cause'] for r in req).most_common(3)}")
PY
rm -f "$res"
