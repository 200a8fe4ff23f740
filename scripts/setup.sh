#!/usr/bin/env bash
# Sets up a virtual environment in .venv from the hash-pinned lock files.
#   bash scripts/setup.sh          runtime dependencies (requirements.lock)
#   bash scripts/setup.sh --dev    plus test and lint tools (requirements-dev.lock)
# It also makes sure redis-server is installed (the bot starts its own when REDIS_URL is unset).
set -euo pipefail
cd "$(dirname "$0")/.."

lock=requirements.lock
[[ "${1:-}" == "--dev" ]] && lock=requirements-dev.lock

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
apt_install() {
    command -v apt-get >/dev/null || return 1
    as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "tzurot needs Python >= 3.11 (found: $("$python" --version 2>&1))" >&2; exit 1
fi
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python${pyver}-venv" || apt_install python3-venv || {
        echo "python venv support is missing: install python3-venv" >&2; exit 1; }
fi
if ! command -v redis-server >/dev/null; then
    apt_install redis-server || echo "warning: redis-server not found and could not be installed; set REDIS_URL instead" >&2
fi

[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$lock"
echo "ready: .venv ($lock)"
