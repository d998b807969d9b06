#!/usr/bin/env bash
# Debian packages some tests drive for real: nginx (tests/test_nginx.py) and Chromium
# (tests/test_browser.py: Debian's browser, never a download). Installed only where
# missing, and only where we may (root with apt-get); elsewhere those tests skip with the
# reason, and CI (GLASSBOX_REQUIRE_SERVICES=1) turns that skip into a failure.
set -euo pipefail
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} …" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
           "${missing[@]}" >&2; }
  else
    echo "not installing ${missing[*]} (needs root and apt-get); those tests will skip" >&2
  fi
fi
