#!/usr/bin/env bash
# Run one or all fuzz targets for SECONDS each, seeded with the captured logs of testdata/.
#   fuzz/run.sh [SECONDS] [TARGET...]      default: 60 s, every target
# New inputs go to fuzz/corpus/TARGET (kept between runs, not committed); a crash is written to
# fuzz/artifacts/TARGET/ and stops the run with a non-zero exit. Needs cargo-fuzz
# (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP=1 lets the stable toolchain take its flags.
set -euo pipefail
cd "$(dirname "$0")/.."
# The chunk target's wrapped seeds go to a temporary directory, removed on the way out.
wrapped=""
trap '[ -z "$wrapped" ] || rm -rf "$wrapped"' EXIT
SECS=${1:-60}
shift || true
TARGETS=("$@")
# gzip last: with ISA-L its C flags differ (below), which rebuilds the C dependencies once.
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(access error fpm chunk gzip)
export RUSTC_BOOTSTRAP=1
# The gzip target compares ISA-L with zlib-rs when ISA-L can be built (autotools and nasm:
# .ci/run installs them); without them it fuzzes zlib-rs alone, and says so. isal-sys links
# its configure checks with -static, which GCC refuses together with the -fsanitize=address
# that the cc crate adds under cargo-fuzz: ISA-L's C is built without ASan (our Rust side,
# where the boundary logic is, keeps it).
gzip_features=()
gzip_env=()
if command -v nasm >/dev/null && command -v autoreconf >/dev/null && command -v libtoolize >/dev/null; then
  gzip_features=(--features isal)
  gzip_env=(CFLAGS=-fno-sanitize=address)
fi
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  extra=()
  extra_build=()
  extra_env=()
  case $t in
    gzip)
      seeds=(testdata/real/rotated testdata/hostile/gzip); len=262144; extra_build=("${gzip_features[@]}"); extra_env=("${gzip_env[@]}")
      [ ${#gzip_features[@]} -gt 0 ] || echo "fuzz gzip: ISA-L build tools missing, zlib-rs only" >&2 ;;
    # chunk starts a rayon pool per input; glibc's per-thread exit list of those threads shows
    # up in LeakSanitizer as a 32-byte "leak" (__cxa_thread_atexit_impl), not ours: no leak check.
    chunk)
      # Mixed files too: the captures wrapped as containers, syslog and the journal ship them.
      wrapped=$(mktemp -d)
      python3 testdata/wrap.py "$wrapped" --scenario php_fatal --scenario fpm_debug_layout --shape compose \
        --shape docker-json-split --shape cri-split --shape syslog --shape journald > /dev/null
      seeds=(testdata/real/mixed testdata/real/php_fatal testdata/real/fpm_debug_layout testdata/hostile/lines testdata/hostile/nul "$wrapped")
      len=65536; extra=(-detect_leaks=0) ;;
    *) seeds=(testdata/real testdata/hostile/lines); len=16384 ;;
  esac
  # Inputs that once crashed a target (each also has a unit test) are replayed first.
  [ -d "fuzz/regressions/$t" ] && seeds+=("fuzz/regressions/$t")
  echo "== fuzz $t for ${SECS}s" >&2
  log="fuzz/corpus/$t-last-run.txt"
  rc=0
  env "${extra_env[@]}" cargo fuzz run "${extra_build[@]}" "$t" "fuzz/corpus/$t" "${seeds[@]}" -- -max_total_time="$SECS" -max_len="$len" -print_final_stats=1 "${extra[@]}" > "$log" 2>&1 || rc=$?
  # libFuzzer's progress lines stay in the log; the summary and any crash are shown.
  grep -E "^stat::|ERROR|panicked|SUMMARY|Done [0-9]+ runs" "$log" || true
  [ "$rc" -eq 0 ] || { tail -n 40 "$log" | cut -c1-300 >&2; echo "fuzz target $t failed: see fuzz/artifacts/$t/ and $log" >&2; exit 1; }
done
