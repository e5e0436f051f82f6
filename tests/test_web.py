"""The web dashboard in headless Chromium (Debian's, driven by Playwright; no browser is
downloaded): the map is drawn, nothing is fetched from outside, and the main flows
(sign in, review an incident under the two-person rule, file an allegation) work."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trucewatch.demo import ScenarioFiles
from trucewatch.storage import SqliteStore
from lab.server import Server, free_port

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
    page.fill("#token", token)
    page.click("#signin button")
    page.wait_for_selector("body[data-map-ready='1']", timeout=60_000)


def test_map_is_drawn_offline(served: tuple[Server, dict[str, str]], browser: Any,
                              tmp_path: Path) -> None:
    server, tok = served
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    _sign_in(page, server.url, tok["anna"])
    shot = tmp_path / "map.png"
    page.locator("#map").screenshot(path=str(shot))
    page.screenshot(path=str(tmp_path / "page.png"))
    from PIL import Image

    img = Image.open(shot).convert("RGB").resize((320, 200))
    colors = img.getcolors(maxcolors=100_000) or []
    top = max(n for n, _ in colors) / (320 * 200)
    assert len(colors) > 50 and top < 0.9, (len(colors), top)  # land, sea, zones, points
    # the line of contact (#b00020) and incidents are drawn
    reds = sum(n for n, (r, g, b) in colors if r > 150 and g < 60 and b < 70)
    assert reds > 20
    legend = page.text_content("#legend")
    assert "sensor coverage" in legend and "explosion.impact" in legend
    outside = [u for u in requests if not u.startswith(server.url) and
               not u.startswith(("data:", "blob:"))]
    assert outside == []
    # the time slider hides incidents after the chosen day
    n_all = page.evaluate("() => window.document.getElementById('time').value")
    page.evaluate("() => { const t = document.getElementById('time'); t.value = t.min; "
                  "t.dispatchEvent(new Event('input')); }")
    assert page.text_content("#day") != "" and n_all


def test_review_and_allegation_flows(served: tuple[Server, dict[str, str]],
                                     browser: Any) -> None:
    import httpx

    server, tok = served
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.on("dialog", lambda d: d.accept("checked the drone frame"))
    _sign_in(page, server.url, tok["anna"])
    first = page.locator("#queue li").first
    incident = first.get_attribute("data-id")
    status = httpx.get(f"{server.url}/api/v1/incidents/{incident}",
                       headers={"Authorization": f"Bearer {tok['anna']}"}).json()["status"]
    if status == "automatic":
        first.get_by_role("button", name="Propose verified").click()
        page.wait_for_function("() => document.getElementById('message').textContent"
                               ".includes('pending_verification')")
    # the analyst may not confirm: the page says why
    page.locator(f"#queue li[data-id='{incident}']").get_by_role("button",
                                                                name="Verify").click()
    page.wait_for_selector("#message.error")
    assert "only a reviewer" in page.text_content("#message")
    # a second person, a reviewer, confirms
    page2 = browser.new_page(viewport={"width": 1280, "height": 800})
    page2.on("dialog", lambda d: d.accept("second review agrees"))
    _sign_in(page2, server.url, tok["ben"])
    page2.locator(f"#queue li[data-id='{incident}']").get_by_role("button",
                                                                 name="Verify").click()
    page2.wait_for_function("() => document.getElementById('message').textContent"
                            ".includes('verified')")
    got = httpx.get(f"{server.url}/api/v1/incidents/{incident}",
                    headers={"Authorization": f"Bearer {tok['ben']}"}).json()
    assert got["status"] == "verified"
    assert [h["who"] for h in got["history"]][-2:] == ["anna", "ben"]
    # the public files an allegation through the form
    page3 = browser.new_page(viewport={"width": 1280, "height": 800})
    _sign_in(page3, server.url, tok["pat"])
    assert page3.is_hidden("#review")
    page3.fill("#a-text", "Вибухи біля Торецька 30.05.2026 о 07:30")
    page3.select_option("#a-cat", "explosion")
    page3.click("#allegation button")
    page3.wait_for_function("() => document.getElementById('message').textContent"
                            ".includes('received')")
    assert "allegation W-" in page3.text_content("#message")


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
    page.fill("#token", tok["ben"])
    page.click("#signin button")
    page.wait_for_selector("body[data-map-ready='1']", timeout=60_000)
    # the review queue: the payload is text
    item = page.locator(f"#queue li[data-id='{incident}']")
    assert payload in item.text_content()
    assert page.locator("#queue img").count() == 0
    # the map's popup: the incident sits at the map's centre
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
    page.wait_for_selector("body[data-map-ready='1']", timeout=60_000)
    assert "ben" in page.text_content("#who")
    assert page.evaluate("() => document.cookie") == ""
    # the page calls the API with the cookie and its CSRF token; another site cannot
    status = page.evaluate("""async () => (await fetch('/api/v1/review/queue')).status""")
    assert status == 200
    forged = page.evaluate("""async (id) => (await fetch('/api/v1/review/' + id + '/claim',
                              {method: 'POST'})).status""", incident)
    assert forged == 403  # no CSRF token: refused even from the page's own origin
    assert policy_errors == []  # the dashboard itself needs nothing the policy forbids
