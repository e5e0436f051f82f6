// trucewatch dashboard: everything comes from this server (no CDN, no tile server).
//
// Safe by construction: every text from the server is put in the page as text
// (textContent, createElement), never parsed as HTML; the page's Content-Security-Policy
// allows no inline script and no eval. The API token is sent once, to sign in: the
// server answers with an HttpOnly session cookie (no script can read it) and the
// session's CSRF token, kept in this module's memory only and sent in X-CSRF-Token with
// every request that changes something. Nothing is kept in web storage (the language
// is in the address: ?lang=uk).
import * as maplibregl from "./vendor/maplibre-gl.mjs";

const COLORS = {"explosion.impact": "#d62728", "explosion": "#d62728", "fire": "#ff7f0e",
  "heavy_weapon_in_restricted_zone": "#7b3294", "strike_on_protected_site": "#000000",
  "heavy_weapon": "#9467bd", "vehicle_movement": "#8c8c8c",
  "restriction_of_monitors": "#1f77b4"};
const ZONES = {"buffer": "#f4a582", "withdrawal": "#fddbc7", "protected_site": "#92c5de"};
const COVER = {sensor_coverage: "#17becf", patrol: "#2ca02c"};
const LANGS = ["en", "uk", "ru", "fr"];
const DAY = 86400000;
const FONT = "Noto Sans Regular";
const $ = (id) => document.getElementById(id);

const state = {
  me: null, csrf: "", lang: "en", messages: {}, map: null, days: [], day: null,
  agreement: null, incidents: [], publicIncidents: null, counts: null, coverage: null,
  picking: false, pin: null,
};

// ------------------------------------------------------------------ text
// an element with text children only (strings become text nodes, never HTML)
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "background") node.style.background = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function t(key, vars = {}) {
  const text = state.messages[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

// an incident category or status code in the interface's language ("cat:CODE" in the
// catalogue; the code itself where the catalogue has none, as in English)
function codeLabel(code) {
  return state.messages["cat:" + code] ?? code;
}

async function loadLanguage(lang) {
  state.lang = LANGS.includes(lang) ? lang : "en";
  const r = await fetch(`/static/i18n/${state.lang}.json`);
  state.messages = await r.json();
  document.documentElement.lang = state.lang;
  $("lang").value = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
}

function pickLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked) return asked;
  const nav = (navigator.language || "en").slice(0, 2).toLowerCase();
  return LANGS.includes(nav) ? nav : "en";
}

// ------------------------------------------------------------------ messages
// a toast region fixed inside the viewport; errors stay until dismissed
function say(text, error = false) {
  const node = el("div", {class: error ? "toast error" : "toast", role: error ? "alert" : null},
    el("span", {}, text), el("button", {type: "button", class: "close", "aria-label": "close"}, "×"));
  node.querySelector("button").onclick = () => node.remove();
  $("toast").append(node);
  while ($("toast").children.length > 4) $("toast").firstElementChild.remove();
  if (!error) setTimeout(() => node.remove(), 10000);
}

function fieldName(loc) {
  const name = (loc || []).filter((x) => x !== "body").join(".");
  const known = state.messages["field_" + name];
  return known || name || "";
}

// one readable sentence from the project's error shape, flat
// {"error": code, "status", "message", "fix", "details"} or nested {"error": {...}}
export function humanError(e, status = 0) {
  if (e instanceof TypeError) return t("err_network");
  const body = (e && typeof e.error === "object" && e.error) ? e.error : (e || {});
  const code = status || body.status || 0;
  let message = String(body.message || body.detail || e?.message || "").replace(/\.$/, "");
  const details = body.details || e?.details || [];
  if (code === 422 && details.length) {
    message = details.map((d) => `${fieldName(d.loc)}: ${String(d.msg)
      .replace(/^(Value error|Assertion failed), /, "")}`).join("; ");
  }
  let sentence;
  if (code === 401) sentence = t("err_401");
  else if (code === 429) sentence = t("err_429");
  else if (code >= 500) sentence = t("err_5xx", {message});
  else if ([403, 404, 409, 413, 422].includes(code)) sentence = t(`err_${code}`, {message});
  else sentence = t("err_other", {message: message || String(code)});
  const fix = String(body.fix || "").replace(/\.$/, "");
  if (fix && code !== 401) sentence += " " + t("err_fix", {fix});
  return sentence.charAt(0).toUpperCase() + sentence.slice(1);
}

function failed(e) { say(humanError(e, e?.__status), true); }

// ------------------------------------------------------------------ API
async function api(path, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = {...(options.headers || {})};
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (!["GET", "HEAD"].includes(method)) headers["X-CSRF-Token"] = state.csrf;
  const r = await fetch("/api/v1" + path, {...options, method, headers,
                                           credentials: "same-origin"});
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = (body && typeof body === "object") ? body : {};
    Object.defineProperty(err, "__status", {value: r.status});
    throw err;
  }
  return body;
}

// ------------------------------------------------------------------ map
class NorthArrow {
  onAdd(map) {
    this.map = map;
    this.node = el("div", {class: "maplibregl-ctrl maplibregl-ctrl-group north-arrow"},
      el("button", {type: "button", title: t("north"), "aria-label": t("north")},
        el("span", {class: "arrow"}, "▲"), el("span", {class: "n"}, "N")));
    this.node.querySelector("button").onclick = () => map.resetNorth();
    this.turn = () => { this.node.querySelector("button").style.transform =
      `rotate(${-map.getBearing()}deg)`; };
    map.on("rotate", this.turn);
    return this.node;
  }
  onRemove() { this.map.off("rotate", this.turn); this.node.remove(); }
}

function fontFaces() {
  const url = (f) => new URL(`/static/vendor/${f}`, location.href).href;
  return {[FONT]: [
    {url: url("noto-sans-latin-400-normal.woff2"), "unicode-range": [
      "U+0000-00FF", "U+0131", "U+0152-0153", "U+02BB-02BC", "U+2000-206F", "U+2212"]},
    {url: url("noto-sans-latin-ext-400-normal.woff2"), "unicode-range": ["U+0100-02BA",
      "U+1E00-1E9F"]},
    {url: url("noto-sans-cyrillic-400-normal.woff2"), "unicode-range": ["U+0301",
      "U+0400-045F", "U+0490-0491", "U+04B0-04B1", "U+2116"]}]};
}

function buildMap() {
  const map = new maplibregl.Map({container: "map", center: [0, 20], zoom: 1,
    canvasContextAttributes: {preserveDrawingBuffer: true}, attributionControl: false,
    style: {version: 8, sources: {}, "font-faces": fontFaces(), layers: [
      {id: "sea", type: "background", paint: {"background-color": "#d6e6f2"}}]}});
  map.addControl(new maplibregl.NavigationControl({showCompass: false}), "top-right");
  map.addControl(new NorthArrow(), "top-right");
  map.addControl(new maplibregl.ScaleControl({maxWidth: 140, unit: "metric"}), "bottom-left");
  map.addControl(new maplibregl.AttributionControl({compact: true, customAttribution:
    "Natural Earth · GeoNames (CC BY 4.0) · Noto Sans (OFL)"}), "bottom-right");
  state.map = map;
  window.trucewatch = {map};  // for tests and the browser console
  map.on("moveend", () => {
    const c = map.getCenter();
    $("map").dataset.center = `${c.lng.toFixed(4)},${c.lat.toFixed(4)}`;
    $("map").dataset.zoom = map.getZoom().toFixed(2);
  });
  map.on("click", (e) => {
    if (!state.picking) return;
    setPin(e.lngLat.lat, e.lngLat.lng);
  });
  return new Promise((resolve) => map.on("load", () => {
    // the attribution starts folded (an "i" button) so that it does not cover a phone's map
    document.querySelector(".maplibregl-ctrl-attrib")?.classList.remove("maplibregl-compact-show");
    resolve();
  }));
}

// add a GeoJSON source, or replace its data
function upsert(id, data) {
  const src = state.map.getSource(id);
  if (src) src.setData(data);
  else state.map.addSource(id, {type: "geojson", data});
}

function addLayer(layer, before) {
  if (state.map.getLayer(layer.id)) return;
  state.map.addLayer(layer, before && state.map.getLayer(before) ? before : undefined);
}

function hatch() {
  const n = 12;
  const data = new Uint8Array(n * n * 4);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const on = ((x + y) % n) < 1.5;
      data.set(on ? [120, 60, 60, 150] : [0, 0, 0, 0], (y * n + x) * 4);
    }
  }
  state.map.addImage("hatch", {width: n, height: n, data});
}

async function basemap() {
  const map = state.map;
  const [topo, admin1, places] = await Promise.all(["countries-50m.json",
    "admin1-ua-region.json", "places-ua-region.json"].map(
    (f) => fetch(`/static/vendor/${f}`).then((r) => r.json())));
  upsert("countries", topojson.feature(topo, topo.objects.countries));
  // Natural Earth's 1:50m countries put Crimea in Russia; the Russia-Ukraine border is
  // drawn from the admin-1 file instead (Ukraine's outline, Crimea included: ISO 3166-2)
  const isUaRu = (a, b) => {
    const n = new Set([a.properties.name, b.properties.name]);
    return n.has("Ukraine") && n.has("Russia");
  };
  upsert("borders", topojson.mesh(topo, topo.objects.countries,
                                  (a, b) => a !== b && !isUaRu(a, b)));
  state.admin1 = admin1;
  upsert("admin1", admin1);
  upsert("places", places);
  hatch();
  // empty layers that keep the groups in order whatever is added when
  for (const id of ["z-coverage", "z-agreement", "z-counts", "z-incidents", "z-labels"]) {
    addLayer({id, type: "background", layout: {visibility: "none"}});
  }
  addLayer({id: "land", type: "fill", source: "countries", paint: {"fill-color": "#f2efe6"}},
           "z-coverage");
  addLayer({id: "admin1-lines", type: "line", source: "admin1",
    filter: ["==", ["get", "layer"], "admin1"],
    paint: {"line-color": "#a39e93", "line-width": 0.7, "line-dasharray": [4, 2]}}, "z-coverage");
  addLayer({id: "borders", type: "line", source: "borders",
            paint: {"line-color": "#777", "line-width": 1.1}}, "z-coverage");
  addLayer({id: "ua-outline", type: "line", source: "admin1",
    filter: ["==", ["get", "layer"], "outline"],
    paint: {"line-color": "#777", "line-width": 1.1}}, "z-coverage");
}

function labelLayers() {
  // labels go on top of everything else
  const name = {en: "name", fr: "name", uk: "uk", ru: "ru"}[state.lang];
  const oblast = `name_${state.lang}`;
  const text = {"text-font": [FONT], "text-size": 11, "text-offset": [0, 0.6],
                "text-anchor": "top", "text-max-width": 8, "text-optional": true};
  const paint = {"text-color": "#333", "text-halo-color": "#fff", "text-halo-width": 1.4};
  const tiers = [["places-1", 200000, 0], ["places-2", 30000, 6.5], ["places-3", 0, 8]];
  for (const [id, pop, minzoom] of tiers) {
    const filter = id === "places-3" ? ["<", ["get", "pop"], 30000]
      : id === "places-2" ? ["all", [">=", ["get", "pop"], 30000], ["<", ["get", "pop"], 200000]]
        : [">=", ["get", "pop"], pop];
    addLayer({id: id + "-dot", type: "circle", source: "places", minzoom, filter,
      paint: {"circle-radius": id === "places-1" ? 3 : 2, "circle-color": "#444"}}, "z-labels");
    addLayer({id, type: "symbol", source: "places", minzoom, filter, layout: {...text,
      "text-field": ["coalesce", ["get", name], ["get", "name"]],
      "symbol-sort-key": ["-", 0, ["get", "pop"]],
      "text-size": id === "places-1" ? 13 : 11}, paint}, "z-labels");
  }
  addLayer({id: "oblast-labels", type: "symbol", source: "admin1", minzoom: 4.5,
    filter: ["==", ["get", "layer"], "admin1_label"], layout: {"text-font": [FONT],
      "text-field": ["coalesce", ["get", oblast], ["get", "name_en"]], "text-size": 11,
      "text-letter-spacing": 0.08, "text-transform": "uppercase", "text-max-width": 9},
    paint: {"text-color": "#8a8172", "text-halo-color": "#f2efe6", "text-halo-width": 1}},
  "z-labels");
  for (const id of ["places-1", "places-2", "places-3"]) {
    state.map.setLayoutProperty(id, "text-field", ["coalesce", ["get", name], ["get", "name"]]);
  }
  state.map.setLayoutProperty("oblast-labels", "text-field",
                              ["coalesce", ["get", oblast], ["get", "name_en"]]);
}

// the extent of a GeoJSON document: [[w, s], [e, n]] or null
export function extentOf(doc) {
  let w = Infinity, s = Infinity, e = -Infinity, n = -Infinity;
  const walk = (c) => {
    if (typeof c[0] === "number") {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else for (const x of c) walk(x);
  };
  for (const f of (doc?.features || [])) if (f.geometry) walk(f.geometry.coordinates);
  return Number.isFinite(w) ? [[w, s], [e, n]] : null;
}

function fit(extent) {
  if (!extent) return;
  const [[w, s], [e, n]] = extent;
  const pad = Math.min($("map").clientWidth, $("map").clientHeight) > 400 ? 40 : 12;
  state.map.fitBounds([[w, s], [Math.max(e, w + 0.01), Math.max(n, s + 0.01)]],
                      {padding: pad, animate: false, maxZoom: 11});
  $("map").dataset.extent = [w, s, e, n].map((x) => x.toFixed(4)).join(",");
}

function agreementLayers(a) {
  state.agreement = a;
  upsert("agreement", a);
  addLayer({id: "zones", type: "fill", source: "agreement",
    filter: ["==", ["get", "layer"], "zone"],
    paint: {"fill-color": ["match", ["get", "kind"], "buffer", ZONES.buffer,
      "withdrawal", ZONES.withdrawal, ZONES.protected_site], "fill-opacity": 0.35}}, "z-agreement");
  addLayer({id: "sectors", type: "line", source: "agreement",
    filter: ["==", ["get", "layer"], "sector"],
    paint: {"line-color": "#555", "line-width": 1, "line-dasharray": [3, 2]}}, "z-agreement");
  addLayer({id: "loc", type: "line", source: "agreement",
    filter: ["==", ["get", "layer"], "line_of_contact"],
    paint: {"line-color": "#b00020", "line-width": 2.5}}, "z-agreement");
  addLayer({id: "sites", type: "circle", source: "agreement",
    filter: ["==", ["get", "layer"], "protected_site"],
    paint: {"circle-radius": 6, "circle-color": "#1f77b4", "circle-stroke-color": "#fff",
            "circle-stroke-width": 1.5}}, "z-agreement");
}

// ------------------------------------------------------------------ coverage
function inRing(x, y, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i], [xj, yj] = ring[j];
    if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function polygons(geom) {
  if (!geom) return [];
  if (geom.type === "Polygon") return [geom.coordinates];
  if (geom.type === "MultiPolygon") return geom.coordinates;
  return [];
}

function inPolygons(x, y, polys) {
  return polys.some((p) => inRing(x, y, p[0]) && !p.slice(1).some((h) => inRing(x, y, h)));
}

function overlapsDay(props, day) {
  const a = Date.parse(props.start), b = Date.parse(props.end);
  const d0 = Date.parse(day + "T00:00:00Z");
  return !(b < d0 || a >= d0 + DAY);
}

// where nothing could see on ``day``: cells of the sectors (or of the agreement's extent)
// outside every sensor-network area and drone patrol active that day; the satellite's
// clear-sky overpass is area-wide and shown in the legend and the hatch's label
export function unseenCells(agreement, coverage, day, across = 90) {
  const sectors = (agreement?.features || []).filter((f) => f.properties.layer === "sector")
    .flatMap((f) => polygons(f.geometry));
  const ext = sectors.length ? extentOf({features: sectors.map((p) => ({
    geometry: {type: "Polygon", coordinates: p}}))}) : extentOf(agreement);
  if (!ext) return {type: "FeatureCollection", features: []};
  // the network's area and the patrols, with their periods (the per-day coverage maps'
  // layers of /coverage, "not_observed" among them, are for GIS and the bulletin)
  const seen = (coverage?.features || []).filter((f) => f.properties.layer in COVER && day
    && overlapsDay(f.properties, day))
    .flatMap((f) => polygons(f.geometry));
  const [[w, s], [e, n]] = ext;
  const step = Math.max(e - w, n - s) / across;
  const feats = [];
  for (let y = s; y < n; y += step) {
    for (let x = w; x < e; x += step) {
      const cx = x + step / 2, cy = y + step / 2;
      if (sectors.length && !inPolygons(cx, cy, sectors)) continue;
      if (inPolygons(cx, cy, seen)) continue;
      feats.push({type: "Feature", properties: {}, geometry: {type: "Polygon", coordinates: [[
        [x, y], [x + step, y], [x + step, y + step], [x, y + step], [x, y]]]}});
    }
  }
  return {type: "FeatureCollection", features: feats};
}

function satelliteOn(day) {
  const row = (state.coverage?.satellite_days || []).find((d) => d.date === day);
  const pct = (c) => `${Math.round(c * 100)}%`;
  if (!row) {
    // no cloud record for the day: the coverage maps' own judgement, when they have one
    // (a run without a cloud file sees the satellite data but not the cloud)
    const mapped = (state.coverage?.maps?.days || []).find((d) => d.date === day)?.satellite;
    if (mapped?.state === "cloud_unknown") return {clear: false, text: t("sat_unknown", {day})};
    if (mapped?.state === "clear" && mapped.cloud_cover !== null && mapped.cloud_cover !== undefined) {
      return {clear: true, text: t("sat_clear", {day, cloud: pct(mapped.cloud_cover)})};
    }
  }
  if (!row || !row.data) return {clear: false, text: t("sat_nodata", {day})};
  if (row.cloud_cover === null || row.cloud_cover === undefined) {
    return {clear: false, text: t("sat_unknown", {day})};
  }
  return row.cloud_cover <= 0.5 ? {clear: true, text: t("sat_clear", {day, cloud: pct(row.cloud_cover)})}
    : {clear: false, text: t("sat_cloudy", {day, cloud: pct(row.cloud_cover)})};
}

function coverageLayers(c) {
  state.coverage = c;
  upsert("coverage", c);
  upsert("unseen", {type: "FeatureCollection", features: []});
  addLayer({id: "unseen", type: "fill", source: "unseen",
            paint: {"fill-pattern": "hatch", "fill-antialias": false}}, "z-coverage");
  addLayer({id: "coverage", type: "fill", source: "coverage",
    paint: {"fill-color": ["match", ["get", "layer"], "patrol", COVER.patrol, COVER.sensor_coverage],
            "fill-opacity": 0.25, "fill-outline-color": "#0b6e4f"}}, "z-coverage");
}

function drawCoverage() {
  if (!state.coverage || !state.day) return;
  const cells = unseenCells(state.agreement, state.coverage, state.day);
  upsert("unseen", cells);
  const d0 = `${state.day}T00:00:00`, d1 = `${state.day}T23:59:59`;
  state.map.setFilter("coverage", ["all", ["in", ["get", "layer"],
                                           ["literal", Object.keys(COVER)]],
                                   ["<=", ["get", "start"], d1 + "~"],
                                   [">=", ["get", "end"], d0]]);
  $("map").dataset.unseenCells = String(cells.features.length);
  const sat = satelliteOn(state.day);
  state.map.setPaintProperty("unseen", "fill-opacity", sat.clear ? 0.55 : 1);
  return sat;
}

// ------------------------------------------------------------------ incidents
function incidentFeatures(items) {
  return items.map((i) => ({type: "Feature",
    geometry: {type: "Point", coordinates: [i.location.lon, i.location.lat]},
    properties: {id: i.id, category: i.category, status: i.status,
                 t: Date.parse(i.time_start), when: i.time_start, place: placeOf(i),
                 rule: (i.attributes || {}).rule || "", sector: i.sector_id || ""}}));
}

// a distance as people read it: whole kilometres from 10 km up, one decimal below
// (the public grid's 11.132 km reads "11"), in the page's language
export function km(value, lang = state.lang) {
  const v = Number(value);
  if (!Number.isFinite(v)) return "";
  return new Intl.NumberFormat(lang || "en", {maximumFractionDigits: v >= 10 ? 0 : 1})
    .format(v);
}

function placeOf(i) {
  const p = i.place || i.attributes?.place || i.location?.place;
  if (p) return typeof p === "string" ? p : (p.text || p.label || JSON.stringify(p));
  const lat = i.location.lat, lon = i.location.lon;
  return `${Math.abs(lat).toFixed(4)}° ${lat >= 0 ? "N" : "S"}, ` +
         `${Math.abs(lon).toFixed(4)}° ${lon >= 0 ? "E" : "W"}`;
}

function incidentLayer(id, fc) {
  upsert(id, fc);
  addLayer({id, type: "circle", source: id, paint: {
    "circle-radius": ["match", ["get", "status"], "verified", 8, 6],
    "circle-color": ["match", ["get", "category"], ...Object.entries(COLORS).flat(), "#444"],
    "circle-stroke-color": ["match", ["get", "status"], "verified", "#000",
      "automatic", "#fff", "#666"], "circle-stroke-width": 1.5}}, "z-incidents");
  if (state.map.__popups?.has(id)) return;
  (state.map.__popups ||= new Set()).add(id);
  state.map.on("click", id, (e) => {
    if (state.picking) return;
    const p = e.features[0].properties;
    const content = el("div", {class: "popup"},
      el("div", {class: "popup-title"}, codeLabel(p.category)), p.place, el("br"), p.when || p.date || "",
      el("br"), `${t("status")}: ${p.status}`,
      p.precision_km ? [el("br"), t("precision", {km: km(p.precision_km)})] : null,
      p.rule ? [el("br"), p.rule] : null, p.id ? [el("br"), el("code", {}, p.id)] : null);
    new maplibregl.Popup().setLngLat(e.lngLat).setDOMContent(content).addTo(state.map);
  });
  state.map.on("mouseenter", id, () => { state.map.getCanvas().style.cursor = "pointer"; });
  state.map.on("mouseleave", id, () => { state.map.getCanvas().style.cursor = ""; });
}

async function loadIncidents() {
  const page = await api("/incidents?limit=1000");
  state.incidents = page.items;
  incidentLayer("incidents", {type: "FeatureCollection",
                              features: incidentFeatures(page.items)});
}

// ------------------------------------------------------------------ the public's view
async function publicView() {
  const note = [], absent = [], refused = [];
  const get = async (path) => {
    try { return await api(path); } catch (e) {
      const s = e?.__status;
      if (s === 404 || s === 405) absent.push("/api/v1" + path);
      else if (s === 401 || s === 403) refused.push(path.split("/").pop());
      else note.push(humanError(e, s));
      return null;
    }
  };
  const [bulletins, counts, incidents] = await Promise.all(
    ["/public/bulletins", "/public/counts", "/public/incidents"].map(get));
  state.counts = counts;
  state.publicIncidents = incidents;
  if (refused.length) note.unshift(t("public_sign_in", {what: refused.join(", ")}));
  if (absent.length) note.unshift(t("public_absent", {path: absent.join(", ")}));
  if (counts?.precision_km) note.push(t("precision", {km: km(counts.precision_km)}));
  $("public-note").replaceChildren(...[...new Set(note)].map((n) => el("span", {}, n, " ")));
  // GET /public/bulletins: {files, products: [{name, kind, report_date, ...}]}; the
  // bulletins to read (HTML, PDF) first, the machine-readable files after them
  const order = {html: 0, pdf: 1};
  const shown = [...(bulletins?.products || [])].sort((a, b) =>
    (b.report_date || "").localeCompare(a.report_date || "") ||
    (order[a.kind] ?? 2) - (order[b.kind] ?? 2) || a.name.localeCompare(b.name));
  $("public-bulletins").replaceChildren(...shown.map((b) => el("li", {},
    el("a", {href: "/api/v1/public/bulletins/" + encodeURIComponent(b.name),
             target: "_blank", rel: "noopener noreferrer"},
      `${b.report_date} · ${b.kind}`), " ", el("span", {class: "muted"}, b.name))));
  if (bulletins && !shown.length) {
    $("public-bulletins").replaceChildren(el("li", {}, t("no_bulletins")));
  }
  if (incidents?.features) {
    incidentLayer("public-incidents", {type: "FeatureCollection", features:
      incidents.features.map((f) => ({...f, properties: {...f.properties,
        t: Date.parse(f.properties.date || f.properties.time_start || f.properties.when || "")}}))});
  }
  if (counts?.days && state.agreement) {
    upsert("sector-counts", sectorCounts(null));
    addLayer({id: "sector-counts", type: "fill", source: "sector-counts", paint: {
      "fill-color": ["interpolate", ["linear"], ["get", "count"], 0, "rgba(255,255,255,0)",
        1, "#fcbba1", 5, "#fb6a4a", 20, "#a50f15"], "fill-opacity": 0.45}}, "z-counts");
    addLayer({id: "sector-count-labels", type: "symbol", source: "sector-counts",
      filter: [">", ["get", "count"], 0], layout: {"text-font": [FONT], "text-size": 14,
        "text-field": ["to-string", ["get", "count"]]},
      paint: {"text-color": "#67000d", "text-halo-color": "#fff", "text-halo-width": 2}},
    "z-labels");
  }
}

function sectorCounts(day) {
  const by = {};
  for (const r of state.counts?.days || []) {
    if (day && r.date === day) by[r.sector] = (by[r.sector] || 0) + r.count;
  }
  const feats = (state.agreement?.features || []).filter((f) => f.properties.layer === "sector")
    .map((f) => ({...f, properties: {...f.properties,
      count: by[f.properties.id] ?? by[f.properties.name] ?? 0}}));
  return {type: "FeatureCollection", features: feats};
}

function drawCounts() {
  if (!state.counts) return;
  const rows = (state.counts.days || []).filter((r) => r.date === state.day);
  $("counts-title").textContent = t("public_counts", {day: state.day || "-"});
  const body = rows.length ? rows.map((r) => el("tr", {}, el("td", {}, r.sector),
    el("td", {}, codeLabel(r.category)), el("td", {class: "num"}, r.count)))
    : [el("tr", {}, el("td", {colspan: "3"}, t("public_none_on_day", {day: state.day || "-"})))];
  if (rows.length > 1) {
    body.push(el("tr", {class: "total"}, el("td", {colspan: "2"}, t("total")),
      el("td", {class: "num"}, rows.reduce((a, r) => a + r.count, 0))));
  }
  $("counts").tBodies[0].replaceChildren(...body);
  if (state.map.getSource("sector-counts")) upsert("sector-counts", sectorCounts(state.day));
}

// ------------------------------------------------------------------ time slider
function collectDays() {
  const days = new Set();
  for (const i of state.incidents) days.add(i.time_start.slice(0, 10));
  for (const r of state.counts?.days || []) days.add(r.date);
  for (const f of state.publicIncidents?.features || []) {
    const d = f.properties.date || f.properties.time_start;
    if (d) days.add(String(d).slice(0, 10));
  }
  // the days the coverage maps describe (up to the report day), so that the slider
  // reaches the report day even when the last incident is older
  for (const d of state.coverage?.maps?.days || []) days.add(d.date);
  for (const d of state.coverage?.satellite_days || []) days.add(d.date);
  state.days = [...days].filter((d) => /^\d{4}-\d{2}-\d{2}$/.test(d)).sort();
}

function slider() {
  collectDays();
  const input = $("time");
  if (!state.days.length) {
    input.disabled = true;
    state.day = null;
    document.querySelector("#slider [data-i18n=up_to]").hidden = true;
    $("day").textContent = t("no_days");
    legend(null);
    return;
  }
  const first = Date.parse(state.days[0]) / DAY, last = Date.parse(state.days.at(-1)) / DAY;
  input.disabled = false;
  document.querySelector("#slider [data-i18n=up_to]").hidden = false;
  input.min = first; input.max = last;
  if (state.day === null || +input.value < first || +input.value > last) input.value = last;
  input.oninput = showDay;
  showDay();
}

function showDay() {
  const d = +$("time").value;
  state.day = new Date(d * DAY).toISOString().slice(0, 10);
  $("day").textContent = state.day;
  const until = (d + 1) * DAY;
  for (const id of ["incidents", "public-incidents"]) {
    if (state.map.getLayer(id)) state.map.setFilter(id, ["<", ["get", "t"], until]);
  }
  drawCounts();
  legend(drawCoverage());
}

function legendItem(color, label, cls = "") {
  return el("span", {class: "item " + cls}, el("i", {background: color}), label);
}

function legend(sat) {
  const items = [legendItem("#b00020", t("line_of_contact"), "line"),
    legendItem(ZONES.buffer, t("zones")), legendItem("#a39e93", t("oblasts"), "line dashed"),
    legendItem("#444", t("places"))];
  if (state.coverage) {
    items.push(legendItem(COVER.sensor_coverage, t("cov_sensors")),
               legendItem(COVER.patrol, t("cov_patrols")));
    if (state.day) {
      items.push(el("span", {class: "item", id: "legend-unseen"}, el("i", {class: "hatch"}),
        t(sat?.clear ? "cov_unseen_sat" : "cov_unseen", {day: state.day})));
      if (sat) items.push(el("span", {class: "item", id: "legend-sat"}, el("i", {class: "sat"}), sat.text));
    }
  }
  const cats = new Set([...state.incidents.map((i) => i.category),
    ...(state.publicIncidents?.features || []).map((f) => f.properties.category)]);
  for (const [k, c] of Object.entries(COLORS)) if (cats.has(k)) items.push(legendItem(c, codeLabel(k)));
  items.push(el("span", {class: "item muted"}, t("no_roads")));
  $("legend").replaceChildren(...items);
}

// ------------------------------------------------------------------ review
function flyTo(i) {
  state.map.flyTo({center: [i.location.lon, i.location.lat],
                   zoom: Math.max(state.map.getZoom(), 10), duration: 600});
}

async function reviewQueue() {
  // each item carries the actions the server allows this principal now (two-person
  // rule, role, claims): the dashboard offers exactly those
  const q = await api("/review/queue?limit=50");
  $("review").hidden = false;
  state.queue = q.items;
  const items = q.items.map((i) => queueItem(i));
  $("queue").replaceChildren(...(items.length ? items : [el("li", {}, t("queue_empty"))]));
}

// the decisions, in the order offered; "verified" is labelled by the state it confirms
const DECISIONS = [["pending_verification", "propose"], ["verified", "verify"],
  ["unverifiable", "unverifiable"], ["inaccurate", "inaccurate"],
  ["duplicate", "duplicate"], ["rejected", "reject"]];

function queueItem(i) {
  const a = i.attributes || {};
  const sources = Array.isArray(a.sources) ? a.sources.join(", ")
    : (a.source || `${i.n_sources}`);
  const li = el("li", {"data-id": i.id, tabindex: "0"},
    el("div", {}, el("b", {}, codeLabel(i.category)), " ", i.time_start, " ", el("em", {}, codeLabel(i.status))),
    el("div", {class: "where"}, `${t("where")}: `, el("span", {class: "place"}, placeOf(i)),
       i.sector_id ? ` · ${t("sector")} ${i.sector_id}` : ""),
    el("div", {class: "sources"}, `${t("sources")}: ${sources}`),
    el("div", {class: "rule"}, a.rule || t("no_rule")));
  li.onclick = (ev) => { if (!ev.target.closest("button, form")) flyTo(i); };
  const actions = el("div", {class: "actions"});
  li.append(actions);
  const allowed = new Set(i.actions || []);
  const refused = i.actions_refused || {};
  const button = (label, action, open, blocked) => {
    const b = el("button", {type: "button", "data-action": action, disabled: !!blocked,
                            title: blocked || null, "aria-disabled": blocked ? "true" : null}, label);
    b.onclick = () => open(li, i, label, action);
    actions.append(b);
  };
  for (const [status, key] of DECISIONS) {
    const open = status === "duplicate" ? askDuplicate : askReason;
    if (allowed.has(status)) button(t(key), status, open);
    // a pending incident says why this principal may not confirm it, rather than
    // hiding the step
    else if (status === "verified" && i.status === "pending_verification" && refused.verified) {
      button(t(key), status, open, `${refused.verified} (${t("two_person")})`);
    }
  }
  if (allowed.has("modify")) button(t("modify"), "modify", askModify);
  if (!allowed.size && Object.keys(refused).length) {
    actions.append(el("span", {class: "muted held"}, Object.values(refused)[0]));
  }
  const show = el("button", {type: "button", class: "show"}, t("show_on_map"));
  show.onclick = () => flyTo(i);
  actions.append(show);
  return li;
}

// a form under the item: its own fields, then the reason (required, kept in the record)
function reasonForm(li, label, fields, submit) {
  li.querySelector("form.reason")?.remove();
  const form = el("form", {class: "reason"}, ...fields,
    el("label", {}, t("reason"), el("textarea", {name: "why", rows: "2", required: true})),
    el("button", {type: "submit"}, t("confirm", {action: label})),
    el("button", {type: "button", class: "cancel"}, t("cancel")));
  form.querySelector(".cancel").onclick = () => form.remove();
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const why = form.elements.why.value.trim();
    if (!why) { say(t("reason_needed"), true); return; }
    form.querySelector("[type=submit]").disabled = true;
    await submit(form, why);
  };
  li.append(form);
  (form.querySelector("input, select, textarea")).focus();
  return form;
}

function askReason(li, i, label, status) {
  reasonForm(li, label, [], (form, why) => act(i, "decide", {status, why}));
}

function askDuplicate(li, i, label) {
  // the original: another incident of the queue, or any id typed in
  const listId = `dups-${i.id}`;
  const others = (state.queue || []).filter((o) => o.id !== i.id);
  reasonForm(li, label, [
    el("label", {}, t("duplicate_of"), el("input", {name: "of", required: true, list: listId,
                                                     autocomplete: "off"})),
    el("datalist", {id: listId}, ...others.map((o) => el("option", {value: o.id},
      `${codeLabel(o.category)} · ${placeOf(o)} · ${o.time_start}`)))],
  (form, why) => act(i, "decide", {status: "duplicate", why,
                                   duplicate_of: form.elements.of.value.trim()}));
}

// a datetime-local value (UTC) from an ISO time
function localValue(iso) { return String(iso || "").slice(0, 16); }

function askModify(li, i, label) {
  const loc = i.location || {};
  const num = (name, value, attrs) => el("label", {}, t(`m_${name}`),
    el("input", {name, type: "number", step: "any", value, ...attrs}));
  const cats = Object.keys(COLORS).filter((c) => c !== "explosion");
  reasonForm(li, label, [
    el("div", {class: "row"}, num("lat", loc.lat, {min: "-90", max: "90"}),
       num("lon", loc.lon, {min: "-180", max: "180"})),
    num("uncertainty_m", loc.uncertainty_m, {min: "1", max: "100000"}),
    el("label", {}, t("m_time"), el("input", {name: "time_start", type: "datetime-local",
                                             step: "60", value: localValue(i.time_start)})),
    el("label", {}, t("category"), el("select", {name: "category"},
      ...[...new Set([i.category, ...cats, "explosion.airburst", "explosion.undetermined"])]
        .map((c) => el("option", {value: c, selected: c === i.category}, codeLabel(c)))))],
  (form, why) => {
    // only what changed is sent: the server refuses a modification that changes nothing
    const f = form.elements, body = {why};
    if (+f.lat.value !== loc.lat) body.lat = +f.lat.value;
    if (+f.lon.value !== loc.lon) body.lon = +f.lon.value;
    if (+f.uncertainty_m.value !== loc.uncertainty_m) body.uncertainty_m = +f.uncertainty_m.value;
    if (f.time_start.value && f.time_start.value !== localValue(i.time_start)) {
      body.time_start = utcIso(f.time_start.value);
    }
    if (f.category.value !== i.category) body.category = f.category.value;
    return act(i, "modify", body);
  });
}

// claim, act, and give the claim back (a decision releases it; a modification keeps it)
async function act(i, what, body) {
  const path = `/review/${encodeURIComponent(i.id)}`;
  try {
    await api(`${path}/claim`, {method: "POST"});
    const r = await api(`${path}/${what}`, {method: "POST", body: JSON.stringify(body)});
    say(what === "modify" ? t("modified", {id: i.id}) : t("decided", {id: i.id, status: r.status}));
    if (what === "modify") await api(`${path}/release`, {method: "POST"}).catch(() => null);
  } catch (e) {
    failed(e);
    // give the claim back so that someone else can act on it
    await api(`${path}/release`, {method: "POST"}).catch(() => null);
  }
  await refresh();
}

async function refresh() {
  try {
    if (can("incidents")) await loadIncidents();
    if (can("review")) await reviewQueue();
    slider();
  } catch (e) { failed(e); }
}

// ------------------------------------------------------------------ allegations
function setPin(lat, lon) {
  $("a-lat").value = lat.toFixed(5);
  $("a-lon").value = lon.toFixed(5);
  state.picking = false;
  $("map").classList.remove("picking");
  $("a-pick").textContent = t("a_pick");
  state.pin ||= new maplibregl.Marker({color: "#b00020"});
  state.pin.setLngLat([lon, lat]).addTo(state.map);
  say(t("a_picked", {lat: lat.toFixed(4), lon: lon.toFixed(4)}));
}

$("a-pick").onclick = () => {
  state.picking = !state.picking;
  $("map").classList.toggle("picking", state.picking);
  $("a-pick").textContent = t(state.picking ? "a_picking" : "a_pick");
  // on a phone the map is above the form: bring it into view
  if (state.picking) $("mapbox").scrollIntoView({block: "start"});
};

// a datetime-local value, read as UTC (the label says so), as ISO-8601 with Z
export function utcIso(value) {
  if (!value) return null;
  const full = value.length === 16 ? value + ":00" : value;
  const ms = Date.parse(full + "Z");
  return Number.isNaN(ms) ? null : new Date(ms).toISOString().replace(".000Z", "Z");
}

$("allegation").onsubmit = async (ev) => {
  ev.preventDefault();
  const body = {text: $("a-text").value};
  if ($("a-place").value) body.place = $("a-place").value;
  if ($("a-lat").value && $("a-lon").value) { body.lat = +$("a-lat").value; body.lon = +$("a-lon").value; }
  const when = utcIso($("a-start").value);
  if (when) body.time_start = when;
  if ($("a-cat").value) body.category = $("a-cat").value;
  try {
    const r = await api("/allegations", {method: "POST", body: JSON.stringify(body)});
    say(t("a_received", {name: r.name}));
    $("allegation").reset();
    state.pin?.remove();
    await myAllegations();
  } catch (e) { failed(e); }
};

// what the filer may follow of their own allegations: received, under review, ruled
async function myAllegations() {
  const r = await api("/allegations/mine?limit=50");
  const items = r.items.map((a) => el("li", {"data-id": a.allegation_id, "data-status": a.status},
    el("div", {}, el("b", {}, a.allegation_id), " ", a.received_at || "", " ",
       el("em", {class: "status"}, t(`a_status_${a.status}`))),
    el("div", {class: "text"}, a.text || ""),
    // where it was placed, as monitors say it ("8 km SW of Avdiyivka"), never "coordinates"
    a.place ? el("div", {class: "where"}, `${t("where")}: `, el("span", {class: "place"}, a.place))
      : null,
    a.ruling && a.status === "ruled" ? el("div", {class: "ruling"},
      el("b", {}, t(`ruling_${a.ruling.ruling}`)), ": ", a.ruling.reason || "") : null));
  $("mine").replaceChildren(...(items.length ? items : [el("li", {}, t("mine_empty"))]));
}

$("mine-refresh").onclick = () => myAllegations().catch(failed);

async function bulletins() {
  const b = await api("/bulletins");
  $("bulletins").hidden = false;
  // the session cookie authenticates the link itself: the file opens in its own tab,
  // under the server's policy for published products (no script at all)
  $("bulletin-list").replaceChildren(...b.files.map((name) => el("li", {},
    el("a", {href: "/api/v1/bulletins/" + encodeURIComponent(name), target: "_blank",
             rel: "noopener noreferrer"}, name))));
}

// ------------------------------------------------------------------ start
const RIGHTS = {
  incidents: ["admin", "analyst", "reviewer", "coalition", "liaison"],
  coverage: ["admin", "analyst", "reviewer", "coalition"],
  review: ["admin", "analyst", "reviewer"],
  allege: ["admin", "analyst", "reviewer", "coalition", "liaison", "public"],
  bulletins: ["admin", "analyst", "reviewer", "coalition", "liaison", "public"],
  agreement: ["admin", "analyst", "reviewer", "coalition", "liaison", "public"],
};
const can = (action) => !!state.me && RIGHTS[action].includes(state.me.role);

async function view() {
  document.body.dataset.mapReady = "";
  document.body.dataset.view = state.me ? "signed" : "public";
  let agreement = null;
  try {
    agreement = await api("/agreement");
    agreementLayers(agreement);
  } catch (e) {
    if (state.me && e?.__status !== 404) failed(e);
  }
  if (can("coverage")) {
    const c = await api("/coverage").catch(() => null);
    if (c) coverageLayers(c);
  }
  const tasks = [publicView()];
  if (can("incidents")) tasks.push(loadIncidents());
  if (can("review")) tasks.push(reviewQueue());
  if (can("bulletins")) tasks.push(bulletins());
  if (can("allege")) tasks.push(myAllegations());
  for (const r of await Promise.allSettled(tasks)) if (r.status === "rejected") failed(r.reason);
  $("allege").hidden = !can("allege");
  labelLayers();
  // the mission's own extent: the agreement's, else what the public may see
  fit(extentOf(agreement) || extentOf(state.publicIncidents) ||
      extentOf({features: state.admin1.features.filter((f) => f.properties.layer === "outline")}));
  slider();
  state.map.once("idle", () => { document.body.dataset.mapReady = "1"; });
  state.map.triggerRepaint();
}

async function signedIn(session) {
  state.me = session.me;
  state.csrf = session.csrf;
  const role = state.me.role + (state.me.party ? ", " + state.me.party : "");
  $("who").textContent = t("signed_in_as", {name: state.me.name, role});
  $("signin").hidden = true;
  $("signout").hidden = false;
  await view();
}

async function signIn(token) {
  let session;
  try {
    session = await api("/session", {method: "POST", body: JSON.stringify({token})});
  } catch (e) { failed(e); return; }
  $("token").value = "";
  await signedIn(session);
}

$("signin").onsubmit = (ev) => { ev.preventDefault(); signIn($("token").value.trim()); };
$("signout").onclick = async () => {
  await api("/session", {method: "DELETE"}).catch(() => null);
  location.reload();
};
$("lang").onchange = async () => {
  const url = new URL(location.href);
  url.searchParams.set("lang", $("lang").value);
  history.replaceState(null, "", url);
  await loadLanguage($("lang").value);
  if (state.me) {
    const role = state.me.role + (state.me.party ? ", " + state.me.party : "");
    $("who").textContent = t("signed_in_as", {name: state.me.name, role});
  }
  labelLayers();
  if (can("review")) await reviewQueue().catch(failed);
  if (can("allege")) await myAllegations().catch(failed);
  await publicView();
  slider();
};

async function main() {
  await loadLanguage(pickLanguage());
  await buildMap();
  await basemap();
  // a page reloaded in a live session: the cookie says who, the server gives the CSRF token
  const session = await api("/session").catch(() => null);
  if (session) await signedIn(session);
  else await view();
}

main().catch((e) => say(humanError(e, e?.__status), true));
