# Shared by scripts/demo and scripts/test: make .venv with everything installed, on a fresh Debian too.
# Sourced, not run. Idempotent: a second run only checks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

apt_ensure() {
  # Debian packages: venv support, and the libraries WeasyPrint renders PDFs with (harfbuzz-subset: ~3x faster).
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages: ${missing[*]}" >&2
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

PYVER="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Python 3.11 or newer is needed (found $PYVER)" >&2; exit 1
fi
if command -v dpkg >/dev/null; then
  apt_ensure libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
  "$PYTHON" -c 'import ensurepip' 2>/dev/null || apt_ensure "python${PYVER}-venv"
fi

EXTRAS="${DPA_EXTRAS:-}"
# The browser tests drive Debian's Chromium (Playwright's own browser download cannot work on a closed network).
# pdfsig (poppler-utils): the tests check sealed PDFs with a second, independent validator.
# openssl: the tests run the README's offline check of a contract bundle's signed manifest.
if [ -n "$EXTRAS" ] && command -v dpkg >/dev/null; then apt_ensure chromium poppler-utils openssl; fi
STAMP=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)${EXTRAS:+-$EXTRAS}"
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
if [ ! -f "$STAMP" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".${EXTRAS:+[$EXTRAS]}" >&2
  touch "$STAMP"
fi
