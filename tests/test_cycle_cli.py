"""The CLI end to end, as a user runs it (subprocesses, real files)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from trucewatch.demo import ScenarioFiles

CLI = [sys.executable, "-m", "trucewatch"]


def _run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=900)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def cycle_run(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``trucewatch run`` of the built-in cycle, on each backend: its out folder and its
    store (the SQLite file there, or ``--store postgresql://...``)."""
    out = tmp_path_factory.mktemp("cycle")
    if request.param == "sqlite":
        where, extra = str(out / "trucewatch.db"), ()
    else:
        from lab.postgres import new_database

        where = new_database(request.getfixturevalue("pg_server"))
        extra = ("--store", where)
    proc = _run("run", "--out", str(out), *extra)
    # it prints every product it wrote (the README's quick start promises where they are)
    printed = dict(re.findall(r"^(public|restricted) bulletin: (.+)$", proc.stdout, re.M))
    assert set(printed) == {"public", "restricted"}, proc.stdout
    for files in printed.values():
        paths = [Path(f) for f in files.split(", ")]
        assert all(f.is_file() for f in paths), files
        assert {f.suffix for f in paths} >= {".pdf", ".html", ".json", ".geojson"}
    assert f"store: {where}" in proc.stdout
    return out, where


@pytest.fixture(scope="module")
def cycle(cycle_run: tuple[Path, str]) -> Path:
    return cycle_run[0]


def test_bulletin_matches_ground_truth(cycle: Path) -> None:
    truth = json.loads((cycle / "scenario" / "ground_truth.json").read_text())
    b = json.loads((cycle / "bulletin-2026-05-31-restricted.json").read_text())
    fires = [i for i in b["incidents"] if i["source"] == "satellite"]
    found = {(i["date"], round(i["lat"], 1), round(i["lon"], 1)) for i in fires}
    for e in truth["events"]:
        key = (e["date"], round(e["lat"], 1), round(e["lon"], 1))
        hits = [f for f in found if f[0] == e["date"] and abs(f[1] - key[1]) <= 0.1
                and abs(f[2] - key[2]) <= 0.1]
        assert bool(hits) == e["violation"], e
    assert len(fires) == sum(e["violation"] for e in truth["events"])
    # what the satellite channel made of every day's fires, from the eve of entry into force
    by_day = b["as_of"]["fire_classes_by_day"]
    assert min(by_day) == "2026-04-19" and max(by_day) <= "2026-05-31"
    assert 0 < sum(sum(c.values()) for c in by_day.values()) < sum(
        b["as_of"]["fire_classes"].values())  # the days before the eve are left out
    assert all(set(c) <= {"war_related", "agricultural", "wildfire", "industrial", "normal"}
               for c in by_day.values())
    assert b["coverage"]["days_without_data"] == truth["gap_days"]
    ms = truth["multisource"]
    assert b["quarantined_rows"] == (truth["malformed_rows"]
                                     + truth["sensors"]["malformed_detections"]
                                     + ms["drone_quarantined"] + ms["bad_allegations"])
    assert b["periods"]["before"]["war_related"] / b["periods"]["before"]["days"] > 10 * (
        b["periods"]["after"]["war_related"] / b["periods"]["after"]["days"] + 0.1)


def test_bulletin_shows_rulings_review_and_refusals(cycle: Path, cycle_run: tuple[Path, str]
                                                   ) -> None:
    """Issue 4 end to end: every allegation gets its expected ruling, heavy weapons break
    the rules they should, bad submissions are refused with their reason, the scripted
    review shows in the figures, and the audit chain verifies."""
    truth = json.loads((cycle / "scenario" / "ground_truth.json").read_text())
    ms = truth["multisource"]
    b = json.loads((cycle / "bulletin-2026-05-31-restricted.json").read_text())
    got = {r["allegation_id"]: r["ruling"] for r in b["rulings"]}
    assert got == ms["expected_rulings"]
    rules = {i["rule"] for i in b["incidents"] if "drone" in i["source"]}
    assert {r for r in ms["heavy_weapons"].values() if r} <= rules
    # explosions the drone saw are fused with the network's location (2 sources)
    both = [i for i in b["incidents"] if i["source"] == "drone + ground sensors"]
    assert len(both) >= 2
    refused = {r["name"]: r["reason"] for r in b["refused_submissions"]}
    bad = {k: Path(v).name for k, v in ms["bad_drone_files"].items()}
    assert "requires an Ed25519 signature" in refused[bad["unsigned"]]
    assert "altered after signing" in refused[bad["tampered"]]
    assert "replayed submission" in refused[bad["replayed"]]
    assert "revoked" in refused[bad["revoked"]]
    rv = b["review"]
    assert rv["verified"] == len(b["verified_violations"]) >= 2
    assert rv["added"] == 1 and rv["discarded"] >= 1 and rv["modified"] == 1
    assert all(v["evidence"] and v["explanation"] for v in b["verified_violations"])
    assert b["integrity"]["ok"] and b["integrity"]["entries"] > 10
    html = (cycle / "bulletin-2026-05-31-restricted.html").read_text()
    for anchor in ('id="verified"', 'id="rulings"', 'id="review"', 'id="refused"',
                   'id="integrity"'):
        assert anchor in html
    assert b["review_scripted"] and "were scripted by the built-in scenario" in html
    proc = _run("verify", "--store", cycle_run[1])
    assert "audit chain OK" in proc.stdout
    from pypdf import PdfReader

    text = " ".join(p.extract_text() for p in PdfReader(
        cycle / "bulletin-2026-05-31-restricted.pdf").pages)
    assert "Verified violations" in text and "Allegations and rulings" in text
    public = " ".join(p.extract_text() for p in PdfReader(
        cycle / "bulletin-2026-05-31-public.pdf").pages)
    assert "Allegations and rulings" in public and "liaison office" not in public


def test_public_variant_hides_detail(cycle: Path) -> None:
    pub = json.loads((cycle / "bulletin-2026-05-31-public.json").read_text())
    res = json.loads((cycle / "bulletin-2026-05-31-restricted.json").read_text())
    assert pub["incidents"] and all(not i["observation_ids"] and not i["reason"]
                                    for i in pub["incidents"])
    assert all(round(i["lat"], 1) == i["lat"] for i in pub["incidents"])
    assert any(round(i["lat"], 1) != i["lat"] for i in res["incidents"])
    assert pub["ingest"] == [] and res["ingest"]
    assert pub["refused_submissions"] == [] and res["refused_submissions"]
    assert all("claimant" not in r and "evidence" not in r for r in pub["rulings"])
    geo = json.loads((cycle / "incidents-2026-05-31-public.geojson").read_text())
    assert "observation_ids" not in geo["features"][0]["properties"]


def test_pdf_and_html_rendered(cycle: Path) -> None:
    for variant in ("public", "restricted"):
        from pypdf import PdfReader

        reader = PdfReader(cycle / f"bulletin-2026-05-31-{variant}.pdf")
        text = " ".join(p.extract_text() for p in reader.pages)
        assert len(reader.pages) >= 2
        assert "Ceasefire verification bulletin, 2026-05-31" in text
        assert "What could not be seen" in text and "not observed" in text
        assert ("RESTRICTED" in text) == (variant == "restricted")
        html = (cycle / f"bulletin-2026-05-31-{variant}.html").read_text()
        # map and trend; the restricted one adds the coverage maps (the public one has
        # only their per-sector table: the sensor panel would hint at the stations)
        assert html.count("<svg") == (3 if variant == "restricted" else 2)
        assert "not observed" in html and "no violation" not in html.replace(
            'not "no violation"', "")


def test_builtin_run_credits_its_signed_coalition(cycle: Path) -> None:
    """`trucewatch run` on the built-in scenario takes its signed coalition registry
    (scenario/coalition.signed.json, signed by the mission key of its key registry): the
    restricted bulletin credits each contribution and shows the gaps; the public one
    holds no coalition section."""
    res = json.loads((cycle / "bulletin-2026-05-31-restricted.json").read_text())
    pub = json.loads((cycle / "bulletin-2026-05-31-public.json").read_text())
    co = res["coalition"]
    assert co and "refused" not in co, co
    assert co["registry"]["signed_by"] == "mission/2026-04"
    assert [c["id"] for c in co["registry"]["contributors"]] == ["US", "FR", "GB", "EU",
                                                                 "OSCE"]
    credited = {(c["contributor"], c["asset"], c["channel"]) for c in co["credits"]}
    # the scenario's network (sensors:net-builtin) and its drone patrols (UA-07, EU-12)
    assert ("US", "us-net", "sensors") in credited
    assert {("FR", "fr-uav", "drone"), ("EU", "eu-uav", "drone")} & credited
    assert all(0 < c["share"] <= 1 and c["sector"] in ("north", "centre", "south")
               for c in co["credits"])
    assert co["gaps"] and all(g["uncovered"] for g in co["gaps"])
    assert pub["coalition"] is None
    html = (cycle / "bulletin-2026-05-31-restricted.html").read_text()
    assert "Contributions and gaps" in html and "United States" in html
    assert "Contributions and gaps" not in (cycle / "bulletin-2026-05-31-public.html"
                                            ).read_text()


def test_run_refuses_a_tampered_coalition_with_the_reason(scenario: ScenarioFiles,
                                                          tmp_path: Path) -> None:
    """`trucewatch run --coalition FILE` with a registry altered after signing (its
    payload and digest changed, the signature left): the run completes, nothing is
    credited, and the bulletin says why."""
    import base64
    import hashlib

    assert scenario.coalition is not None
    env = json.loads(scenario.coalition.read_bytes())
    text = base64.b64decode(env["payload"]).decode()
    forged = text.replace("id: GB\n", "id: DE\n", 1)  # another nation's name on it
    assert forged != text
    env["payload"] = base64.b64encode(forged.encode()).decode()
    env["payload_sha256"] = hashlib.sha256(forged.encode()).hexdigest()
    bad = tmp_path / "coalition.forged.json"
    bad.write_text(json.dumps(env))
    out = tmp_path / "out"
    _run("run", "--out", str(out), "--no-pdf", "--coalition", str(bad))
    res = json.loads((out / "bulletin-2026-05-31-restricted.json").read_text())
    refused = res["coalition"]["refused"]
    assert refused.startswith("coalition.forged.json: ") and "signature" in refused, refused
    assert "credits" not in res["coalition"]
    html = (out / "bulletin-2026-05-31-restricted.html").read_text()
    assert 'id="coalition-refused"' in html and "coalition.forged.json" in html


def test_satellite_commands(scenario: ScenarioFiles, tmp_path: Path) -> None:
    base = tmp_path / "b.npz"
    _run("satellite", "fit-baseline", *map(str, scenario.reference), "--years",
         "2023,2024,2025", "--out", str(base))
    out = tmp_path / "out.csv"
    proc = _run("satellite", "classify", *map(str, scenario.current), "--baseline", str(base),
                "--out", str(out))
    assert "3 row(s) quarantined" in proc.stdout
    df = pl.read_csv(out)
    # the documented contract: these columns first, in this order; new ones only after
    assert df.columns[:8] == ["latitude", "longitude", "acq_date", "cell", "expected",
                              "p_normal", "war_related", "reason"]
    assert df.columns[8:] == ["fire_class", "upper", "surplus"]
    n_in = sum(len(p.read_text().splitlines()) - 1 for p in scenario.current)
    assert df.height == n_in - 3  # one row per valid input detection
    assert df.filter(pl.col("acq_date") < "2026-04-20")["war_related"].mean() > 0.3
    assert set(df["fire_class"].unique()) <= {"war_related", "agricultural", "wildfire",
                                              "industrial", "normal"}
    assert (df.filter(pl.col("war_related") == 1)["fire_class"] == "war_related").all()
    assert df["reason"].str.starts_with(df["fire_class"]).all()


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "odd.csv").write_text("a;b\n1;2\n")
    for args in (["satellite", "classify", str(tmp_path / "odd.csv"), "--baseline", "x.npz",
                  "--out", str(tmp_path / "o.csv")],
                 ["satellite", "fit-baseline", str(tmp_path / "odd.csv"), "--years", "2020",
                  "--out", str(tmp_path / "b.npz")],
                 ["run", "--agreement", str(tmp_path / "none.yaml"), "--firms",
                  str(tmp_path / "odd.csv")]):
        proc = _run(*args, ok=False)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and "fix:" in lines[0], lines


def test_agreement_check_command(scenario: ScenarioFiles) -> None:
    proc = _run("agreement", "check", str(scenario.agreement))
    assert "buffer:left" in proc.stdout and "OK" in proc.stdout


def test_ground_sensor_explosions_in_bulletin(cycle: Path, cycle_run: tuple[Path, str]
                                             ) -> None:
    """Explosions located by the built-in sensor network reach the store and the bulletin,
    and the explosion incidents sit on true explosions inside restricted zones."""
    import numpy as np

    from trucewatch.agreement import load_agreement
    from trucewatch.agreement.zones import ZoneIndex
    from trucewatch.storage import open_store

    root = cycle / "scenario"
    truth = json.loads((root / "ground_truth.json").read_text())["sensors"]
    b = json.loads((cycle / "bulletin-2026-05-31-restricted.json").read_text())
    s = b["sensors"]
    assert s["stations"] == truth["stations"]
    assert s["detections"] == truth["detections"]
    assert s["quarantined"] == truth["malformed_detections"]
    assert 0.7 * truth["explosions"] <= s["located"] <= 1.1 * truth["explosions"]
    store = open_store(cycle_run[1])
    assert store.explosions().height == s["located"] + s["not_locatable"]
    store.close()

    events = pl.read_csv(root / truth["events_file"])
    agreement = load_agreement(root / "agreement.yaml")
    zones = ZoneIndex(agreement).zones_of(events["longitude"].to_numpy(),
                                          events["latitude"].to_numpy())
    in_zone = events.filter(pl.Series([bool(z) for z in zones]))
    incidents = [i for i in b["incidents"] if "ground sensors" in i["source"]]
    assert incidents and in_zone.height
    lat = in_zone["latitude"].to_numpy()
    lon = in_zone["longitude"].to_numpy()
    # explosion incidents sit on real explosions in a zone; weak coincidences formed
    # from a barrage's detections (docs/sensors.md, limits) may add a few candidates
    real = [np.hypot((lat - i["lat"]) * 111, (lon - i["lon"]) * 74).min() < 2.0
            for i in incidents]
    assert np.mean(real) >= 0.6, incidents
    assert all(i["rule"].startswith(("explosion_in_", "strike_on_protected_site"))
               for i in incidents)
    # and most true explosions in zones are covered by an incident
    ilat = np.array([i["lat"] for i in incidents])
    ilon = np.array([i["lon"] for i in incidents])
    covered = [np.hypot((ilat - a) * 111, (ilon - o) * 74).min() < 2.0 for a, o in zip(
        lat, lon, strict=True)]
    assert np.mean(covered) >= 0.7
    html = (cycle / "bulletin-2026-05-31-restricted.html").read_text()
    assert 'id="sensors"' in html and "not locatable" in html


def test_field_commands_end_to_end(tmp_path: Path) -> None:
    """Keys, signing, drone and allegation intake, review under the two-person rule and
    verify, as a mission's staff would run them."""
    reg, key, store = tmp_path / "keys.json", tmp_path / "ua07.pem", tmp_path / "s.db"
    _run("keys", "new", "ua07-a", "--source", "drone:UA-07", "--registry", str(reg),
         "--private-out", str(key), "--valid-from", "2026-05-01T00:00:00Z")
    doc = tmp_path / "reports.json"
    doc.write_text(json.dumps({"format": "trucewatch-drone/1", "reports": [
        {"report_id": "r1", "platform_id": "UA-07", "time": "2026-05-30T04:12:00Z",
         "platform": {"lat": 48.0, "lon": 37.5}, "class": "explosion", "confidence": 0.9,
         "target": {"bearing_deg": 10.0, "range_m": 2500.0}}]}))
    signed = tmp_path / "reports.signed.json"
    _run("keys", "sign", str(doc), "--key-id", "ua07-a", "--private-key", str(key),
         "--out", str(signed))
    out = _run("drones", "ingest", str(signed), str(doc), "--store", str(store),
               "--keys", str(reg)).stdout
    assert "stored" in out and "refused" in out  # the unsigned copy is refused
    alleg = tmp_path / "a.json"
    alleg.write_text(json.dumps({"format": "trucewatch-allegations/1", "allegations": [
        {"allegation_id": "A1", "claimant": "Side A", "claimant_kind": "party",
         "received_at": "2026-05-31T09:00:00Z", "text": "Вчора о 07:10 обстріл Бахмута"}]},
        ensure_ascii=False))
    assert "stored" in _run("allegations", "ingest", str(alleg), "--store", str(store)).stdout
    # every review action is a principal's, with its token: the store's first token is
    # its admin's (the bootstrap), who then makes the others
    root = _run("tokens", "new", "root", "--role", "admin", "--store", str(store)
                ).stdout.split()[-1]
    tok = {name: _run("tokens", "new", name, "--role", role, "--token", root, "--store",
                      str(store)).stdout.split()[-1]
           for name, role in (("anna", "reviewer"), ("ben", "analyst"), ("carla", "reviewer"))}
    add = _run("review", "add", "--token", tok["anna"], "--why", "patrol saw a crater",
               "--category", "explosion.impact", "--lat", "48.02", "--lon", "37.51",
               "--time", "2026-05-30T04:15:00Z", "--store", str(store)).stdout
    inc = add.split("added ")[1].split()[0]
    _run("review", "claim", inc, "--as", "ben", "--token", tok["ben"], "--store", str(store))
    _run("review", "decide", inc, "--token", tok["ben"], "--status", "pending_verification",
         "--why", "crater on the frame", "--store", str(store))
    _run("review", "claim", inc, "--token", tok["anna"], "--store", str(store))
    bad = _run("review", "decide", inc, "--token", tok["anna"], "--status", "verified",
               "--why", "mine", "--store", str(store), ok=False)
    assert bad.returncode == 2 and "cannot verify their own work" in bad.stderr
    assert "fix:" in bad.stderr and "Traceback" not in bad.stderr
    _run("review", "claim", inc, "--token", tok["carla"], "--store", str(store))
    _run("review", "decide", inc, "--token", tok["carla"], "--status", "verified", "--why",
         "agree", "--store", str(store))
    hist = _run("review", "history", inc, "--store", str(store)).stdout
    assert "verified" in hist and "carla" in hist
    assert "verified: 1" in _run("review", "figures", "--store", str(store)).stdout
    _run("keys", "revoke", "ua07-a", "--registry", str(reg), "--reason", "lost",
         "--at", "2026-05-01T00:00:00Z")
    again = tmp_path / "again.signed.json"
    _run("keys", "sign", str(doc), "--key-id", "ua07-a", "--private-key", str(key),
         "--out", str(again))
    out = _run("ingest", str(again), "--store", str(store), "--keys", str(reg)).stdout
    assert "revoked" in out
    assert "audit chain OK" in _run("verify", "--store", str(store)).stdout
