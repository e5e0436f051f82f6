"""The FIRMS area-API client against recorded responses served on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from conftest import DATA
from trucewatch.errors import ConfigError, FirmsApiError
from trucewatch.ingest.firms_api import FirmsClient

RECORDED = (DATA / "firms_api_viirs_noaa20_nrt.csv").read_bytes()


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Handler.seen.append(self.path)
        if "/BADKEY/" in self.path:
            body, code = b"Invalid MAP_KEY.", 200
        else:
            body, code = RECORDED, 200
        self.send_response(code)
        self.send_header("Content-Type", "text/csv")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    srv = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


def test_area_request_and_parse(server: str) -> None:
    client = FirmsClient("KEY123", base_url=server)
    batch = client.area("VIIRS_NOAA20_NRT", (22.0, 44.0, 40.5, 52.5), 1, date(2025, 8, 11))
    assert _Handler.seen[-1] == (
        "/api/area/csv/KEY123/VIIRS_NOAA20_NRT/22.0,44.0,40.5,52.5/1/2025-08-11")
    assert batch.records.height == 4 and not batch.quarantine


def test_invalid_key_is_a_clear_error(server: str) -> None:
    with pytest.raises(FirmsApiError, match="Invalid MAP_KEY"):
        FirmsClient("BADKEY", base_url=server).area("VIIRS_NOAA20_NRT", (22, 44, 40, 52))


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRMS_MAP_KEY", "ENVKEY")
    assert FirmsClient().map_key == "ENVKEY"
    monkeypatch.delenv("FIRMS_MAP_KEY")
    with pytest.raises(ConfigError, match="MAP_KEY"):
        FirmsClient()


def test_unreachable_server() -> None:
    with pytest.raises(FirmsApiError, match="unreachable"):
        FirmsClient("K", base_url="http://127.0.0.1:9", timeout_s=2).area(
            "VIIRS_NOAA20_NRT", (22, 44, 40, 52))
