#!/usr/bin/env bash
# Quick start 2: set up with the test tools, then run the test suite and the linters.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/python -m pytest -q "$@"
