"""The web dashboard in headless Chromium (Debian's, driven by Playwright; no browser is
downloaded): the map is drawn, nothing is fetched from outside, and the main flows
(sign in, review an incident under the two-person rule, file an allegation) work."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.server import Server, free_port
from trucewatch.demo import ScenarioFiles
from trucewatch.storage import SqliteStore

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--enable-unsafe-swiftshader"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium "
                                "(apt-get install chromium; .ci/run installs it)")


@pytest.fixture()
def served(built_cycle: Path, scenario: ScenarioFiles, tmp_path: Path
           ) -> Iterator[tuple[Server, dict[str, str]]]:
    db = tmp_path / "s.db"
    shutil.copy(built_cycle / "trucewatch.db", db)
    store = SqliteStore(db)
    tokens = {name: store.add_token(name, role, "Side A liaison office" if role == "liaison"
                                    else None)
              for name, role in (("anna", "analyst"), ("ben", "reviewer"),
                                 ("pat", "public"))}
    store.close()
    # the processing worker runs (its pass stores the coverage with its maps, as the
    # cycle does, so the page reads the same layers whoever wrote them last)
    server = Server(db, free_port(), extra=("--agreement", str(scenario.agreement),
                                            "--bulletins", str(built_cycle))).start()
    yield server, tokens
    server.stop()


@pytest.fixture()
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-view='public'][data-map-ready='1']", timeout=60_000)
    page.fill("#token", token)
    page.click("#signin button")
    page.wait_for_selector("body[data-view='signed'][data-map-ready='1']", timeout=60_000)


def _rendered(page: Any, *layers: str) -> int:
    return int(page.evaluate("(ls) => window.trucewatch.map.queryRenderedFeatures("
                             "{layers: ls.filter((l) => window.trucewatch.map.getLayer(l))})"
                             ".length", list(layers)))


def _toast(page: Any, text: str, error: bool = False) -> str:
    sel = "#toast .toast.error" if error else "#toast .toast:not(.error)"
    page.wait_for_function("([s, t]) => [...document.querySelectorAll(s)].some("
                           "(n) => n.textContent.includes(t))", arg=[sel, text],
                           timeout=30_000)
    return str(page.evaluate("(s) => [...document.querySelectorAll(s)].map("
                             "(n) => n.textContent).join(' | ')", sel))


def _in_viewport(page: Any, selector: str) -> bool:
    return bool(page.evaluate("(s) => { const r = document.querySelector(s)"
                              ".getBoundingClientRect(); return r.top >= 0 && r.left >= 0 "
                              "&& r.bottom <= innerHeight && r.right <= innerWidth; }",
                              selector))


def test_map_is_drawn_offline(served: tuple[Server, dict[str, str]], browser: Any,
                              tmp_path: Path) -> None:
    server, tok = served
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    _sign_in(page, server.url, tok["anna"])
    shot = tmp_path / "map.png"
    page.locator("#map").screenshot(path=str(shot))
    from PIL import Image

    img = Image.open(shot).convert("RGB").resize((320, 200))
    colors = img.getcolors(maxcolors=100_000) or []
    top = max(n for n, _ in colors) / (320 * 200)
    assert len(colors) > 50 and top < 0.9, (len(colors), top)  # land, sea, zones, points
    # the line of contact (#b00020) and incidents are drawn
    reds = sum(n for n, c in colors
               if isinstance(c, tuple) and c[0] > 150 and c[1] < 60 and c[2] < 70)
    assert reds > 20
    legend = page.text_content("#legend")
    assert "sensor network" in legend and "explosion (impact)" in legend  # a label, not the code
    assert "oblast borders" in legend and "no roads" in legend
    # context: oblast borders and labels, place labels in the vendored font, scale, north
    assert _rendered(page, "admin1-lines") > 0
    assert _rendered(page, "oblast-labels") > 0
    assert _rendered(page, "places-1", "places-2", "places-3") >= 5
    assert any(u.endswith("noto-sans-latin-400-normal.woff2") for u in requests)
    assert "km" in page.text_content(".maplibregl-ctrl-scale")
    assert page.locator(".north-arrow").count() == 1
    outside = [u for u in requests if not u.startswith(server.url) and
               not u.startswith(("data:", "blob:"))]
    assert outside == []
    # the map opens on the mission's own extent (the agreement's sectors)
    w, s, e, n = map(float, page.get_attribute("#map", "data-extent").split(","))
    assert (w, s, e, n) == (33.5, 46.3, 40.5, 50.5)
    lon, lat = map(float, page.get_attribute("#map", "data-center").split(","))
    assert w < lon < e and s < lat < n
    # the published public bulletins, as the real API lists them, are linked
    # (the server's products clock adds its own, for the wall-clock day); the bulletin to
    # read before its machine-readable twin
    hrefs = [a.get_attribute("href") for a in page.locator("#public-bulletins a").all()]
    base = "/api/v1/public/bulletins/bulletin-2026-05-31-public"
    assert f"{base}.html" in hrefs and f"{base}.json" in hrefs, hrefs
    assert hrefs.index(f"{base}.html") < hrefs.index(f"{base}.json")
    # the time slider reads a day, never "-", and hides incidents after the chosen day; it
    # reaches the report day (the coverage maps' last day), after the last incident's
    assert page.text_content("#day") == "2026-05-31"
    shown = _rendered(page, "incidents")
    page.evaluate("() => { const t = document.getElementById('time'); t.value = t.min; "
                  "t.dispatchEvent(new Event('input')); }")
    page.wait_for_timeout(300)
    first = page.text_content("#day")
    assert first < "2026-05-30" and first[:2] == "20"
    assert _rendered(page, "incidents") < shown


def test_dashboard_fits_a_mission_far_from_ukraine(built_cycle: Path, tmp_path: Path,
                                                  browser: Any) -> None:
    """The map opens on the agreement's own extent: a line in the eastern Mediterranean."""
    line = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
            "geometry": {"type": "LineString", "coordinates": [[32.9, 35.17], [33.36, 35.18],
                                                               [33.9, 35.12]]}}]}
    sectors = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": sid, "name": sid.title()},
         "geometry": {"type": "Polygon", "coordinates": [[[a, 34.95], [b, 34.95], [b, 35.4],
                                                          [a, 35.4], [a, 34.95]]]}}
        for sid, a, b in (("west", 32.7, 33.4), ("east", 33.4, 34.1))]}
    (tmp_path / "line.geojson").write_text(json.dumps(line))
    (tmp_path / "sectors.geojson").write_text(json.dumps(sectors))
    agreement = tmp_path / "agreement.yaml"
    agreement.write_text(
        "format: trucewatch-agreement\nid: test-far-away\nname: A mission far away\n"
        "entry_into_force: '2026-04-20T00:00:00Z'\ngrace_period_hours: 0\ncrs: auto\n"
        "line_of_contact: {geojson: line.geojson}\n"
        "sides: [{id: left, name: North, buffer_km: 3}, {id: right, name: South, "
        "buffer_km: 3}]\nwithdrawal_km: {artillery: 10}\nprotected_sites: []\n"
        "sectors: {geojson: sectors.geojson}\n")
    db = tmp_path / "s.db"
    shutil.copy(built_cycle / "trucewatch.db", db)
    store = SqliteStore(db)
    token = store.add_token("ruth", "reviewer", None)
    store.close()
    server = Server(db, free_port(), extra=("--agreement", str(agreement))).start()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        _sign_in(page, server.url, token)
        w, s, e, n = map(float, page.get_attribute("#map", "data-extent").split(","))
        assert (w, s, e, n) == (32.7, 34.95, 34.1, 35.4)
        lon, lat = map(float, page.get_attribute("#map", "data-center").split(","))
        assert 32.7 < lon < 34.1 and 34.95 < lat < 35.4
        bounds = page.evaluate("() => window.trucewatch.map.getBounds().toArray()")
        assert bounds[0][0] <= 32.7 and bounds[1][0] >= 34.1  # all of it in view
        assert bounds[1][0] - bounds[0][0] < 5  # and zoomed to it, not to a continent
        assert _rendered(page, "loc") > 0
    finally:
        server.stop()


PUBLIC: dict[str, dict[str, Any]] = {
    # GET /api/v1/public/bulletins as the API answers it (routes.bulletins.listing)
    "bulletins": {"files": ["bulletin-2026-05-30-public.json",
                            "bulletin-2026-05-30-public.html"],
                  "products": [
        {"name": "bulletin-2026-05-30-public.json", "kind": "json",
         "report_date": "2026-05-30", "audience": "public", "sha256": "0" * 64,
         "size": 10, "published_at": "2026-05-30T19:30:00Z"},
        {"name": "bulletin-2026-05-30-public.html", "kind": "html",
         "report_date": "2026-05-30", "audience": "public", "sha256": "1" * 64,
         "size": 10, "published_at": "2026-05-30T19:30:00Z"}]},
    "counts": {"precision_km": 5, "days": [
        {"date": "2026-05-29", "sector": "north", "category": "explosion", "count": 2},
        {"date": "2026-05-30", "sector": "north", "category": "explosion", "count": 4},
        {"date": "2026-05-30", "sector": "south", "category": "fire", "count": 1}]},
    "incidents": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [37.75, 48.40]},
         "properties": {"place": "2 km SE of Zolote", "category": "explosion.impact",
                        "status": "verified", "precision_km": 5, "date": "2026-05-30"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [37.55, 47.95]},
         "properties": {"place": "4 km N of Marinka", "category": "fire",
                        "status": "verified", "precision_km": 5, "date": "2026-05-29"}}]},
}


def _stub_public(page: Any) -> None:
    """The public routes as the API publishes them (the shapes of issue 15), served by
    the page's own network stub: this tests the page's rendering of them only."""
    def serve(doc: dict[str, Any]) -> Any:
        return lambda route: route.fulfill(status=200, json=doc)

    for name, doc in PUBLIC.items():
        page.route(f"**/api/v1/public/{name}", serve(doc))


def test_public_view_shows_counts_bulletins_and_incidents(
        served: tuple[Server, dict[str, str]], browser: Any) -> None:
    server, _ = served
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    _stub_public(page)
    page.goto(server.url)  # no token
    page.wait_for_selector("body[data-view='public'][data-map-ready='1']", timeout=60_000)
    assert page.text_content("#day") == "2026-05-30"
    rows = page.locator("#counts tbody tr")
    assert rows.count() == 3  # north, south, and the day's total
    assert "north" in rows.nth(0).text_content() and "4" in rows.nth(0).text_content()
    assert "5" in rows.nth(2).text_content()
    assert "rounded to 5 km" in page.text_content("#public-note")
    # distances read as people read them: the public grid's 11.132 km is "11 km"
    assert page.evaluate("async () => { const m = await import('/static/app.js'); "
                         "return [m.km(11.132, 'en'), m.km(2.54, 'en'), m.km(2.54, 'uk'), "
                         "m.km(5, 'en')]; }") == ["11", "2.5", "2,5", "5"]
    links = page.locator("#public-bulletins a")
    assert links.count() == 2  # the HTML to read first, then the JSON
    assert links.nth(0).get_attribute("href") == \
        "/api/v1/public/bulletins/bulletin-2026-05-30-public.html"
    assert links.nth(1).get_attribute("href").endswith("bulletin-2026-05-30-public.json")
    assert _rendered(page, "public-incidents") == 2
    # the popup names the place and the precision
    xy = page.evaluate("() => window.trucewatch.map.project([37.75, 48.40])")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + xy["x"], box["y"] + xy["y"])
    popup = page.wait_for_selector(".maplibregl-popup", timeout=10_000).text_content()
    assert "2 km SE of Zolote" in popup and "5 km" in popup
    # an earlier day: its counts, and the later incident hidden
    page.evaluate("() => { const t = document.getElementById('time'); t.value = t.min; "
                  "t.dispatchEvent(new Event('input')); }")
    page.wait_for_function("() => document.getElementById('day').textContent == "
                           "'2026-05-29'")
    assert page.locator("#counts tbody tr").count() == 1
    page.wait_for_function("() => window.trucewatch.map.queryRenderedFeatures("
                           "{layers: ['public-incidents']}).length == 1", timeout=10_000)
    # the same page in Ukrainian: interface strings and the place labels
    page.select_option("#lang", "uk")
    page.wait_for_function("() => document.documentElement.lang == 'uk'")
    assert page.text_content("#public summary") == "Публічний огляд"
    assert page.text_content("#signin button") == "Увійти"
    assert "uk" in json.dumps(page.evaluate(
        "() => window.trucewatch.map.getLayoutProperty('places-1', 'text-field')"))
    assert "lang=uk" in page.url
    # the incidents' categories in the language too (the codes stay in English)
    page.wait_for_function("() => ['вибух (влучання)', 'пожежа'].every((w) => "
                           "document.getElementById('legend').textContent.includes(w))",
                           timeout=10_000)
    for lang, word in (("fr", "La vue publique"), ("ru", "Публичный обзор"),
                       ("en", "The public's view")):
        page.select_option("#lang", lang)
        page.wait_for_function("(w) => document.querySelector('#public summary')"
                               ".textContent == w", arg=word)


def test_public_view_says_what_is_missing(served: tuple[Server, dict[str, str]],
                                          browser: Any) -> None:
    """Without the public routes (a server that does not publish them) the page says so
    in a sentence, and the slider never reads '-'."""
    server, tok = served
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    for name in PUBLIC:
        page.route(f"**/api/v1/public/{name}", lambda route: route.fulfill(
            status=404, json={"error": "not_found", "status": 404, "message": "Not Found",
                              "fix": "check the path against /openapi.json", "details": []}))
    _sign_in(page, server.url, tok["pat"])
    note = page.text_content("#public-note")
    assert "does not publish a public view yet" in note and "/api/v1/public/counts" in note
    assert page.text_content("#day") not in ("", "-")


def _past_right_edge(page: Any) -> list[list[Any]]:
    """The elements drawn past the viewport's right edge (tag#id, right), the map's
    canvas left out (it is clipped by its container)."""
    return list(page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter((n) => n.getClientRects().length && !n.closest('.maplibregl-canvas-container'))
        .map((n) => [n.tagName + (n.id ? '#' + n.id : ''), n.getBoundingClientRect().right])
        .filter(([, r]) => r > innerWidth + 1)"""))


def test_desktop_layout_fits_the_page_box(served: tuple[Server, dict[str, str]],
                                          browser: Any) -> None:
    """At 1400x900, signed in, nothing is drawn past the page's right edge and the page
    does not scroll sideways (the phone size: test_phone_layout)."""
    server, tok = served
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    _sign_in(page, server.url, tok["anna"])
    page.locator("#queue li").first.wait_for()
    assert _past_right_edge(page) == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1400
    box = page.locator("#map").bounding_box()
    assert box["width"] > 800 and box["height"] > 600


def test_phone_layout(served: tuple[Server, dict[str, str]], browser: Any,
                      tmp_path: Path) -> None:
    server, tok = served
    page = browser.new_page(viewport={"width": 390, "height": 844})
    _sign_in(page, server.url, tok["anna"])
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    box = page.locator("#map").bounding_box()
    assert box["width"] > 300 and box["height"] > 300
    assert _past_right_edge(page) == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert page.locator("meta[name=viewport]").count() == 1
    # a message appears inside the viewport
    page.locator("#queue li").first.get_by_role("button", name="Show on map").click()
    page.locator("#a-pick").click()
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    _toast(page, "Point set")
    assert _in_viewport(page, "#toast .toast")


def test_review_two_person_rule_by_clicking(served: tuple[Server, dict[str, str]],
                                            browser: Any) -> None:
    import httpx

    server, tok = served
    dialogs: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    def refuse(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", refuse)
    _sign_in(page, server.url, tok["anna"])
    item = page.locator("#queue li").filter(has=page.get_by_role(
        "button", name="Propose verified")).first
    incident = item.get_attribute("data-id")
    got = httpx.get(f"{server.url}/api/v1/incidents/{incident}",
                    headers={"Authorization": f"Bearer {tok['anna']}"}).json()
    # the queue shows where, which sector and which sources
    text = item.text_content()
    # the place as monitors give it ("2 km E of Hostre", from the API's gazetteer), or the
    # coordinates when the item carries no place
    where = re.search(r"Where: (\d+(?:\.\d+)? km (?:N|NE|E|SE|S|SW|W|NW) of [^·]+|in [^·]+"
                      r"|[\d.]+° [NS])", text or "")
    assert where, text
    if "°" in where.group(1):
        assert f"{abs(got['location']['lat']):.4f}° N" in text
    assert f"Sector {got['sector_id']}" in text
    assert "Sources: " + ", ".join(got["attributes"]["sources"]) in text
    # clicking the item flies the map to it
    item.locator(".where").click()
    page.wait_for_function("([lon, lat]) => { const c = (document.getElementById('map')"
                           ".dataset.center || '').split(',').map(Number); return "
                           "Math.abs(c[0] - lon) < 0.01 && Math.abs(c[1] - lat) < 0.01; }",
                           arg=[got["location"]["lon"], got["location"]["lat"]],
                           timeout=10_000)
    # the actions offered are exactly those the server allows this principal now: an
    # analyst is not offered Verify on an automatic incident
    offered = item.evaluate("(li) => [...li.querySelectorAll('.actions [data-action]')]"
                            ".map((b) => b.dataset.action)")
    assert offered == got["actions"] == ["pending_verification", "unverifiable",
                                         "inaccurate", "duplicate", "rejected", "modify"]
    # the reason is asked in the page, and is required
    item.get_by_role("button", name="Propose verified").click()
    form = item.locator("form.reason")
    form.get_by_role("button", name="Confirm: Propose verified").click()
    assert "pending" not in httpx.get(f"{server.url}/api/v1/incidents/{incident}",
                                      headers={"Authorization": f"Bearer {tok['anna']}"}
                                      ).json()["status"]
    form.locator("textarea").fill("checked the drone frame")
    form.get_by_role("button", name="Confirm: Propose verified").click()
    _toast(page, "now pending_verification")
    assert _in_viewport(page, "#toast .toast")
    # the queue is refreshed: the proposer is not offered Verify (two-person rule)
    mine = page.locator(f"#queue li[data-id='{incident}']")
    verify = mine.get_by_role("button", name="Verify")
    verify.wait_for()
    assert verify.is_disabled()
    assert "two-person rule" in verify.get_attribute("title")
    # a second person, a reviewer, confirms by clicking
    page2 = browser.new_page(viewport={"width": 1400, "height": 900})
    page2.on("dialog", refuse)
    _sign_in(page2, server.url, tok["ben"])
    theirs = page2.locator(f"#queue li[data-id='{incident}']")
    assert theirs.get_by_role("button", name="Verify").is_enabled()
    theirs.get_by_role("button", name="Verify").click()
    theirs.locator("form.reason textarea").fill("second review agrees")
    theirs.get_by_role("button", name="Confirm: Verify").click()
    _toast(page2, "now verified")
    got = httpx.get(f"{server.url}/api/v1/incidents/{incident}",
                    headers={"Authorization": f"Bearer {tok['ben']}"}).json()
    assert got["status"] == "verified"
    assert [h["who"] for h in got["history"]][-2:] == ["anna", "ben"]
    assert [h["why"] for h in got["history"]][-2:] == ["checked the drone frame",
                                                         "second review agrees"]
    # the map and the queue are refreshed after the decision
    page2.wait_for_function("(id) => !document.querySelector(`#queue li[data-id='${id}']`)",
                            arg=incident)
    status = page2.evaluate("(id) => window.trucewatch.map.querySourceFeatures('incidents')"
                            ".filter((f) => f.properties.id == id).map((f) => "
                            "f.properties.status)[0]", incident)
    assert status == "verified"
    assert dialogs == []  # no prompt, alert or confirm box


def test_allegation_with_a_map_pin_and_a_date_picker(
        served: tuple[Server, dict[str, str]], browser: Any) -> None:
    import httpx

    server, tok = served
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    _sign_in(page, server.url, tok["pat"])
    assert page.is_hidden("#review")
    assert page.get_attribute("#a-start", "type") == "datetime-local"
    page.fill("#a-text", "Вибухи біля Торецька")
    page.click("#a-pick")
    box = page.locator("#map").bounding_box()
    x, y = box["width"] * 0.55, box["height"] * 0.45
    page.mouse.click(box["x"] + x, box["y"] + y)
    where = page.evaluate("([x, y]) => window.trucewatch.map.unproject([x, y])", [x, y])
    # the point under the pointer, to a few pixels (about 0.003 degrees each here)
    assert abs(float(page.input_value("#a-lat")) - where["lat"]) < 0.02
    assert abs(float(page.input_value("#a-lon")) - where["lng"]) < 0.02
    assert page.locator(".maplibregl-marker").count() == 1
    pinned = (float(page.input_value("#a-lat")), float(page.input_value("#a-lon")))
    # an impossible time: the refusal is one readable sentence, on screen
    page.fill("#a-start", "2031-05-30T07:30")
    page.click("#allegation button[type=submit]")
    error = _toast(page, "Please correct the form", error=True)
    assert "the time: time 2031-05-30T07:30:00+00:00 is in the future" in error
    assert "body.time_start" not in error and "Value error" not in error
    page.fill("#a-start", "2026-05-30T07:30")
    page.select_option("#a-cat", "explosion")
    page.click("#allegation button[type=submit]")
    name = _toast(page, "received").split("Allegation ")[-1].split(" ")[0]
    assert name.startswith("W-")
    items = httpx.get(f"{server.url}/api/v1/allegations?limit=1000",
                      headers={"Authorization": f"Bearer {tok['anna']}"}).json()["items"]
    filed = next(i["allegation"] for i in items if i["allegation"]["allegation_id"] == name)
    assert (filed["lat"], filed["lon"]) == pinned  # what the pin put in the form
    assert abs(filed["lat"] - where["lat"]) < 0.02 and abs(filed["lon"] - where["lng"]) < 0.02
    assert filed["time_start"].startswith("2026-05-30T07:30:00")
    # the filer follows it: received, in their own list; another filer does not see it
    mine = page.locator(f"#mine li[data-id='{name}']")
    mine.wait_for()
    assert mine.get_attribute("data-status") == "received"
    assert "received" in (mine.text_content() or "")
    # placed as monitors say it, from the gazetteer at the pin: never "coordinates"
    place = mine.locator(".place").text_content() or ""
    assert re.fullmatch(r"(\d+ km (N|NE|E|SE|S|SW|W|NW) of|in) \S.*", place), place
    assert "coordinates" not in (mine.text_content() or "")
    others = httpx.get(f"{server.url}/api/v1/allegations/mine",
                       headers={"Authorization": f"Bearer {tok['anna']}"}).json()["items"]
    assert name not in [o["allegation_id"] for o in others]


def test_modify_and_duplicate_by_clicking(served: tuple[Server, dict[str, str]],
                                          browser: Any) -> None:
    import httpx

    server, tok = served
    auth = {"Authorization": f"Bearer {tok['anna']}"}
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    _sign_in(page, server.url, tok["anna"])
    items = page.locator("#queue li").filter(has=page.get_by_role("button", name="Modify…"))
    first, second = items.nth(0).get_attribute("data-id"), items.nth(1).get_attribute("data-id")
    before = httpx.get(f"{server.url}/api/v1/incidents/{first}", headers=auth).json()
    # modify: the form is filled with the incident's values; only what changed is sent
    item = page.locator(f"#queue li[data-id='{first}']")
    item.get_by_role("button", name="Modify…").click()
    form = item.locator("form.reason")
    assert float(form.locator("input[name=lat]").input_value()) == before["location"]["lat"]
    lon = round(before["location"]["lon"] + 0.01, 5)
    form.locator("input[name=lon]").fill(str(lon))
    form.locator("select[name=category]").select_option("explosion.airburst")
    form.locator("textarea").fill("the airburst is 700 m east, per the drone frame")
    form.get_by_role("button", name="Confirm: Modify…").click()
    _toast(page, f"{first}: modified")
    after = httpx.get(f"{server.url}/api/v1/incidents/{first}", headers=auth).json()
    assert after["category"] == "explosion.airburst"
    assert after["location"]["lon"] == lon
    assert after["location"]["lat"] == before["location"]["lat"]
    assert after["history"][-1]["action"] == "modify"
    assert after["history"][-1]["why"] == "the airburst is 700 m east, per the drone frame"
    # duplicate: the original is named in the form, with a reason
    item = page.locator(f"#queue li[data-id='{second}']")
    item.get_by_role("button", name="Duplicate…").click()
    form = item.locator("form.reason")
    form.locator("input[name=of]").fill(first)
    form.locator("textarea").fill("the same impact, reported twice")
    form.get_by_role("button", name="Confirm: Duplicate…").click()
    _toast(page, f"{second}: now duplicate")
    dup = httpx.get(f"{server.url}/api/v1/incidents/{second}", headers=auth).json()
    assert dup["status"] == "duplicate" and dup["attributes"]["duplicate_of"] == first
    assert dup["actions"] == []
    page.wait_for_function("(id) => !document.querySelector(`#queue li[data-id='${id}']`)",
                           arg=second)
    # a duplicate of nothing is refused in one sentence, and the claim is given back
    third = page.locator("#queue li").filter(has=page.get_by_role("button", name="Duplicate…")
                                             ).nth(1)
    third_id = third.get_attribute("data-id")
    third.get_by_role("button", name="Duplicate…").click()
    third.locator("input[name=of]").fill("inc-nowhere")
    third.locator("textarea").fill("wrong id")
    third.get_by_role("button", name="Confirm: Duplicate…").click()
    error = _toast(page, "Not found", error=True)
    assert "inc-nowhere" in error
    still = httpx.get(f"{server.url}/api/v1/incidents/{third_id}", headers=auth).json()
    assert still["status"] == "automatic" and "duplicate" in still["actions"]


def test_coverage_gaps_are_drawn(served: tuple[Server, dict[str, str]],
                                 browser: Any) -> None:
    """Where no sensor network, patrol or clear-sky overpass could see is hatched on the
    map, from /coverage: inside the sensor network's area nothing is hatched, far from it
    the sector is; the legend says which day and what the satellite saw."""
    import httpx

    server, tok = served
    cov = httpx.get(f"{server.url}/api/v1/coverage",
                    headers={"Authorization": f"Bearer {tok['anna']}"}).json()
    area = next(f for f in cov["features"] if f["properties"]["layer"] == "sensor_coverage")
    from shapely.geometry import shape

    inside = shape(area["geometry"]).representative_point()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    _sign_in(page, server.url, tok["anna"])
    # the map opens on the report day (the coverage maps' last); the network reported
    # the day before: move the slider there
    assert page.text_content("#day") == "2026-05-31"
    day = area["properties"]["start"][:10]
    page.evaluate("(d) => { const t = document.getElementById('time'); "
                  "t.value = String(Date.parse(d) / 86400000); "
                  "t.dispatchEvent(new Event('input')); }", day)
    page.wait_for_function("(d) => document.getElementById('day').textContent == d", arg=day)
    assert int(page.get_attribute("#map", "data-unseen-cells")) > 0

    def hatched(lon: float, lat: float) -> int:
        return int(page.evaluate("([lon, lat]) => { const m = window.trucewatch.map; "
                                 "const p = m.project([lon, lat]); return m."
                                 "queryRenderedFeatures([p.x, p.y], {layers: ['unseen']})"
                                 ".length; }", [lon, lat]))

    assert hatched(inside.x, inside.y) == 0
    assert hatched(34.0, 50.3) == 1  # the north-west corner of the north sector
    legend = page.text_content("#legend-unseen")
    assert f"on {day}" in legend
    assert "satellite on" in page.text_content("#legend-sat")
    assert page.locator("#legend-unseen i.hatch").count() == 1


def test_stored_xss_stays_inert_and_no_script_reads_a_token(
        served: tuple[Server, dict[str, str]], browser: Any) -> None:
    """An analyst's incident whose rule is an HTML payload is shown as text in the queue
    and the map's popup; no script can read a token (HttpOnly session cookie, nothing in
    web storage); the page runs under a policy that forbids inline script."""
    import httpx

    server, tok = served
    payload = '<img src=x onerror="window.__pwned=(window.__pwned||0)+1">'
    r = httpx.post(f"{server.url}/api/v1/review/incidents",
                   headers={"Authorization": f"Bearer {tok['anna']}"}, json={
                       "why": "seen from the road", "category": "fire", "lat": 48.3,
                       "lon": 37.0, "uncertainty_m": 100.0,
                       "time_start": "2026-05-30T08:00:00Z", "rule": payload})
    assert r.status_code == 201, r.text
    incident = r.json()["id"]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    policy_errors: list[str] = []
    page.on("console", lambda m: policy_errors.append(m.text)
            if "Content Security Policy" in m.text else None)
    response = page.goto(server.url)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1]
    page.wait_for_selector("body[data-view='public'][data-map-ready='1']", timeout=60_000)
    page.fill("#token", tok["ben"])
    page.click("#signin button")
    page.wait_for_selector("body[data-view='signed'][data-map-ready='1']", timeout=60_000)
    # the review queue: the payload is text
    item = page.locator(f"#queue li[data-id='{incident}']")
    assert payload in item.text_content()
    assert page.locator("#queue img").count() == 0
    # the map's popup: the queue flies the map to the incident, which then sits at its centre
    item.get_by_role("button", name="Show on map").click()
    page.wait_for_function("() => Math.abs(window.trucewatch.map.getCenter().lat - 48.3) "
                           "< 1e-3 && !window.trucewatch.map.isMoving()")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    popup = page.wait_for_selector(".maplibregl-popup", timeout=10_000)
    assert payload in popup.text_content() and incident in popup.text_content()
    assert page.locator(".maplibregl-popup img").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    # no token where a script could read it
    assert page.evaluate("() => document.cookie") == ""
    assert page.evaluate("() => JSON.stringify(Object.assign({}, sessionStorage)) + "
                         "JSON.stringify(Object.assign({}, localStorage))") == "{}{}"
    assert tok["ben"] not in page.content()
    # a reload keeps the session (the cookie), still unreadable
    page.reload()
    page.wait_for_selector("body[data-view='signed'][data-map-ready='1']", timeout=60_000)
    assert "ben" in page.text_content("#who")
    assert page.evaluate("() => document.cookie") == ""
    # the page calls the API with the cookie and its CSRF token; another site cannot
    status = page.evaluate("""async () => (await fetch('/api/v1/review/queue')).status""")
    assert status == 200
    forged = page.evaluate("""async (id) => (await fetch('/api/v1/review/' + id + '/claim',
                              {method: 'POST'})).status""", incident)
    assert forged == 403  # no CSRF token: refused even from the page's own origin
    assert policy_errors == []  # the dashboard itself needs nothing the policy forbids
