#!/usr/bin/env bash
# Regenerates docs/report.png, the README's picture of report.html, from the sample logs.
# Needs Debian's chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -- analyze testdata/real --nginx-conf testdata/real/mixed/nginx.conf -q || [ $? -eq 2 ]
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1200,1900 --screenshot=docs/report.png "file://$PWD/reports/real/report.html" 2>/dev/null
echo "wrote docs/report.png"
