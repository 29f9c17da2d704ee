#!/usr/bin/env bash
# Decoder bake-off (README, Performance): builds benches/inflate once per gzip backend and
# inflates every .gz file of a corpus on one thread, RUNS times each, alternating; prints the
# median MB/s (decompressed bytes). The C backends need cmake (zlib-ng) and autotools + nasm
# (ISA-L through isal-rs); a backend that does not build is reported and skipped.
#
#   benches/decoders.sh [DIR]        # DIR: a corpus written by benches/run.sh (default bench-corpus)
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-bench-corpus}
RUNS=${RUNS:-5}
M=benches/inflate/Cargo.toml
T=target/inflate
built=()
for b in miniz zlib-rs zlib-ng isal; do
  if cargo build -q --release --manifest-path $M --target-dir $T --no-default-features --features $b 2>/tmp/inflate-$b.log; then
    cp $T/release/inflate-bakeoff $T/bakeoff-$b && built+=("$b")
  else
    echo "$b: does not build here (see /tmp/inflate-$b.log)"
  fi
done
res=$(mktemp)
for r in $(seq "$RUNS"); do
  for b in "${built[@]}"; do
    for kib in 32 1024; do
      echo "$b ${kib} $($T/bakeoff-$b "$DIR" $kib)" >> "$res"
    done
  done
done
python3 - "$res" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for l in open(sys.argv[1]):
    b, kib, name, out, lines, secs, mbs = l.split()
    rows[(b, int(kib))].append(float(mbs))
print(f"{'backend':<10} {'read KiB':>8} {'MB/s (median, 1 thread)':>24}")
for (b, kib), v in sorted(rows.items(), key=lambda kv: -statistics.median(kv[1])):
    print(f"{b:<10} {kib:>8} {statistics.median(v):>24.0f}")
PY
rm -f "$res"
