#!/usr/bin/env bash
# Envelope bench (issue 13): the bench corpus against the same corpus wrapped as Docker
# json-file records (benches/wrap_corpus.rs: every file, same names and compression), analysed
# with the same arguments, alternating, medians of RUNS rounds. The wrapped run is expected to
# take at most 1.3 x the unwrapped one.
#
#   benches/wrapped.sh                 # bench-corpus (benches/run.sh writes it), RUNS=3
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DIR=${DIR:-bench-corpus}
WDIR=${WDIR:-bench-wrapped}
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
cargo build --release -q --example gen_corpus --example wrap_corpus
cargo build --release -q
[ -f "$DIR/truth.json" ] || target/release/examples/gen_corpus "$DIR" 2048 42
[ -f "$WDIR/.done" ] || { rm -rf "$WDIR"; target/release/examples/wrap_corpus "$DIR" "$WDIR" && touch "$WDIR/.done"; }
FMT=$(python3 -c "import json;print(json.load(open('$DIR/truth.json'))['shop_format'])")
cat "$DIR"/*.log* "$WDIR"/*.log* > /dev/null
res=$(mktemp)
for r in $(seq "$RUNS"); do
  for d in "$DIR" "$WDIR"; do
    t=$(mktemp)
    /usr/bin/time -f "%e %M" -o "$t" target/release/upcause analyze "$d" --log-format "shop.access.log*=$FMT" \
      --out "/tmp/upcause-wrapped-$(basename "$d")" -q -j 2 || { c=$?; [ "$c" -eq 2 ] || exit 1; }
    echo "$(basename "$d") $(cat "$t")" >> "$res"
    rm -f "$t"
  done
done
python3 - "$res" "$DIR" "$WDIR" <<'PY'
import sys, statistics, collections, json
rows = collections.defaultdict(list)
for l in open(sys.argv[1]):
    n, wall, rss = l.split()
    rows[n].append(float(wall))
a, b = sys.argv[2].rstrip('/').split('/')[-1], sys.argv[3].rstrip('/').split('/')[-1]
ma, mb = statistics.median(rows[a]), statistics.median(rows[b])
print(f"unwrapped {ma:.2f} s, Docker json-file {mb:.2f} s (medians of {len(rows[a])}): {mb / ma:.2f} x (expected at most 1.3)")
for d in (a, b):
    s = json.load(open(f"/tmp/upcause-wrapped-{d}/summary.json"))
    print(f"{d}: {s['requests']['total']} requests, {s['requests']['failed']} failed, {s['totals']['lines']} lines, {s['totals']['malformed']} malformed")
PY
rm -f "$res"
