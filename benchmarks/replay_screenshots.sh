#!/usr/bin/env bash
# Screenshots of the real-data replay (Donbas 2020): the shared replay tool runs
# `trucewatch run` through a wrapper that keeps its out folder and agreement (the tool
# works in a temporary folder), then the dashboard and both bulletins are shot at
# 1400x900 and 390x844 into docs/images/replay-2020 with their page-box checks.
#
#   benchmarks/replay_screenshots.sh [PYTHON] [KEEP_DIR]
#
# PYTHON defaults to .venv/bin/python; run from the project root (the data lives in
# ../shared/data, the tool in ../shared/tools/ceasefire-replay).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-$root/.venv/bin/python}
keep=${2:-$(mktemp -d)}
tool=${TRUCEWATCH_REPLAY_TOOL:-$root/../shared/tools/ceasefire-replay/replay.py}
[ -f "$tool" ] || tool=/work/shared/tools/ceasefire-replay/replay.py
mkdir -p "$keep"
wrapper=$keep/trucewatch
cat >"$wrapper" <<WRAP
#!/usr/bin/env bash
# trucewatch from $root; keeps the run's --out folder and --agreement in $keep
set -e
PYTHONPATH=$root/src:$root/benchmarks "$py" -m trucewatch "\$@"
out=; agr=; prev=
for a in "\$@"; do
  [ "\$prev" = --out ] && out=\$a
  [ "\$prev" = --agreement ] && agr=\$a
  prev=\$a
done
if [ -n "\$out" ]; then
  rm -rf "$keep/out"; cp -r "\$out" "$keep/out"
  [ -n "\$agr" ] && cp "\$agr" "$keep/out/agreement.yaml"
fi
WRAP
chmod +x "$wrapper"
(cd "$root" && "$py" "$tool" --trucewatch "$wrapper")
export PYTHONPATH=$root/src:$root/benchmarks
cd "$root"
"$py" benchmarks/bulletin_screenshots.py "$keep/out" --images docs/images/replay-2020
"$py" benchmarks/dashboard_screenshots.py "$keep/out" --agreement "$keep/out/agreement.yaml" \
    --images docs/images/replay-2020
