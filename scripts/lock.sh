#!/usr/bin/env bash
# Regenerates the hash-pinned lock files from pyproject.toml (needs `uv`: pip install uv).
set -euo pipefail
cd "$(dirname "$0")/.."
uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --no-header -q -o requirements.lock
uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 --no-header -q -o requirements-dev.lock
