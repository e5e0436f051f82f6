#!/usr/bin/env bash
# Quick start 2: set up with the test tools and what the suite needs beyond Python
# (chromium, PostgreSQL + PostGIS: scripts/system-deps.sh), then run the whole test suite.
# A test skips only where an install was impossible, and says why.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
scripts/setup.sh test
.venv/bin/python -m pytest -q "$@"
