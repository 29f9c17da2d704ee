#!/usr/bin/env bash
# Capture real nginx/php-fpm failure logs into testdata/real/<scenario>/.
#   testdata/capture/run.sh [scenario...]   (no args = all)   --list   --readme
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-}" in
    --list|-h|--help)   # no root, no packages needed
        py=/usr/bin/python3.11; [ -x "$py" ] || py="$(command -v python3)"
        PYTHONDONTWRITEBYTECODE=1 exec "$py" "$here/capture.py" "$@" ;;
esac
if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: must run as root (nginx 'user www-data', php-fpm pools as www-data)" >&2
    exit 2
fi
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v php-fpm8.2 >/dev/null 2>&1 || [ -x /usr/sbin/php-fpm8.2 ] || need+=(php8.2-fpm)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
if [ "${#need[@]}" -gt 0 ]; then
    echo "run.sh: installing ${need[*]}" >&2
    apt-get update
    # the packages' postinst may try to start services; policy-rc.d normally prevents it
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
py=/usr/bin/python3.11
[ -x "$py" ] || py="$(command -v python3)"
export PYTHONDONTWRITEBYTECODE=1
exec "$py" "$here/capture.py" "$@"
