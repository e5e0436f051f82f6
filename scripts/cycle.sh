#!/usr/bin/env bash
# Quick start 1: set up, then run a full verification cycle on the built-in scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/trucewatch run --out "${1:-out}"
