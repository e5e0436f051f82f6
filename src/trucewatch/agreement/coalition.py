"""The coalition registry: who contributes what to the monitoring, and where.

A registry file of its own (YAML or JSON, ``format: trucewatch-coalition/1``), signed
as a ``trucewatch-signed/1`` envelope by a ``mission`` key of the key registry (the
signature is checked by :func:`trucewatch.intake.coalition.load_coalition`; this
module parses and checks the content)::

    format: trucewatch-coalition/1
    mission: demo-2026
    contributors:
      - id: FR                         # a nation's ISO code, or an organisation's id
        name: France
        kind: nation                   # nation | organisation
        roles: [troops, hub, drones]   # free words: troops, hub, lead, drones, sensors...
        assets:
          - id: fr-uav
            kind: drone_platform       # drone_platform | sensor_network | sensor_station
                                       # | satellite_tasking
            source: drone:FR-01        # the key source its submissions are signed with
            platforms: [FR-01, FR-02]  # drone platform ids it flies (drone_platform)
            sectors: [north, centre]   # the agreement's sector ids it covers
          - id: fr-net
            kind: sensor_network
            source: sensors:net-fr
            stations: ["F*"]           # station ids (patterns: * and ?) it runs
            sectors: [north]

Every sector id must be one of the agreement's; a drone or sensor asset's ``source``
must be the source of a key in the key registry (its submissions are signed with it).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from trucewatch.errors import ConfigError

FORMAT = "trucewatch-coalition/1"
CONTRIBUTOR_KINDS = ("nation", "organisation")
ASSET_KINDS = {"drone_platform": "drone", "sensor_network": "sensors",
               "sensor_station": "sensors", "satellite_tasking": "satellite"}
FIX = "see the coalition registry format in docs/coalition.md"


@dataclass(frozen=True)
class Asset:
    id: str
    kind: str
    sectors: tuple[str, ...]
    source: str = ""
    platforms: tuple[str, ...] = ()
    stations: tuple[str, ...] = ()
    name: str = ""

    @property
    def channel(self) -> str:
        """drone, sensors or satellite."""
        return ASSET_KINDS[self.kind]

    def flies(self, platform: str) -> bool:
        subject = self.source.split(":", 1)[1] if ":" in self.source else ""
        return platform in self.platforms or (bool(subject) and platform == subject)

    def runs(self, station: str) -> bool:
        return any(fnmatch.fnmatchcase(station, p) for p in self.stations)


@dataclass(frozen=True)
class Contributor:
    id: str
    name: str
    kind: str
    roles: tuple[str, ...] = ()
    assets: tuple[Asset, ...] = ()


@dataclass(frozen=True)
class Coalition:
    mission: str
    contributors: tuple[Contributor, ...] = ()
    signed_by: str = ""  # the key id that signed the registry
    extra: dict[str, Any] = field(default_factory=dict)

    def assets(self) -> list[tuple[Contributor, Asset]]:
        return [(c, a) for c in self.contributors for a in c.assets]

    def undeclared(self, sectors: list[str]) -> dict[str, list[str]]:
        """Per channel (drone, sensors, satellite), the sectors no contributor declares."""
        out = {}
        for channel in ("drone", "sensors", "satellite"):
            have = {s for _, a in self.assets() if a.channel == channel for s in a.sectors}
            out[channel] = [s for s in sectors if s not in have]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"mission": self.mission, "signed_by": self.signed_by, "contributors": [
            {"id": c.id, "name": c.name, "kind": c.kind, "roles": list(c.roles),
             "assets": [{"id": a.id, "kind": a.kind, "source": a.source,
                         "sectors": list(a.sectors), "platforms": list(a.platforms),
                         "stations": list(a.stations)} for a in c.assets]}
            for c in self.contributors]}


def parse_coalition(text: str, name: str, sectors: list[str],
                    key_sources: set[str] | None = None) -> Coalition:
    """The registry in ``text`` (YAML or JSON), checked against the agreement's sector
    ids and, when given, the key registry's sources. Raises ConfigError naming the
    entry and what is wrong."""
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as err:
        raise ConfigError(f"{name}: not a readable coalition registry ({err})".splitlines()[0],
                          fix=FIX) from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ConfigError(f"{name}: not a coalition registry (format {got!r})",
                          fix=f"begin the file with format: {FORMAT}")
    items = doc.get("contributors")
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{name}: a coalition registry lists its contributors", fix=FIX)
    seen_c: set[str] = set()
    seen_a: set[str] = set()
    out = []
    for k, item in enumerate(items):
        where = f"{name}: contributors[{k}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} is not a mapping", fix=FIX)
        cid, cname = _text(item, "id", where), _text(item, "name", where)
        where = f"{name}: contributor {cid}"
        if cid in seen_c:
            raise ConfigError(f"{where} is listed twice", fix="give each contributor one entry")
        seen_c.add(cid)
        kind = _text(item, "kind", where)
        if kind not in CONTRIBUTOR_KINDS:
            raise ConfigError(f"{where}: kind {kind!r}", fix="kind is nation or organisation")
        assets = []
        for j, a in enumerate(item.get("assets") or []):
            aw = f"{where}: assets[{j}]"
            if not isinstance(a, dict):
                raise ConfigError(f"{aw} is not a mapping", fix=FIX)
            aid = _text(a, "id", aw)
            aw = f"{where}: asset {aid}"
            if aid in seen_a:
                raise ConfigError(f"{aw}: asset id used twice", fix="give each asset a unique id")
            seen_a.add(aid)
            akind = _text(a, "kind", aw)
            if akind not in ASSET_KINDS:
                raise ConfigError(f"{aw}: kind {akind!r}",
                                  fix="kind is one of " + ", ".join(ASSET_KINDS))
            secs = _names(a, "sectors", aw)
            unknown = [s for s in secs if s not in sectors]
            if unknown:
                raise ConfigError(f"{aw}: sector(s) {', '.join(unknown)} are not the "
                                  "agreement's", fix="use the agreement's sector ids: "
                                  + ", ".join(sectors))
            source = str(a.get("source") or "")
            channel = ASSET_KINDS[akind]
            if channel != "satellite":
                if not source.startswith(channel + ":"):
                    raise ConfigError(f"{aw}: source {source!r} is not a {channel}: source",
                                      fix=f"name the key source its submissions are signed "
                                      f"with, e.g. {channel}:ID")
                if key_sources is not None and source not in key_sources:
                    raise ConfigError(f"{aw}: no key in the key registry signs for {source}",
                                      fix="register the asset's key (trucewatch keys new) "
                                      "or correct its source")
            platforms, stations = _names(a, "platforms", aw), _names(a, "stations", aw)
            if channel == "sensors" and not stations:
                raise ConfigError(f"{aw}: a sensor asset names its stations",
                                  fix="list stations: [ID or pattern, ...]")
            assets.append(Asset(aid, akind, secs, source, platforms, stations,
                                str(a.get("name") or "")))
        out.append(Contributor(cid, cname, kind, _names(item, "roles", where), tuple(assets)))
    return Coalition(str(doc.get("mission") or ""), tuple(out))


def _text(item: dict[str, Any], key: str, where: str) -> str:
    v = item.get(key)
    if not isinstance(v, str | int) or not str(v).strip():
        raise ConfigError(f"{where}: needs {key}", fix=FIX)
    return str(v).strip()


def _names(item: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = item.get(key)
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(x, str | int) and str(x) for x in v):
        raise ConfigError(f"{where}: {key} must be a list of names", fix=FIX)
    return tuple(str(x) for x in v)
