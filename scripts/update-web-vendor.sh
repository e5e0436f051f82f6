#!/usr/bin/env bash
# Refresh the dashboard's vendored browser files from npm (versions pinned here), then
# update the sha256 column of src/trucewatch/web/static/vendor/VENDOR.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=src/trucewatch/web/static/vendor
tmp=$(mktemp -d)
(cd "$tmp" && npm install --no-audit --no-fund --silent \
   maplibre-gl@6.17.0 world-atlas@2.0.2 topojson-client@3.1.0)
m=$tmp/node_modules
cp "$m/maplibre-gl/dist/maplibre-gl.mjs" "$m/maplibre-gl/dist/maplibre-gl-worker.mjs" \
   "$m/maplibre-gl/dist/maplibre-gl.css" "$dest/"
cp "$m/topojson-client/dist/topojson-client.min.js" "$m/world-atlas/countries-50m.json" "$dest/"
cp "$m/maplibre-gl/LICENSE.txt" "$dest/LICENSE-maplibre-gl.txt"
cp "$m/topojson-client/LICENSE" "$dest/LICENSE-topojson-client.txt"
cp "$m/world-atlas/LICENSE" "$dest/LICENSE-world-atlas.txt"
(cd "$dest" && sha256sum ./*.mjs ./*.js ./*.json ./*.css)
rm -rf "$tmp"
