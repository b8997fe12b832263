#!/usr/bin/env bash
# Check by hand (never in CI: Open WebUI's install is 7.4 GB) that Open WebUI, pointed at `kb serve`, shows an
# answer's sources and that a source's link opens its image in the browser. Installs Open WebUI into its own venv
# outside the repository (once), then runs scripts/check_open_webui.py with the project's venv (playwright +
# Debian's /usr/bin/chromium). Everything listens on 127.0.0.1; the servers it starts are stopped at the end.
#
#   scripts/check_open_webui.sh                       # the bundled samples, OCR only (about 5 minutes)
#   scripts/check_open_webui.sh --kb data/kb --vlm Qwen/Qwen3-VL-2B-Instruct --answer-timeout 900
#   scripts/check_open_webui.sh --cheap-tasks --screenshots /tmp/owu-shots
#   OPEN_WEBUI_VERSION=0.12.4 OPEN_WEBUI_VENV=~/.cache/image-kb/open-webui-venv scripts/check_open_webui.sh
#
# Prints each answer, its sources and where the screenshots are; exits 1 with one line naming what failed.
set -euo pipefail

VERSION="${OPEN_WEBUI_VERSION:-0.12.4}"
VENV="${OPEN_WEBUI_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/image-kb/open-webui-venv}"
BASE_PYTHON="${OPEN_WEBUI_PYTHON:-python3}" # Open WebUI 0.12 needs Python 3.11 or 3.12
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

fail() {
    echo "check_open_webui: FAILED: $*" >&2
    exit 1
}

[ -x "$PY" ] || fail "$PY is missing: run make dev first (or set PYTHON)"
"$PY" -c "import playwright" 2>/dev/null || fail "playwright is not installed in $PY: run make dev"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is missing: apt-get install chromium"

if [ ! -f "$VENV/.installed-$VERSION" ]; then
    echo "installing open-webui==$VERSION into $VENV (about 7.4 GB and several minutes, once)" >&2
    [ -x "$VENV/bin/python" ] || "$BASE_PYTHON" -m venv "$VENV" || fail "could not create a venv with $BASE_PYTHON"
    "$VENV/bin/python" -m pip install -q "open-webui==$VERSION" >&2 || fail "pip install open-webui==$VERSION failed"
    touch "$VENV/.installed-$VERSION"
fi

cd "$ROOT"
exec "$PY" scripts/check_open_webui.py --open-webui "$VENV/bin/open-webui" "$@"
