# Sourced by scripts/dev and scripts/test: make .venv (once), install the project into it
# (again only when pyproject.toml changed), and npm packages when Node.js is around.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
EXTRAS="${1:-agent,edge}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Glassbox needs Python 3.11 or newer (found $("$PYTHON" --version))" >&2; exit 1; }
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=".venv/.glassbox-$EXTRAS-$(cksum < pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
  echo "installing glassbox[$EXTRAS] into .venv …" >&2
  .venv/bin/python -m pip install --quiet -e ".[$EXTRAS]"
  touch "$stamp"
fi
if [ "${GLASSBOX_NPM:-1}" = 1 ] && command -v npm >/dev/null 2>&1; then
  lock_stamp="node_modules/.glassbox-$(cksum < package-lock.json | cut -d' ' -f1)"
  if [ ! -f "$lock_stamp" ]; then
    echo "installing npm packages (buf, grpc-js) …" >&2
    # Not `npm ci`: the registry's metadata leaves buf's other-platform binaries out of
    # the lock, which `npm ci` then refuses as out of sync. --no-save keeps the lock as is.
    npm install --no-save --no-audit --no-fund --loglevel=error >&2
    touch "$lock_stamp"
  fi
fi
