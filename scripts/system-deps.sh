#!/usr/bin/env bash
# What the whole test suite needs beyond Python: Debian's chromium (the dashboard's browser
# tests; never a downloaded browser) and PostgreSQL 15 + PostGIS 3 (the storage suite's
# production half; the tests start a throwaway cluster themselves). Installs what is missing
# when this user may (root, or sudo without a password); otherwise says what will skip and why.
set -uo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || need+=(postgresql-15-postgis-3)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo
  else
    echo "system-deps: cannot install ${need[*]} (not root, no passwordless sudo): the" \
         "browser or PostGIS tests will skip with that reason" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "system-deps: installing ${need[*]} (apt)" >&2
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || { $SUDO apt-get update -qq >/dev/null 2>&1 \
       && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; } \
  || echo "system-deps: could not install ${need[*]}: the browser or PostGIS tests will skip" >&2
exit 0
