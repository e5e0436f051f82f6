"""Incidents, candidate violations, their version history, and what the mechanism could
see per cycle (coverage)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from trucewatch.errors import NotFoundError
from trucewatch.model.enums import Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.serialization import from_json, to_json
from trucewatch.storage.database import now
from trucewatch.storage.dialect import (
    as_time,
    index_points,
    move_point,
    time_at_or_after,
    time_before,
    unindex_points,
    upsert,
    within_box,
)
from trucewatch.storage.repositories.base import COUNT_CAP, Repository, dicts
from trucewatch.storage.schema import sector_expr


def _incident(doc: str, status: str) -> Incident:
    """An incident row: its document, with the status column (which review changes)."""
    inc = from_json(doc, Incident)
    inc.status = Status(status)
    return inc


_AUTOMATIC_ACTIONS = ("created", "fusion_revised")  # what the pipeline writes itself


def _doc_of(doc: str) -> dict[str, Any]:
    """A stored document without what changes on every run (nothing today: the whole)."""
    return dict(json.loads(doc))


def _fusion_summary(x: Incident) -> dict[str, Any]:
    """What a revision records of a new fusion beside a reviewed incident."""
    return {"observation_ids": list(x.observation_ids), "category": x.category.value,
            "time_start": x.time_start.isoformat(), "time_end": x.time_end.isoformat(),
            "latitude": x.location.lat, "longitude": x.location.lon,
            "uncertainty_m": x.location.uncertainty_m, "n_sources": x.n_sources,
            "rule": x.attributes.get("rule", ""),
            "confidence": x.attributes.get("confidence")}


def _row(inc: Incident, doc: str) -> dict[str, Any]:
    return {"id": inc.id, "status": inc.status.value, "category": inc.category.value,
            "time_start": inc.time_start.isoformat(), "lat": inc.location.lat,
            "lon": inc.location.lon, "doc": doc}


class IncidentRepository(Repository):
    """Incidents (with their R*Tree / PostGIS point), violations, versions, coverage."""

    def save_incidents(self, incidents: list[Incident], violations: list[Violation],
                       replace_automatic: bool = True, actor: str = "pipeline",
                       details: dict[str, Any] | None = None,
                       within: Collection[str] | None = None) -> dict[str, int]:
        """Store a run's incidents, keeping each stored incident's identity.

        A new incident is matched to the stored ones it shares observations with (the
        most shared first, then the smaller id):

        * one a person touched (reviewed, modified, added) keeps its id, document,
          status and history: the new fusion is recorded in it as a revision
          (``attributes["latest_fusion"]``, version ``fusion_revised``), never stored
          as a near-duplicate beside it;
        * an untouched automatic one is updated in place under its id (version
          ``fusion_revised``), its candidate violation replaced;
        * none: the incident is new (version 1, ``created``).

        With ``replace_automatic``, untouched automatic incidents no new one matched are
        removed (their evidence no longer makes an incident). ``within`` (observation
        ids) limits this to the stored incidents holding one of them: an incremental
        pass stores only the incidents of the windows it recomputed, and the others are
        left as they are. The run is logged (``details`` added to its entry). Returns the
        counts."""
        i, v, iv = self._t("incidents"), self._t("violations"), self._t("incident_versions")
        with self._transaction():
            stored = {r[0]: (r[1], r[2]) for r in self._x(sa.select(i.c.id, i.c.doc,
                                                                    i.c.status))}
            touched = {r[0] for r in self._x(sa.select(iv.c.incident_id).where(
                iv.c.action.not_in(_AUTOMATIC_ACTIONS)).distinct())}
            touched |= {k for k, (_, st) in stored.items() if st != Status.AUTOMATIC.value}
            owner: dict[str, str] = {}  # observation id -> stored incident
            for k in sorted(stored):
                for oid in json.loads(stored[k][0]).get("observation_ids", []):
                    owner.setdefault(oid, k)
            by_incident = {x.incident_id: x for x in violations}
            fresh: list[Incident] = []
            updated: list[tuple[Incident, Violation | None]] = []
            folded: dict[str, list[Incident]] = {}
            claimed: set[str] = set()
            for x in incidents:
                if x.id in stored:
                    claimed.add(x.id)
                    if x.id not in touched and _doc_of(stored[x.id][0]) != _doc_of(to_json(x)):
                        updated.append((x, by_incident.get(x.id)))
                    continue
                shared: dict[str, int] = {}
                for oid in x.observation_ids:
                    if oid in owner:
                        shared[owner[oid]] = shared.get(owner[oid], 0) + 1
                ranked = sorted(shared, key=lambda k: (k not in touched, -shared[k], k))
                people = [k for k in ranked if k in touched]
                if people:
                    folded.setdefault(people[0], []).append(x)
                    claimed.add(people[0])
                    continue
                target = next((k for k in ranked if k not in claimed), None)
                if target is None:
                    fresh.append(x)
                    continue
                claimed.add(target)
                vio = by_incident.get(x.id)
                x.id = target
                if _doc_of(stored[target][0]) == _doc_of(to_json(x)):
                    continue  # the same incident under the id it kept: nothing to revise
                if vio is not None:
                    vio = replace(vio, id="vio-" + target[4:], incident_id=target)
                updated.append((x, vio))
            scope = None if within is None else {owner[o] for o in within if o in owner}
            stale = [k for k in stored if k not in touched and k not in claimed
                     and (scope is None or k in scope)] if replace_automatic else []
            if stale:
                for table, col in ((v, v.c.incident_id), (iv, iv.c.incident_id),
                                   (i, i.c.id)):
                    self._bind_where(table.name, col.in_(stale))
                self._x(v.delete().where(v.c.incident_id.in_(stale)))
                unindex_points(self._dialect, self._db.conn, i, i.c.id.in_(stale))
                self._x(iv.delete().where(iv.c.incident_id.in_(stale)))
                self._x(i.delete().where(i.c.id.in_(stale)))
            stamp = now()
            self._bind("incidents", [(x.id,) for x in fresh])
            self._bind("incident_versions", [(x.id, 1) for x in fresh])
            docs = [to_json(x) for x in fresh]
            if fresh:
                self._x(i.insert(), [_row(x, d) for x, d in zip(fresh, docs, strict=True)])
                self._x(iv.insert(), [
                    {"incident_id": x.id, "version": 1, "status": x.status.value,
                     "action": "created", "who": actor, "why": x.reason[:200], "at": stamp,
                     "doc": d} for x, d in zip(fresh, docs, strict=True)])
                index_points(self._dialect, self._db.conn, i,
                             i.c.id.in_([x.id for x in fresh]))
            revisions = [(x, vio, "automatic fusion revised with new evidence")
                         for x, vio in updated]
            for k, news in sorted(folded.items()):
                inc = _incident(*stored[k])
                summary = sorted((_fusion_summary(x) for x in news),
                                 key=lambda f: str(f["time_start"]))
                if inc.attributes.get("latest_fusion") != summary:
                    inc.attributes["latest_fusion"] = summary
                    revisions.append((inc, None, "new evidence re-fused with this reviewed "
                                                 "incident: kept as reviewed, the new "
                                                 "fusion recorded in latest_fusion"))
            for x, vio, why in revisions:
                self._revise(x, vio, actor, why, stamp, replace_violation=x.id not in touched)
            fresh_ids = {x.id for x in fresh}
            new_v = [x for x in violations if x.incident_id in fresh_ids]
            self._bind("violations", [(x.id,) for x in new_v])
            if new_v:
                self._x(v.insert(), [{"id": x.id, "incident_id": x.incident_id,
                                      "doc": to_json(x)} for x in new_v])
            counts = {"new_incidents": len(fresh), "kept_reviewed": len(touched & set(stored)),
                      "candidate_violations": len(new_v)}
            entry: dict[str, Any] = dict(counts)
            if revisions or stale:
                counts |= {"revised": len(revisions), "removed": len(stale)}
                entry |= {"revised": sorted(x.id for x, _, _ in revisions),
                          "removed": len(stale)}
            self._log(actor, "adjudicate", "incidents", entry | {
                "incidents_sha256": hashlib.sha256("\n".join(sorted(docs)).encode())
                .hexdigest()} | (details or {}))
        return counts

    def _revise(self, inc: Incident, violation: Violation | None, actor: str, why: str,
                stamp: str, replace_violation: bool) -> None:
        """The next version of a stored incident, written by the pipeline (inside the
        caller's transaction); an automatic one's candidate violation is replaced."""
        i, iv, v = self._t("incidents"), self._t("incident_versions"), self._t("violations")
        doc = to_json(inc)
        last = self._x(sa.select(sa.func.max(iv.c.version))
                       .where(iv.c.incident_id == inc.id)).scalar()
        version = (last or 0) + 1
        self._bind("incidents", [(inc.id,)])
        self._bind("incident_versions", [(inc.id, version)])
        if replace_violation:
            self._bind_where("violations", v.c.incident_id == inc.id)
            self._x(v.delete().where(v.c.incident_id == inc.id))
            if violation is not None:
                self._bind("violations", [(violation.id,)])
                self._x(v.insert().values(id=violation.id, incident_id=inc.id,
                                          doc=to_json(violation)))
        values = _row(inc, doc)
        values.pop("id")
        self._x(i.update().where(i.c.id == inc.id).values(**values))
        move_point(self._dialect, self._db.conn, i, i.c.id == inc.id,
                   inc.location.lon, inc.location.lat)
        self._x(iv.insert().values(incident_id=inc.id, version=version,
                                   status=inc.status.value, action="fusion_revised",
                                   who=actor, why=why[:200], at=stamp, doc=doc))

    def batch_count(self) -> int:
        """How many input batches the store holds (they are never removed: a watermark)."""
        b = self._t("batches")
        return int(self._x(sa.select(sa.func.count()).select_from(b)).scalar_one())

    def batch_ids(self) -> list[str]:
        """The ids of every stored input batch (never removed), sorted."""
        b = self._t("batches")
        return [str(r[0]) for r in self._x(sa.select(b.c.id).order_by(b.c.id))]

    def record(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
        """One logged event with no rows of its own (inside a caller's transaction, it is
        kept or lost with the caller's writes)."""
        with self._transaction():
            self._log(actor, action, subject, details)

    def last_record(self, actor: str, action: str) -> dict[str, Any] | None:
        """The details of the latest logged event of ``actor`` doing ``action``."""
        g = self._t("audit_log")
        doc = self._x(sa.select(g.c.details).where(g.c.actor == actor, g.c.action == action)
                      .order_by(g.c.seq.desc()).limit(1)).scalar()
        return json.loads(doc) if doc else None

    def incidents(self, status: Status | None = None) -> list[Incident]:
        i = self._t("incidents")
        stmt = sa.select(i.c.doc, i.c.status)
        if status:
            stmt = stmt.where(i.c.status == status.value)
        return [_incident(doc, st)
                for doc, st in self._x(stmt.order_by(i.c.time_start, i.c.id))]

    def incident(self, incident_id: str) -> Incident:
        i = self._t("incidents")
        row = self._x(sa.select(i.c.doc, i.c.status).where(i.c.id == incident_id)).first()
        if row is None:
            raise NotFoundError(f"no incident {incident_id}",
                                fix="list incidents with `trucewatch review queue`")
        return _incident(row[0], row[1])

    def incident_digests(self) -> list[tuple[str, str, str, str]]:
        """(id, time_start, status, SHA-256 of the stored document with its violations'
        documents) of every incident: what changed, told without decoding a document
        (the products clock compares these before it reads the incidents of a day)."""
        i, v = self._t("incidents"), self._t("violations")
        vio: dict[str, list[str]] = {}
        for inc_id, doc in self._x(sa.select(v.c.incident_id, v.c.doc).order_by(v.c.id)):
            vio.setdefault(str(inc_id), []).append(str(doc))
        out = []
        for inc_id, t, st, doc in self._x(sa.select(i.c.id, i.c.time_start, i.c.status,
                                                    i.c.doc).order_by(i.c.id)):
            h = hashlib.sha256(str(doc).encode())
            for d in vio.get(str(inc_id), []):
                h.update(b"\0" + d.encode())
            out.append((str(inc_id), str(t), str(st), h.hexdigest()))
        return out

    def violations_of(self, incident_ids: list[str]) -> list[Violation]:
        """The violations of these incidents only (decoding every one costs)."""
        v = self._t("violations")
        out: list[Violation] = []
        for k in range(0, len(incident_ids), 500):
            part = incident_ids[k:k + 500]
            out += [from_json(r[0], Violation) for r in self._x(
                sa.select(v.c.doc).where(v.c.incident_id.in_(part)).order_by(v.c.id))]
        return out

    def violations(self) -> list[Violation]:
        v = self._t("violations")
        return [from_json(r[0], Violation)
                for r in self._x(sa.select(v.c.doc).order_by(v.c.id))]

    def save_incident_version(self, inc: Incident, action: str, who: str, why: str,
                              violation: Violation | None = None,
                              who_id: str | None = None) -> int:
        """Write a reviewed (or analyst-added) incident as its next version, logged;
        ``who_id``: the acting principal's id (``who`` is its name, for people)."""
        i, iv, v = self._t("incidents"), self._t("incident_versions"), self._t("violations")
        doc = to_json(inc)
        with self._transaction():
            last = self._x(sa.select(sa.func.max(iv.c.version))
                           .where(iv.c.incident_id == inc.id)).scalar()
            version = (last or 0) + 1
            self._bind("incidents", [(inc.id,)])
            self._bind("incident_versions", [(inc.id, version)])
            if violation is not None:
                self._bind("violations", [(violation.id,)])
            if version == 1:
                self._x(i.insert().values(**_row(inc, doc)))
                index_points(self._dialect, self._db.conn, i, i.c.id == inc.id)
            else:
                values = _row(inc, doc)
                values.pop("id")
                self._x(i.update().where(i.c.id == inc.id).values(**values))
                move_point(self._dialect, self._db.conn, i, i.c.id == inc.id,
                           inc.location.lon, inc.location.lat)
            if violation is not None:
                self._x(upsert(self._dialect, v).values(
                    id=violation.id, incident_id=violation.incident_id,
                    doc=to_json(violation)))
            self._x(iv.insert().values(incident_id=inc.id, version=version,
                                       status=inc.status.value, action=action, who=who,
                                       why=why, at=now(), doc=doc, who_id=who_id))
            self._log(who, action, inc.id, {"version": version, "status": inc.status.value,
                                            "why": why,
                                            "doc_sha256": hashlib.sha256(doc.encode())
                                            .hexdigest()}
                      | ({"principal": who_id} if who_id else {}))
        return version

    def incident_history(self, incident_id: str) -> list[dict[str, Any]]:
        iv = self._t("incident_versions")
        return dicts(self._x(sa.select(iv.c.version, iv.c.status, iv.c.action, iv.c.who,
                                       iv.c.why, iv.c.at, iv.c.doc, iv.c.who_id)
                             .where(iv.c.incident_id == incident_id).order_by(iv.c.version)))

    def all_history(self) -> list[dict[str, Any]]:
        iv = self._t("incident_versions")
        return dicts(self._x(sa.select(iv.c.incident_id, iv.c.version, iv.c.status,
                                       iv.c.action, iv.c.who, iv.c.at, iv.c.who_id)
                             .order_by(iv.c.incident_id, iv.c.version)))

    def set_status(self, incident_id: str, new: Status, who: str, why: str) -> None:
        """Low-level status change (the review workflow adds locks and the two-person rule)."""
        inc = self.incident(incident_id)
        inc.set_status(new)
        self.save_incident_version(inc, f"status:{new.value}", who, why)

    def query_incidents(self, *, bbox: tuple[float, float, float, float] | None = None,
                        start: datetime | str | None = None,
                        end: datetime | str | None = None,
                        sector: str | None = None, category: str | None = None,
                        statuses: list[str] | None = None, limit: int = 100,
                        offset: int = 0, raw: bool = False
                        ) -> tuple[list[Any], int]:
        """Incidents matching every filter given (bbox through the spatial index), and the
        total. ``start`` (inclusive) / ``end`` (exclusive) bound the incident's start,
        compared as times (aware datetimes or ISO text with an offset; storage.dialect).
        ``raw``: the stored JSON documents as dicts (what the API sends)."""
        i = self._t("incidents")

        def filtered(stmt: sa.Select[Any]) -> sa.Select[Any]:
            if bbox is not None:
                stmt = within_box(self._dialect, stmt, i, bbox)
            if start is not None and start != "":
                stmt = stmt.where(time_at_or_after(self._dialect, i.c.time_start, start))
            if end is not None and end != "":
                stmt = stmt.where(time_before(self._dialect, i.c.time_start, end))
            if sector:
                stmt = stmt.where(sector_expr(i.c.doc, self._dialect) == sector)
            if category:
                stmt = stmt.where(i.c.category == category)
            if statuses is not None:
                stmt = stmt.where(i.c.status.in_(statuses))
            return stmt

        # the total is counted up to COUNT_CAP: past it a client pages on (next_offset)
        # rather than waiting for an exact count of a million rows
        capped = filtered(sa.select(sa.literal(1)).select_from(i)).limit(COUNT_CAP + 1)
        total = int(self._x(sa.select(sa.func.count()).select_from(capped.subquery()))
                    .scalar_one())
        page = filtered(sa.select(i.c.doc, i.c.status)).order_by(
            as_time(self._dialect, i.c.time_start), i.c.id).limit(limit).offset(offset)
        rows = self._x(page).all()
        if raw:
            return [json.loads(doc) | {"status": st} for doc, st in rows], total
        return [_incident(doc, st) for doc, st in rows], total

    # ------------------------------------------------------------- coverage
    def save_coverage(self, doc: dict[str, Any], actor: str = "pipeline") -> None:
        text = json.dumps(doc)
        c = self._t("coverage")
        with self._transaction():
            cid = self._x(c.insert().values(at=now(), doc=text).returning(c.c.id)).scalar_one()
            self._bind("coverage", [(cid,)], new=True)
            self._log(actor, "coverage", str(cid), {
                "sha256": hashlib.sha256(text.encode()).hexdigest()})

    def latest_coverage(self) -> dict[str, Any] | None:
        c = self._t("coverage")
        doc = self._x(sa.select(c.c.doc).order_by(c.c.id.desc()).limit(1)).scalar()
        return json.loads(doc) if doc else None
