"""End to end, in real processes (issue 13, "done when"): ``trucewatch serve`` on a real
port with its worker and products clock, fed by ``trucewatch replay`` of the built-in
scenario (a second process, through the API), shows on its own:

* the automatic incidents at GET /api/v1/incidents,
* the candidate violations in the CAP feed at GET /api/v1/alerts.cap,
* the daily bulletin (the clock's JSON product and the rendered HTML) at
  GET /api/v1/products, after its cut.

The scenario's data are of May 2026, so the clock runs on the data's time
(``--products-clock data``: the end of the latest data day) and the test does not wait
for 19:30; PDFs are off (``--no-products-pdf``) to keep it short. Nothing is asserted
on timing: each wait is a generous limit."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from lab.server import Server, free_port, wait_caught_up
from trucewatch.demo import ScenarioFiles
from trucewatch.storage import SqliteStore

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


def _until(what: str, check: Callable[[], Any], limit_s: float = 600.0) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not there after {limit_s:.0f} s")
        time.sleep(1.0)


@pytest.mark.slow
def test_serve_and_replay_show_incidents_alerts_and_the_bulletin_on_their_own(
        scenario: ScenarioFiles, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    store = SqliteStore(db)
    admin = store.add_token("replayer", "admin")
    analyst = store.add_token("reader", "analyst")
    store.close()
    srv = Server(db, free_port(), ("--agreement", str(scenario.agreement), "--keys",
                                   str(scenario.keys), "--bulletins", str(tmp_path / "b"),
                                   "--products-clock", "data", "--products-interval", "2",
                                   "--no-products-pdf")).start(timeout_s=300)
    auth = {"Authorization": f"Bearer {analyst}"}
    try:
        sent = subprocess.run(
            [sys.executable, "-m", "trucewatch", "replay", str(scenario.root), "--url",
             srv.url, "--token", admin], capture_output=True, text=True, timeout=600)
        assert sent.returncode == 0, sent.stdout[-2000:] + sent.stderr[-2000:]
        wait_caught_up(db)  # the worker's last pass names the day the bulletin is of

        def incidents() -> list[dict[str, Any]]:
            r = httpx.get(f"{srv.url}/api/v1/incidents?limit=1000", headers=auth,
                          timeout=30)
            assert r.status_code == 200, r.text
            return [i for i in r.json()["items"] if i["status"] == "automatic"]

        automatic = _until("automatic incidents", incidents)
        assert len(automatic) >= 3

        def alerts() -> list[ElementTree.Element]:
            r = httpx.get(f"{srv.url}/api/v1/alerts.cap", headers=auth, timeout=30)
            assert r.status_code == 200, r.text
            return ElementTree.fromstring(r.content).findall(f".//{CAP}alert")

        feed = _until("candidate violations in the CAP feed", alerts)
        # restricted until reviewed; each names an incident the service made by itself
        assert {a.findtext(f"{CAP}scope") for a in feed} == {"Restricted"}
        ids = {i["id"] for i in incidents()}
        named = [a.findtext(f"{CAP}identifier") or "" for a in feed]
        assert any(inc in ident for ident in named for inc in ids), named[:3]

        # named by the data's last day (the worker's report day), not the wall clock's
        store = SqliteStore(db)
        try:
            day = str((store.last_record("worker", "worker_pass") or {})["report_day"])
        finally:
            store.close()

        def bulletin() -> dict[str, dict[str, Any]]:
            r = httpx.get(f"{srv.url}/api/v1/products", headers=auth, timeout=30)
            assert r.status_code == 200, r.text
            names = {str(p["name"]): p for p in r.json()["products"]}
            html = [n for n in names if n.startswith(f"bulletin-{day}-")
                    and n.endswith(".html")]
            return names if f"daily-{day}-public.json" in names and html else {}

        products = _until(f"the daily bulletin of {day} at /products", bulletin)
        assert not [n for n in products if time.strftime("%Y-%m-%d") in n]
    finally:
        srv.stop()
