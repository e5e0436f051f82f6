#!/usr/bin/env bash
# Create .venv and install trucewatch (with test tools when $1 = test). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
extra="[all]"  # every optional extra: the quick start uses them all
[ "${1:-}" = "test" ] && extra="[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}" 2>&1 | grep -v "^WARNING: Location" || true
