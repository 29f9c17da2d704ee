#!/usr/bin/env bash
# Codec bake-off for rotated logs in zstd, xz and bzip2 (the gzip one is benches/decoders.sh).
# Builds benches/codecs once per backend (xz2 from benches/codecs/xz2: its lzma-sys and
# liblzma's liblzma-sys both claim `links = "lzma"`), recompresses corpus files with the CLI
# tools into bench-codecs/<codec>/ (`zstd -3`, `xz -6 -T1`, `bzip2 -9`; .gz files through zcat;
# kept between runs), checks that every backend of a codec decodes the same bytes (FNV-1a 64),
# then times each backend RUNS times, alternating, on one thread, streaming with 1 MiB reads
# (and 64 KiB for zstd), and prints the median MB/s of decompressed bytes. Last, it probes
# each backend with a concatenated file (zstd: with a skippable frame between the frames, as
# pzstd writes), a file cut in half and a file with one corrupt byte in the middle.
#
#   benches/codecs.sh [DIR]     # DIR: a corpus written by gen_corpus (default bench-corpus)
#
# FILES (shell globs in DIR) picks the files: by default three whole rotation sets (api.access,
# error, php-fpm: 20 files, 689 MB decompressed), because `xz -6 -T1` compresses these logs
# at ~3 MB/s and the whole 2 GiB would take ~12 min; FILES='*' takes everything.
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-bench-corpus}
OUT=${OUT:-bench-codecs}
RUNS=${RUNS:-3}
FILES=${FILES:-"api.access.log* error.log* php-fpm.log*"}
PROBE=${PROBE:-api.access.log}          # a plain file of DIR: cut and corrupted for the probes
NICE="nice -n 10"
T=target/codecs

need=()
command -v zstd >/dev/null || need+=(zstd)
command -v xz >/dev/null || need+=(xz-utils)
command -v bzip2 >/dev/null || need+=(bzip2)
if ((${#need[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# codec:backend:build needs
BACKENDS=(
  "zstd:zstd:C from crates.io (zstd-sys builds its bundled libzstd 1.5.7 with cc)"
  "zstd:ruzstd:pure Rust"
  "xz:liblzma:C from crates.io (liblzma-sys builds its bundled xz 5.8.x; Debian's 5.4 is too old to be used)"
  "xz:xz2:Debian liblzma-dev (pkg-config, dynamic 5.4.1); without it bundled xz 5.2.5"
  "xz:xz2-static:C from crates.io (lzma-sys builds its bundled xz 5.2.5)"
  "xz:lzma-rust2:pure Rust"
  "xz:lzma-rs:pure Rust; NOT streaming (buffers whole blocks), single stream only"
  "bzip2:bzip2-rs:pure Rust (bzip2 0.6 default: libbz2-rs-sys)"
  "bzip2:bzip2-c:C from crates.io (bzip2-sys builds bundled libbz2 1.0.8; Debian has no bzip2.pc)"
)
built=()
for e in "${BACKENDS[@]}"; do
  IFS=: read -r codec b _ <<<"$e"
  if [[ $b == xz2* ]]; then
    args=(--manifest-path benches/codecs/xz2/Cargo.toml --target-dir $T/xz2 --features "$b")
    exe=$T/xz2/release/codecs-bakeoff
  else
    args=(--manifest-path benches/codecs/Cargo.toml --target-dir $T --no-default-features --features "$b")
    exe=$T/release/codecs-bakeoff
  fi
  if $NICE cargo build -q --release "${args[@]}" 2>/tmp/codecs-$b.log; then
    cp "$exe" "$T/bakeoff-$b" && built+=("$codec:$b")
  else
    echo "$b: does not build here (see /tmp/codecs-$b.log)"
  fi
done

# Recompress the selection (once; a file is redone when its source is newer).
shopt -s nullglob
sel=()
read -ra globs <<<"$FILES"
for g in "${globs[@]}"; do for f in "$SRC"/$g; do [[ $f == *.json ]] || sel+=("$f"); done; done
((${#sel[@]})) || { echo "no file matches FILES='$FILES' in $SRC"; exit 1; }
compress() { # codec ext cmd...
  local codec=$1 ext=$2; shift 2
  mkdir -p "$OUT/$codec"
  local keep=() f base dst
  for f in "${sel[@]}"; do
    base=${f##*/}; base=${base%.gz}; dst=$OUT/$codec/$base.$ext; keep+=("$dst")
    [[ -s $dst && $dst -nt $f ]] && continue
    if [[ $f == *.gz ]]; then zcat "$f"; else cat "$f"; fi | $NICE "$@" >"$dst.tmp" && mv "$dst.tmp" "$dst"
  done
  for f in "$OUT/$codec"/*."$ext"; do [[ " ${keep[*]} " == *" $f "* ]] || rm -f "$f"; done
}
t0=$(date +%s)
compress zstd zst zstd -3 -q -c &
compress xz xz xz -6 -T1 -c &
compress bzip2 bz2 bzip2 -9 -c &
wait
echo "recompressed in $(( $(date +%s) - t0 )) s"

# Probe files: A+B concatenated, PROBE cut in half, PROBE with its middle byte flipped.
P=$OUT/probe
mkdir -p "$P"
A=$SRC/error.log.1 B=$SRC/php-fpm.log
cat "$A" "$B" >"$P/concat.orig"
for cx in "zstd zst zstd -3 -q -c" "xz xz xz -6 -T1 -c" "bzip2 bz2 bzip2 -9 -c"; do
  read -r codec ext cmd <<<"$cx"
  $cmd <"$A" >"$P/a.$ext"; $cmd <"$B" >"$P/b.$ext"
  python3 - "$P" "$ext" "$OUT/$codec/$PROBE.$ext" <<'PY'
import sys, struct
p, ext, probe = sys.argv[1:]
a, b = open(f"{p}/a.{ext}", "rb").read(), open(f"{p}/b.{ext}", "rb").read()
mid = b""
if ext == "zst":  # a skippable frame, as pzstd writes
    mid = struct.pack("<II", 0x184D2A50, 12) + b"skippable!!!"
open(f"{p}/concat.{ext}", "wb").write(a + mid + b)
if ext == "xz":  # stream padding (4 NUL bytes) between two streams is legal xz
    open(f"{p}/concat-pad.{ext}", "wb").write(a + b"\0" * 4 + b)
d = open(probe, "rb").read()
open(f"{p}/half.{ext}", "wb").write(d[: len(d) // 2])
c = bytearray(d); c[len(c) // 2] ^= 0x55
open(f"{p}/corrupt.{ext}", "wb").write(bytes(c))
PY
done

res=$(mktemp)
# Output check: every backend once, hashing the bytes (not timed).
for cb in "${built[@]}"; do
  IFS=: read -r codec b <<<"$cb"
  echo "check $b $codec 1024 $($T/bakeoff-$b "$OUT/$codec" "$codec" "${b%-static}" 1024 check)" >>"$res"
done
for r in $(seq "$RUNS"); do
  for cb in "${built[@]}"; do
    IFS=: read -r codec b <<<"$cb"
    kibs="1024"; [[ $codec == zstd ]] && kibs="64 1024"
    for kib in $kibs; do
      echo "time $b $codec $kib $($T/bakeoff-$b "$OUT/$codec" "$codec" "${b%-static}" $kib)" >>"$res"
    done
  done
done
for cb in "${built[@]}"; do
  IFS=: read -r codec b <<<"$cb"
  ext=$(case $codec in zstd) echo zst;; xz) echo xz;; bzip2) echo bz2;; esac)
  for f in concat concat-pad half corrupt; do
    [[ -f $P/$f.$ext ]] || continue
    orig=$SRC/$PROBE; [[ $f == concat* ]] && orig=$P/concat.orig
    echo "probe $b $codec $f.$ext $($T/bakeoff-$b --probe "$P/$f.$ext" "$codec" "${b%-static}" "$orig" 1024)" >>"$res"
  done
done

needs=$(printf '%s\n' "${BACKENDS[@]}")
sizes=$(for c in zstd xz bzip2; do echo "$c $(cat "$OUT/$c"/* | wc -c)"; done)
python3 - "$res" "$needs" "$sizes" "${sel[@]}" <<'PY'
import sys, os, statistics, collections
res, needs, sizes, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
need = {l.split(":")[1]: l.split(":", 2)[2] for l in needs.splitlines()}
comp = dict(l.split() for l in sizes.splitlines())
rows, check, probes = collections.defaultdict(list), {}, []
for l in open(res):
    f = l.split()
    if f[0] == "time" and len(f) >= 6:
        rows[(f[2], f[1], int(f[3]))].append(int(f[4]) / 1e6 / float(f[5]))
    elif f[0] == "check" and len(f) >= 8:
        check[f[1]] = (f[2], int(f[4]), int(f[6]), f[7])
    elif f[0] == "probe":
        probes.append(f[1:])
names = sorted({os.path.basename(x) for x in files})
total = next(iter(check.values()))[1] if check else 0
print(f"Files ({len(names)}, {total/1e6:.0f} MB decompressed): {' '.join(names)}")
print("Compressed: " + ", ".join(f"{c} {int(n)/1e6:.1f} MB" for c, n in comp.items()))
print(f"\n{'codec':<6} {'backend':<11} {'KiB':>5} {'MB/s med':>8} {'min-max':>9}  build needs")
for codec in ("zstd", "xz", "bzip2"):
    for (c, b, kib), v in sorted(rows.items(), key=lambda kv: -statistics.median(kv[1])):
        if c == codec:
            print(f"{c:<6} {b:<11} {kib:>5} {statistics.median(v):>8.0f} {f'{min(v):.0f}-{max(v):.0f}':>9}  {need.get(b, '')}")
print(f"\n{'codec':<6} {'backend':<11} {'bytes':>11} {'lines':>9}  fnv1a-64          same as codec's first?")
first = {}
for b, (c, n, lines, h) in check.items():
    first.setdefault(c, (n, lines, h))
    print(f"{c:<6} {b:<11} {n:>11} {lines:>9}  {h}  {'yes' if first[c] == (n, lines, h) else 'NO'}")
print("\nProbes (out = decoded bytes delivered, in = compressed bytes consumed/size):")
for p in probes:
    print(f"{p[1]:<6} {p[0]:<11} {p[2]:<15} {' '.join(p[3:])}")
PY
rm -f "$res"
