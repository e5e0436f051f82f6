"""Replay a scenario directory into a running service through its API, in time order.

``trucewatch replay SCENARIO_DIR --url URL --token TOKEN [--speed X]`` reads what
:func:`trucewatch.demo.generate` writes (``trucewatch run --out DIR`` leaves the
built-in one in ``DIR/scenario``) and POSTs every input to ``/api/v1/ingest/{source}``
at the time it would have arrived:

* FIRMS files whose rows all lie before the agreement's entry-into-force year are the
  baseline's archive: sent whole, first (they arrived before the mission began);
* every other FIRMS file is cut into one submission per ``acq_date`` (rows exactly as
  written, under the file's header), arriving :data:`FIRMS_LATENCY` after the day's end,
  the way near-real-time data come in; rows of the same day from overlapping downloads
  travel together (the store keeps each row once); a row whose date cannot be read
  travels with the file's last day (and is quarantined there, as in a batch run);
* a signed envelope (station inventory, detections, drone reports) arrives at its
  ``signed_at``; an unsigned document at the latest time it mentions; ties keep the order
  station inventory, detections, drone reports, allegations.

``speed``: 0 (the default) sends everything as fast as the service answers; ``X > 0``
waits ``gap / X`` between two submissions (``X = 3600``: an hour of the scenario per
second). Before sending anything the service's agreement must be the scenario's
(``GET /api/v1/agreement``): replaying a scenario into another mission is refused.

Refused submissions (the scenario's deliberately replayed, tampered or revoked-key
drone reports) are answered 409/422 by the service and counted; an answer of 5xx or a
lost connection stops the replay with an error, unless ``retry_s`` (``--retry S``) is
given: then a lost connection or a 502/503/504 makes the replay send the same
submission again, with backoff, until the service answers or ``retry_s`` seconds have
passed. Resending is safe: the intake keeps each input once by its SHA-256, so a
submission the service stored before it died is answered as already received (the same
batch), never stored twice.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from trucewatch.errors import ConfigError, InputFileError, TrucewatchError

FIRMS_LATENCY = timedelta(hours=3)
ORDER = {"firms": 0, "stations": 1, "detections": 2, "drone": 3, "allegations": 4}
_ISO = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ReplayError(TrucewatchError, RuntimeError):
    code = "replay_error"


@dataclass(frozen=True)
class Item:
    """One submission: when it arrives, to which source route, its bytes."""

    at: datetime
    source: str
    name: str
    body: bytes
    content_type: str = "application/json"

    @property
    def key(self) -> tuple[datetime, int, str]:
        return self.at, ORDER.get(self.source, 9), self.name


@dataclass
class Sent:
    item: Item
    status: int
    answer: dict[str, object]
    seconds: float
    attempts: int = 1  # more than 1: sent again after a lost connection (``retry_s``)

    @property
    def accepted(self) -> bool:
        return self.status == 200


@dataclass
class ReplayResult:
    sent: list[Sent] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    @property
    def accepted(self) -> int:
        return sum(s.accepted for s in self.sent)

    @property
    def refused(self) -> list[Sent]:
        return [s for s in self.sent if not s.accepted]

    @property
    def resent(self) -> int:
        """Submissions sent more than once (the service was lost meanwhile)."""
        return sum(s.attempts > 1 for s in self.sent)


def _entry_year(root: Path) -> int:
    path = root / "agreement.yaml"
    if not path.is_file():
        raise InputFileError(f"{root}: no agreement.yaml: not a scenario directory",
                             path=str(root), fix="give the folder `trucewatch run --out DIR`"
                                                 " wrote as DIR/scenario")
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    when = str(doc.get("entry_into_force", ""))
    try:
        return datetime.fromisoformat(when.replace("Z", "+00:00")).year
    except ValueError:
        raise InputFileError(f"{path}: entry_into_force {when!r} is not a time",
                             path=str(path), fix="check the agreement file") from None


def agreement_id(root: Path) -> str:
    doc = yaml.safe_load((root / "agreement.yaml").read_text(encoding="utf-8")) or {}
    return str(doc.get("id", ""))


def _firms_items(path: Path, entry_year: int) -> list[Item]:
    text = path.read_bytes()
    header, _, rest = text.partition(b"\n")
    cols = header.decode("utf-8", errors="replace").strip().split(",")
    if "acq_date" not in cols:
        raise InputFileError(f"{path}: no acq_date column: not a FIRMS file", path=str(path),
                             fix="keep only FIRMS CSV files under scenario/firms/")
    k = cols.index("acq_date")
    by_day: dict[date, list[bytes]] = {}
    unreadable: list[bytes] = []
    for line in rest.split(b"\n"):
        if not line.strip():
            continue
        fields = line.decode("utf-8", errors="replace").split(",")
        value = fields[k] if k < len(fields) else ""
        try:
            day = date.fromisoformat(value) if _DATE.match(value) else None
        except ValueError:
            day = None
        if day is None:
            unreadable.append(line)
        else:
            by_day.setdefault(day, []).append(line)
    if not by_day:
        return [Item(datetime.fromtimestamp(path.stat().st_mtime, UTC), "firms", path.name,
                     text, "text/csv")]
    last = max(by_day)
    if last.year < entry_year:  # the archive the baseline learns from: sent whole, first
        arrives = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
        return [Item(arrives, "firms", path.name, text, "text/csv")]
    by_day[last] = by_day[last] + unreadable
    items = []
    for day, lines in sorted(by_day.items()):
        arrives = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) \
            + FIRMS_LATENCY
        items.append(Item(arrives, "firms", f"{path.stem}@{day.isoformat()}.csv",
                          header + b"\n" + b"\n".join(lines) + b"\n", "text/csv"))
    return items


def _document_time(body: bytes, horizon: datetime) -> datetime:
    """A signed envelope's ``signed_at``; else the latest ``received_at`` the document
    states; else the latest report ``time`` not after ``horizon`` (the scenario's last
    signed or satellite arrival: a report dated in the future is the intake's to judge,
    not the replay's clock); else ``horizon``."""
    try:
        doc = json.loads(body)
    except ValueError:
        return horizon
    if isinstance(doc, dict) and isinstance(doc.get("signed_at"), str):
        return datetime.fromisoformat(doc["signed_at"].replace("Z", "+00:00"))
    found: dict[str, list[datetime]] = {"received_at": [], "time": []}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in found and isinstance(v, str) and _ISO.fullmatch(v.encode()):
                    found[k].append(datetime.fromisoformat(v.replace("Z", "+00:00")))
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    if found["received_at"]:
        return max(found["received_at"])
    times = [t for t in found["time"] if t <= horizon]
    return max(times) if times else horizon


def plan(root: Path | str) -> list[Item]:
    """Every input of a scenario directory, in arrival order (see the module's doc)."""
    root = Path(root)
    year = _entry_year(root)
    items: list[Item] = []
    for path in sorted((root / "firms").glob("*.csv")):
        items += _firms_items(path, year)
    docs: list[tuple[str, Path, str]] = []
    sensors = root / "sensors"
    for source, name in (("stations", "stations"), ("detections", "detections")):
        signed, plain = sensors / f"{name}.signed.json", sensors / f"{name}.csv"
        found = signed if signed.is_file() else plain if plain.is_file() else None
        if found is not None:
            docs.append((source, found, "application/json" if found.suffix == ".json"
                         else "text/csv"))
    for source, folder in (("drone", "drones"), ("allegations", "allegations")):
        docs += [(source, p, "application/json")
                 for p in sorted((root / folder).glob("*.json"))]
    bodies = [(source, path, kind, path.read_bytes()) for source, path, kind in docs]
    horizon = max([i.at for i in items] + [
        datetime.fromisoformat(str(json.loads(b)["signed_at"]).replace("Z", "+00:00"))
        for _, _, _, b in bodies if b.startswith(b"{") and b'"signed_at"' in b[:400]],
        default=datetime(1970, 1, 1, tzinfo=UTC))
    items += [Item(_document_time(b, horizon), source, path.name, b, kind)
              for source, path, kind, b in bodies]
    if not items:
        raise InputFileError(f"{root}: no inputs found (firms/, sensors/, drones/, "
                             "allegations/)", path=str(root),
                             fix="give a scenario directory written by `trucewatch run`")
    return sorted(items, key=lambda i: i.key)


def check_mission(client: httpx.Client, root: Path, retry_s: float = 0.0,
                  sleep: Callable[[float], None] = time.sleep) -> None:
    """Refuse to replay into a service whose agreement is not the scenario's."""
    want = agreement_id(root)
    r, _ = _send(client, "GET", "/api/v1/agreement", retry_s, sleep)
    if r.status_code == 404:
        raise ReplayError("the service has no agreement loaded: it cannot tell whether "
                          "this scenario is its mission",
                          fix="start it with `trucewatch serve --agreement "
                              f"{root / 'agreement.yaml'}`")
    if r.status_code != 200:
        raise ReplayError(f"GET /api/v1/agreement answered {r.status_code}: {r.text[:200]}",
                          fix="check --url and --token")
    have = str(r.json().get("properties", {}).get("id", ""))
    if have != want:
        raise ReplayError(f"the service monitors agreement {have!r}, the scenario is "
                          f"{want!r}: replaying it would mix two missions",
                          fix="replay into the service of this scenario's agreement")


RETRY_STATUS = (502, 503, 504)  # a proxy's "the service is not there": try again


def _send(client: httpx.Client, method: str, path: str, retry_s: float,
          sleep: Callable[[float], None], **kw: Any) -> tuple[httpx.Response, int]:
    """One request; with ``retry_s`` > 0, again after a lost connection or a 502-504,
    with backoff (0.2 s doubling to 5 s), for at most ``retry_s`` seconds. Returns the
    answer and the number of attempts."""
    attempts, wait = 0, 0.2
    deadline = time.monotonic() + retry_s
    while True:
        attempts += 1
        try:
            r = client.request(method, path, **kw)
        except httpx.TransportError:
            if retry_s <= 0 or time.monotonic() >= deadline:
                raise
        else:
            if r.status_code not in RETRY_STATUS or retry_s <= 0 \
                    or time.monotonic() >= deadline:
                return r, attempts
        sleep(wait)
        wait = min(wait * 2, 5.0)


def _post(client: httpx.Client, item: Item, retry_s: float,
          sleep: Callable[[float], None]) -> tuple[httpx.Response, int]:
    return _send(client, "POST", f"/api/v1/ingest/{item.source}", retry_s, sleep,
                 content=item.body, headers={"Content-Type": item.content_type})


def replay(root: Path | str, url: str, token: str, speed: float = 0.0,
           on_sent: Callable[[Sent], None] | None = None,
           sleep: Callable[[float], None] = time.sleep, timeout_s: float = 300.0,
           retry_s: float = 0.0) -> ReplayResult:
    """POST every input of the scenario to the service in time order (``retry_s``: how
    long to keep resending a submission while the service is unreachable)."""
    if speed < 0:
        raise ConfigError(f"speed {speed} is negative",
                          fix="give 0 (as fast as possible) or a factor above 0")
    if retry_s < 0:
        raise ConfigError(f"retry {retry_s} is negative",
                          fix="give 0 (stop at the first lost connection) or seconds")
    root = Path(root)
    items = plan(root)
    out = ReplayResult(started=time.monotonic())
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        try:
            check_mission(client, root, retry_s, sleep)
            previous: datetime | None = None
            for item in items:
                if speed > 0 and previous is not None and item.at > previous:
                    sleep((item.at - previous).total_seconds() / speed)
                previous = item.at
                t0 = time.monotonic()
                r, attempts = _post(client, item, retry_s, sleep)
                if r.status_code >= 500 or r.status_code in (401, 403, 404):
                    raise ReplayError(f"{item.name}: the service answered {r.status_code}: "
                                      f"{r.text[:300]}",
                                      fix="check the token's role (an admin's or an "
                                          "analyst's) and the service's log")
                try:
                    answer = r.json()
                except ValueError:
                    answer = {"text": r.text[:300]}
                sent = Sent(item, r.status_code, answer, time.monotonic() - t0, attempts)
                out.sent.append(sent)
                if on_sent:
                    on_sent(sent)
        except httpx.HTTPError as err:
            waited = f" (for {retry_s:g} s)" if retry_s > 0 else ""
            raise ReplayError(f"lost the service at {url}{waited} "
                              f"({type(err).__name__}: {err})",
                              fix="check that `trucewatch serve` is running there; "
                                  "`--retry S` waits S seconds for it") from err
    out.finished = time.monotonic()
    return out
