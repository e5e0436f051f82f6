"""Candidate violations as OASIS CAP 1.2 alerts (Common Alerting Protocol).

One alert per incident that breaks an agreement rule (a stored violation), built from the
store alone, so that the same store gives the same feed:

* ``identifier`` ``<sender>.<incident id>.v<version>``: the incident's history version the
  alert states; a new review decision is a new alert (``msgType`` ``Update`` or
  ``Cancel``) whose ``references`` names the first one;
* ``sent``: when the incident was created (the first alert) or when the decision it
  reports was recorded (later ones), never the time the feed was read;
* ``scope`` ``Restricted`` (with its ``restriction`` text) while the incident is not
  reviewed (automatic, pending verification) and for the decisions that withdraw it
  (rejected, inaccurate, duplicate: ``Cancel``); ``Public`` once it is decided
  ``verified`` (certainty ``Observed``) or ``unverifiable`` (certainty ``Unknown``);
* ``area``: ``areaDesc`` (sector and zones) and a ``circle`` ``"lat,lon radius_km"``
  around the incident's location whose radius holds 95 % of its stated 1-sigma
  uncertainty (2.448 sigma: a circular bivariate normal). The public view is coarsened
  like the public bulletin: the centre is rounded to the 0.1 degree cell and the
  radius grows by the cell's half-diagonal.

:func:`feed` wraps the alerts in an Atom feed (each entry's ``content`` is one CAP
``alert``), the usual way CAP feeds are published.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from xml.etree import ElementTree as ET

from trucewatch.model.enums import Category, Status
from trucewatch.model.incident import Incident, Violation

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
SIGMA_95 = math.sqrt(-2.0 * math.log(0.05))  # 2.4477: a 2-D normal's 95 % circle
PUBLIC_CELL_DEG = 0.1
DEFAULT_SENDER = "trucewatch@mission.invalid"

ET.register_namespace("", CAP_NS)


class Audience(StrEnum):
    """Who reads the feed: ``restricted`` (roles that see unreviewed incidents) or
    ``public`` (everyone else: reviewed alerts only, coarsened locations)."""

    RESTRICTED = "restricted"
    PUBLIC = "public"


UNREVIEWED = frozenset({Status.AUTOMATIC, Status.PENDING_VERIFICATION})
PUBLIC_STATUSES = frozenset({Status.VERIFIED, Status.UNVERIFIABLE})
WITHDRAWN = frozenset({Status.REJECTED, Status.INACCURATE, Status.DUPLICATE})

CERTAINTY = {Status.AUTOMATIC: "Possible", Status.PENDING_VERIFICATION: "Likely",
             Status.VERIFIED: "Observed", Status.UNVERIFIABLE: "Unknown",
             Status.REJECTED: "Unlikely", Status.INACCURATE: "Unlikely",
             Status.DUPLICATE: "Unknown"}
SEVERITY = {Category.STRIKE_ON_PROTECTED_SITE: "Extreme",
            Category.EXPLOSION_IMPACT: "Severe", Category.EXPLOSION_AIRBURST: "Severe",
            Category.EXPLOSION_UNDETERMINED: "Severe",
            Category.HEAVY_WEAPON_IN_RESTRICTED_ZONE: "Severe",
            Category.HEAVY_WEAPON: "Moderate", Category.FIRE: "Moderate",
            Category.VEHICLE_MOVEMENT: "Minor", Category.RESTRICTION_OF_MONITORS: "Minor"}


class AlertSource(Protocol):
    """What the alerts read from a store."""

    def incidents(self, status: Status | None = None) -> list[Incident]: ...

    def violations(self) -> list[Violation]: ...

    def all_history(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Alert:
    """One CAP alert, before it is written as XML."""

    identifier: str
    sender: str
    sent: datetime
    msg_type: str  # Alert, Update, Cancel
    scope: str  # Public, Restricted
    incident: Incident
    violation: Violation
    version: int
    references: str | None = None

    @property
    def public(self) -> bool:
        return self.scope == "Public"


def cap_time(t: datetime) -> str:
    """CAP's dateTime form: seconds, an explicit offset, never ``Z``."""
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t!r}: trucewatch times are UTC-aware")
    return t.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _parse(at: str) -> datetime:
    t = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def circle(inc: Incident, public: bool) -> str:
    """``"lat,lon radius_km"``: the 95 % circle of the location's 1-sigma uncertainty;
    public: centred on the rounded 0.1 degree cell, widened by its half-diagonal."""
    lat, lon = inc.location.lat, inc.location.lon
    radius = max(inc.location.uncertainty_m, 0.0) * SIGMA_95 / 1000.0
    if public:
        lat, lon = round(lat, 1), round(lon, 1)
        half = PUBLIC_CELL_DEG / 2 * 111.32
        radius += math.hypot(half, half * math.cos(math.radians(lat)))
        return f"{lat:.1f},{lon:.1f} {radius:.1f}"
    return f"{lat:.5f},{lon:.5f} {radius:.3f}"


def alerts(store: AlertSource, audience: Audience, sender: str = DEFAULT_SENDER
           ) -> list[Alert]:
    """The feed's alerts for an audience, oldest first (see the module's docstring)."""
    history: dict[str, list[dict[str, Any]]] = {}
    for h in store.all_history():
        history.setdefault(str(h["incident_id"]), []).append(h)
    by_incident = {i.id: i for i in store.incidents()}
    out: list[Alert] = []
    seen: set[str] = set()
    for v in store.violations():
        inc = by_incident.get(v.incident_id)
        if inc is None or inc.id in seen:
            continue
        seen.add(inc.id)
        versions = sorted(history.get(inc.id, []), key=lambda h: int(h["version"]))
        out += _incident_alerts(inc, v, versions, audience, sender)
    return sorted(out, key=lambda a: (a.sent, a.identifier))


def _incident_alerts(inc: Incident, v: Violation, versions: list[dict[str, Any]],
                     audience: Audience, sender: str) -> list[Alert]:
    """The first alert (when the incident was created) and one per later status."""
    first_at = _parse(versions[0]["at"]) if versions else inc.time_end
    first_version = int(versions[0]["version"]) if versions else 1
    first_status = Status(versions[0]["status"]) if versions else inc.status
    first_id = f"{sender}.{inc.id}.v{first_version}"
    chain = [(first_version, first_status, first_at)]
    last = first_status
    for h in versions[1:]:
        status = Status(h["status"])
        if status != last:
            chain.append((int(h["version"]), status, _parse(h["at"])))
            last = status
    made: list[Alert] = []
    for k, (version, status, at) in enumerate(chain):
        public = status in PUBLIC_STATUSES
        if audience == Audience.PUBLIC and not public:
            continue
        msg = "Alert" if k == 0 else "Cancel" if status in WITHDRAWN else "Update"
        refs = None if k == 0 else f"{sender},{first_id},{cap_time(first_at)}"
        if audience == Audience.PUBLIC:
            # the public never saw the restricted first alert: its first one is an Alert,
            # and later ones refer to that
            if not made:
                msg, refs = "Alert", None
            else:
                refs = f"{sender},{made[0].identifier},{cap_time(made[0].sent)}"
        shown = _as_of(inc, status)
        made.append(Alert(f"{sender}.{inc.id}.v{version}", sender, at, msg,
                          "Public" if public else "Restricted", shown, v, version, refs))
    return made


def _as_of(inc: Incident, status: Status) -> Incident:
    from dataclasses import replace

    return replace(inc, status=status)


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def alert_element(a: Alert, audience: Audience) -> ET.Element:
    """One ``<alert>`` in the CAP 1.2 element order."""
    inc, v = a.incident, a.violation
    public = audience == Audience.PUBLIC
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", a.identifier)
    _sub(root, "sender", a.sender)
    _sub(root, "sent", cap_time(a.sent))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", a.msg_type)
    _sub(root, "source", "trucewatch automatic fusion" if inc.status in UNREVIEWED
         else "trucewatch monitoring mission review")
    _sub(root, "scope", a.scope)
    if a.scope == "Restricted":
        _sub(root, "restriction", "Mission staff and coalition partners only: an "
             "unreviewed candidate or a withdrawn one, not for publication")
    if a.references:
        _sub(root, "references", a.references)
    info = _sub(root, "info")
    _sub(info, "language", "en-US")
    _sub(info, "category", "Security")
    _sub(info, "event", f"Candidate ceasefire violation: {inc.category.value}")
    _sub(info, "urgency", "Immediate" if inc.status in UNREVIEWED else "Past")
    _sub(info, "severity", SEVERITY.get(inc.category, "Unknown"))
    _sub(info, "certainty", CERTAINTY[inc.status])
    _sub(info, "onset", cap_time(inc.time_start))
    _sub(info, "senderName", "trucewatch ceasefire monitoring")
    _sub(info, "headline", f"{inc.category.value} ({inc.status.value}) in "
         f"{inc.sector_id or 'no sector'}: rule {v.rule}"[:160])
    desc = f"Rule {v.rule} of agreement {v.agreement_id}; review status {inc.status.value}."
    if not public:
        desc += f" {v.explanation} Observations: {', '.join(inc.observation_ids[:20])}."
    _sub(info, "description", desc)
    for name, value in (("incident_id", inc.id), ("status", inc.status.value),
                        ("rule", v.rule), ("n_sources", str(inc.n_sources))):
        p = _sub(info, "parameter")
        _sub(p, "valueName", name)
        _sub(p, "value", value)
    area = _sub(info, "area")
    zones = ", ".join(inc.zone_ids) or "outside the agreement's zones"
    _sub(area, "areaDesc", f"sector {inc.sector_id or '-'}; {zones}")
    _sub(area, "circle", circle(inc, public))
    return root


def to_xml(a: Alert, audience: Audience) -> bytes:
    """One CAP document (``application/cap+xml``)."""
    return bytes(ET.tostring(alert_element(a, audience), encoding="utf-8",
                             xml_declaration=True))


def feed(items: list[Alert], audience: Audience, feed_id: str, updated: datetime | None = None
         ) -> bytes:
    """An Atom feed whose entries each carry one CAP alert."""
    ET.register_namespace("atom", ATOM_NS)
    root = ET.Element(f"{{{ATOM_NS}}}feed")

    def atom(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}")
        if text is not None:
            el.text = text
        return el

    newest = max((a.sent for a in items), default=updated or datetime(1970, 1, 1, tzinfo=UTC))
    atom(root, "id", feed_id)
    atom(root, "title", f"trucewatch candidate violations ({audience.value})")
    atom(root, "updated", cap_time(updated or newest))
    author = atom(root, "author")
    atom(author, "name", items[0].sender if items else DEFAULT_SENDER)
    for a in items:
        entry = atom(root, "entry")
        atom(entry, "id", a.identifier)
        atom(entry, "title", f"{a.msg_type}: {a.incident.category.value} "
             f"({a.incident.status.value})")
        atom(entry, "updated", cap_time(a.sent))
        content = atom(entry, "content")
        content.set("type", CAP_MEDIA_TYPE)
        content.append(alert_element(a, audience))
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
