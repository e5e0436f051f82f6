"""atheris fuzzing of every parser for a bounded time, from valid seeds: no crash (an
exception other than a TrucewatchError), no hang (issue 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import DATA

SECONDS = 6


def _seeds() -> dict[str, list[bytes]]:
    from trucewatch.ingest.drones import klv_packet
    from trucewatch.integrity.envelope import sign_submission
    from trucewatch.integrity.keys import new_keypair

    drone = json.dumps({"format": "trucewatch-drone/1", "reports": [
        {"report_id": "r1", "platform_id": "P", "time": "2026-05-30T04:12:00Z",
         "platform": {"lat": 48.0, "lon": 37.5}, "class": "explosion", "confidence": 0.8,
         "target": {"bearing_deg": 10.0, "range_m": 2500.0}},
        {"report_id": "r2", "platform_id": "P", "time": "2026-05-30T04:13:00Z",
         "platform": {"lat": 48.0, "lon": 37.5}, "class": "heavy_weapon", "confidence": 0.9,
         "klv": klv_packet(datetime(2026, 5, 30, 4, 13, tzinfo=UTC), 48.02, 37.51, 2000)}],
        "patrols": []}).encode()
    allegation = json.dumps({"format": "trucewatch-allegations/1", "allegations": [
        {"allegation_id": "A1", "claimant": "x", "claimant_kind": "party",
         "received_at": "2026-05-31T09:00:00Z", "text": "Вчора о 22:00 обстріл Бахмута"},
        {"allegation_id": "A2", "claimant": "y", "claimant_kind": "public",
         "received_at": "2026-05-31T09:00:00Z", "lat": 48.0, "lon": 37.8,
         "time_start": "2026-05-30T04:00:00Z", "category": "fire"}]},
        ensure_ascii=False).encode()
    agreement = b"""format: trucewatch-agreement
id: t
entry_into_force: 2026-04-20T00:00:00Z
line_of_contact: {geojson: {type: LineString, coordinates: [[37.0, 47.5], [37.5, 48.5]]}}
sides: [{id: left, buffer_km: 10}, {id: right, buffer_km: 10}]
withdrawal_km: {artillery: 30}
protected_sites: [{id: s, lat: 48.0, lon: 36.0, radius_m: 1000}]
"""
    priv, _ = new_keypair()
    return {
        "firms": [b"\n".join((DATA / "modis_archive.csv").read_bytes().splitlines()[:6])],
        "detections": [b"detection_id,station,time,phase,back_azimuth_deg,amplitude,snr\n"
                       b"D1,A1,2026-05-30T04:00:00.100Z,acoustic,,1.5,8.0\n"
                       b"D2,S1,2026-05-30T04:00:01.200Z,P,,0.2,5.0\n"],
        "drones": [drone],
        "allegations": [allegation],
        "agreement": [agreement],
        "envelope": [sign_submission(drone, priv, "k", datetime(2026, 5, 30, tzinfo=UTC),
                                     "n")],
        "stations": [b"id,latitude,longitude,elevation_m,kind\nA1,48.0,37.0,100,acoustic\n"
                     b"S1,48.2,37.2,120,seismic\n"],
        "keys": [json.dumps({"keys": [{"key_id": "k1", "source": "drone:P",
                                       "public_key": "A" * 43 + "=",
                                       "valid_from": "2026-01-01T00:00:00Z"}]}).encode()],
    }


LAB_PATH = Path(__file__).resolve().parents[1] / "benchmarks"  # where `lab` lives


@pytest.mark.slow
@pytest.mark.parametrize("target", ["firms", "detections", "drones", "allegations",
                                    "agreement", "envelope", "stations", "keys"])
def test_parser_survives_fuzzing(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for k, seed in enumerate(_seeds()[target]):
        (corpus / f"seed{k}").write_bytes(seed)
    proc = subprocess.run(
        [sys.executable, "-m", "lab.fuzz", target, str(corpus),
         f"-max_total_time={SECONDS}", "-seed=1", "-timeout=20", "-rss_limit_mb=4096",
         f"-artifact_prefix={tmp_path}/"], capture_output=True, text=True, timeout=300,
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(LAB_PATH)})
    crashes = list(tmp_path.glob("crash-*")) + list(tmp_path.glob("timeout-*"))
    assert proc.returncode == 0 and not crashes, proc.stderr[-3000:]
    assert "Done" in proc.stderr
