// trucewatch dashboard: everything comes from this server (no CDN, no tile server).
//
// Safe by construction: every text from the server is put in the page as text
// (textContent, createElement), never parsed as HTML; the page's Content-Security-Policy
// allows no inline script and no eval. The API token is sent once, to sign in: the
// server answers with an HttpOnly session cookie (no script can read it) and the
// session's CSRF token, kept in this module's memory only and sent in X-CSRF-Token with
// every request that changes something.
import * as maplibregl from "./vendor/maplibre-gl.mjs";

const COLORS = {"explosion.impact": "#d62728", "fire": "#ff7f0e",
  "heavy_weapon_in_restricted_zone": "#7b3294", "strike_on_protected_site": "#000000",
  "heavy_weapon": "#9467bd", "vehicle_movement": "#8c8c8c",
  "restriction_of_monitors": "#1f77b4"};
const ZONES = {"buffer": "#f4a582", "withdrawal": "#fddbc7", "protected_site": "#92c5de"};
const $ = (id) => document.getElementById(id);
let me = null;
let csrf = "";
let map = null;
let incidents = [];

// an element with text children only (strings become text nodes, never HTML)
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "background") node.style.background = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  }
  return node;
}

async function api(path, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = {...(options.headers || {})};
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (!["GET", "HEAD"].includes(method)) headers["X-CSRF-Token"] = csrf;
  const r = await fetch("/api/v1" + path, {...options, method, headers,
                                           credentials: "same-origin"});
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw body;
  return body;
}

function say(text, error = false) {
  $("message").textContent = text;
  $("message").className = error ? "error" : "";
}

function failed(e) { say(e.message ? `${e.message}${e.fix ? " (" + e.fix + ")" : ""}` : String(e), true); }

async function signedIn(session) {
  me = session.me;
  csrf = session.csrf;
  $("who").textContent = `${me.name} (${me.role}${me.party ? ", " + me.party : ""})`;
  $("signin").hidden = true;
  $("signout").hidden = false;
  say("");
  await start();
}

async function signIn(token) {
  let session;
  try {
    session = await api("/session", {method: "POST", body: JSON.stringify({token})});
  } catch (e) { failed(e); return; }
  $("token").value = "";
  await signedIn(session);
}

function buildMap() {
  map = new maplibregl.Map({container: "map", center: [37.0, 48.3], zoom: 5.3,
    canvasContextAttributes: {preserveDrawingBuffer: true}, attributionControl: false,
    style: {version: 8, sources: {}, layers: [
      {id: "sea", type: "background", paint: {"background-color": "#d6e6f2"}}]}});
  map.addControl(new maplibregl.NavigationControl(), "top-right");
  return new Promise((resolve) => map.on("load", resolve));
}

async function basemap() {
  const topo = await (await fetch("/static/vendor/countries-50m.json")).json();
  const land = topojson.feature(topo, topo.objects.countries);
  map.addSource("countries", {type: "geojson", data: land});
  map.addLayer({id: "land", type: "fill", source: "countries", paint: {"fill-color": "#f2efe6"}});
  map.addLayer({id: "borders", type: "line", source: "countries",
                paint: {"line-color": "#9a9a9a", "line-width": 0.6}});
}

async function agreementLayers() {
  const a = await api("/agreement");
  map.addSource("agreement", {type: "geojson", data: a});
  map.addLayer({id: "zones", type: "fill", source: "agreement",
    filter: ["==", ["get", "layer"], "zone"],
    paint: {"fill-color": ["match", ["get", "kind"], "buffer", ZONES.buffer,
      "withdrawal", ZONES.withdrawal, ZONES.protected_site], "fill-opacity": 0.35}});
  map.addLayer({id: "sectors", type: "line", source: "agreement",
    filter: ["==", ["get", "layer"], "sector"],
    paint: {"line-color": "#555", "line-width": 1, "line-dasharray": [3, 2]}});
  map.addLayer({id: "loc", type: "line", source: "agreement",
    filter: ["==", ["get", "layer"], "line_of_contact"],
    paint: {"line-color": "#b00020", "line-width": 2.5}});
  map.addLayer({id: "sites", type: "circle", source: "agreement",
    filter: ["==", ["get", "layer"], "protected_site"],
    paint: {"circle-radius": 6, "circle-color": "#1f77b4", "circle-stroke-color": "#fff",
            "circle-stroke-width": 1.5}});
}

async function coverageLayer() {
  const c = await api("/coverage").catch(() => null);
  if (!c) return;
  map.addSource("coverage", {type: "geojson", data: c});
  map.addLayer({id: "coverage", type: "fill", source: "coverage",
    paint: {"fill-color": ["match", ["get", "layer"], "patrol", "#2ca02c", "#17becf"],
            "fill-opacity": 0.18, "fill-outline-color": "#0b6e4f"}});
}

function legendItem(color, label) {
  return el("span", {}, el("i", {background: color}), label);
}

async function incidentLayer() {
  const page = await api("/incidents?limit=1000");
  incidents = page.items;
  const feats = incidents.map((i) => ({type: "Feature",
    geometry: {type: "Point", coordinates: [i.location.lon, i.location.lat]},
    properties: {id: i.id, category: i.category, status: i.status,
                 t: Date.parse(i.time_start), when: i.time_start,
                 rule: (i.attributes || {}).rule || ""}}));
  map.addSource("incidents", {type: "geojson", data: {type: "FeatureCollection", features: feats}});
  map.addLayer({id: "incidents", type: "circle", source: "incidents", paint: {
    "circle-radius": ["match", ["get", "status"], "verified", 8, 6],
    "circle-color": ["match", ["get", "category"], ...Object.entries(COLORS).flat(), "#444"],
    "circle-stroke-color": ["match", ["get", "status"], "verified", "#000",
      "automatic", "#fff", "#666"], "circle-stroke-width": 1.5}});
  map.on("click", "incidents", (e) => {
    const p = e.features[0].properties;
    const content = el("div", {class: "popup"},
      el("div", {class: "popup-title"}, p.category), p.when, el("br"), p.status, el("br"),
      p.rule, el("br"), el("code", {}, p.id));
    new maplibregl.Popup().setLngLat(e.lngLat).setDOMContent(content).addTo(map);
  });
  const times = feats.map((f) => f.properties.t).sort((a, b) => a - b);
  if (times.length) {
    const day = 86400000;
    const first = Math.floor(times[0] / day), last = Math.ceil(times[times.length - 1] / day);
    $("time").min = first; $("time").max = last; $("time").value = last;
    const show = () => {
      const until = (+$("time").value + 1) * day;
      $("day").textContent = new Date(until - day).toISOString().slice(0, 10);
      map.setFilter("incidents", ["<", ["get", "t"], until]);
    };
    $("time").oninput = show;
    show();
  }
  const legend = [];
  if (map.getLayer("coverage")) {
    legend.push(legendItem("#17becf", "sensor coverage"), legendItem("#2ca02c", "drone patrols"));
  }
  for (const [k, c] of Object.entries(COLORS)) {
    if (incidents.some((i) => i.category === k)) legend.push(legendItem(c, k));
  }
  $("legend").replaceChildren(...legend);
}

async function reviewQueue() {
  const q = await api("/review/queue?limit=50");
  $("review").hidden = false;
  const items = [];
  for (const i of q.items) {
    const li = el("li", {"data-id": i.id}, el("b", {}, i.category), " ", i.time_start, " ",
      el("em", {}, i.status), el("br"), (i.attributes || {}).rule || "no rule", el("br"));
    const act = async (what, body) => {
      try {
        if (what !== "claim") await api(`/review/${encodeURIComponent(i.id)}/claim`, {method: "POST"});
        const r = what === "claim" ? await api(`/review/${encodeURIComponent(i.id)}/claim`, {method: "POST"})
          : await api(`/review/${encodeURIComponent(i.id)}/decide`, {method: "POST", body: JSON.stringify(body)});
        say(`${i.id}: ${r.status || "claimed"}`);
        await reviewQueue();
      } catch (e) {
        failed(e);
        // give the claim back so that someone else can act on it
        await api(`/review/${encodeURIComponent(i.id)}/release`, {method: "POST"}).catch(() => null);
      }
    };
    const button = (label, fn) => {
      const b = el("button", {type: "button"}, label);
      b.onclick = fn;
      li.appendChild(b);
    };
    const reason = () => prompt("Reason (kept in the record)") || "";
    if (i.status === "automatic") {
      button("Propose verified", () => act("decide", {status: "pending_verification", why: reason()}));
    } else {
      button("Verify", () => act("decide", {status: "verified", why: reason()}));
    }
    button("Reject", () => act("decide", {status: "rejected", why: reason()}));
    items.push(li);
  }
  $("queue").replaceChildren(...items);
}

async function bulletins() {
  const b = await api("/bulletins");
  $("bulletins").hidden = false;
  // the session cookie authenticates the link itself: the file opens in its own tab,
  // under the server's policy for published products (no script at all)
  $("bulletin-list").replaceChildren(...b.files.map((name) => el("li", {},
    el("a", {href: "/api/v1/bulletins/" + encodeURIComponent(name), target: "_blank",
             rel: "noopener noreferrer"}, name))));
}

$("allegation").onsubmit = async (ev) => {
  ev.preventDefault();
  const body = {text: $("a-text").value};
  if ($("a-place").value) body.place = $("a-place").value;
  if ($("a-lat").value && $("a-lon").value) { body.lat = +$("a-lat").value; body.lon = +$("a-lon").value; }
  if ($("a-start").value) body.time_start = $("a-start").value + ":00Z";
  if ($("a-cat").value) body.category = $("a-cat").value;
  try {
    const r = await api("/allegations", {method: "POST", body: JSON.stringify(body)});
    say(`allegation ${r.name} received`);
    $("allegation").reset();
  } catch (e) { failed(e); }
};

async function start() {
  const can = (action) => ({
    incidents: ["admin", "analyst", "reviewer", "coalition", "liaison"],
    coverage: ["admin", "analyst", "reviewer", "coalition"],
    review: ["admin", "analyst", "reviewer"],
    allege: ["admin", "analyst", "reviewer", "coalition", "liaison", "public"],
  })[action].includes(me.role);
  await buildMap();
  await basemap();
  await agreementLayers();
  if (can("coverage")) await coverageLayer();
  if (can("incidents")) await incidentLayer();
  if (can("review")) await reviewQueue();
  if (can("allege")) $("allege").hidden = false;
  await bulletins();
  map.once("idle", () => { document.body.dataset.mapReady = "1"; });
  map.triggerRepaint();
}

$("signin").onsubmit = (ev) => { ev.preventDefault(); signIn($("token").value.trim()); };
$("signout").onclick = async () => {
  await api("/session", {method: "DELETE"}).catch(() => null);
  location.reload();
};
// a page reloaded in a live session: the cookie says who, the server gives the CSRF token
api("/session").then(signedIn).catch(() => null);
