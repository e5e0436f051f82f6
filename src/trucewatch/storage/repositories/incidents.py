"""Incidents, candidate violations, their version history, and what the mechanism could
see per cycle (coverage)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa

from trucewatch.errors import NotFoundError
from trucewatch.model.enums import Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.serialization import from_json, to_json
from trucewatch.storage.database import now
from trucewatch.storage.dialect import (
    index_points,
    move_point,
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


def _row(inc: Incident, doc: str) -> dict[str, Any]:
    return {"id": inc.id, "status": inc.status.value, "category": inc.category.value,
            "time_start": inc.time_start.isoformat(), "lat": inc.location.lat,
            "lon": inc.location.lon, "doc": doc}


class IncidentRepository(Repository):
    """Incidents (with their R*Tree / PostGIS point), violations, versions, coverage."""

    def save_incidents(self, incidents: list[Incident], violations: list[Violation],
                       replace_automatic: bool = True, actor: str = "pipeline") -> None:
        """Replace the automatic incidents with a new run's; reviewed ones are kept.
        Each new incident gets version 1 in its history; the run is logged."""
        i, v, iv = self._t("incidents"), self._t("violations"), self._t("incident_versions")
        with self._transaction():
            if replace_automatic:
                # untouched automatic incidents only: analysts' additions and edits stay
                touched = sa.select(iv.c.incident_id).where(iv.c.action != "created")
                stale = sa.select(i.c.id).where(i.c.status == Status.AUTOMATIC.value,
                                                i.c.id.not_in(touched))
                for table, col in ((v, v.c.incident_id), (iv, iv.c.incident_id),
                                   (i, i.c.id)):
                    self._bind_where(table.name, col.in_(stale))
                self._x(v.delete().where(v.c.incident_id.in_(stale)))
                unindex_points(self._dialect, self._db.conn, i, i.c.id.in_(stale))
                self._x(iv.delete().where(iv.c.incident_id.in_(stale)))
                self._x(i.delete().where(i.c.id.in_(stale)))
            kept = {r[0] for r in self._x(sa.select(i.c.id))}
            fresh = [x for x in incidents if x.id not in kept]
            self._bind("incidents", [(x.id,) for x in fresh])
            self._bind("incident_versions", [(x.id, 1) for x in fresh])
            docs = [to_json(x) for x in fresh]
            if fresh:
                self._x(i.insert(), [_row(x, d) for x, d in zip(fresh, docs, strict=True)])
                stamp = now()
                self._x(iv.insert(), [
                    {"incident_id": x.id, "version": 1, "status": x.status.value,
                     "action": "created", "who": actor, "why": x.reason[:200], "at": stamp,
                     "doc": d} for x, d in zip(fresh, docs, strict=True)])
                index_points(self._dialect, self._db.conn, i,
                             i.c.id.in_([x.id for x in fresh]))
            fresh_ids = {x.id for x in fresh}
            new_v = [x for x in violations if x.incident_id in fresh_ids]
            self._bind("violations", [(x.id,) for x in new_v])
            if new_v:
                self._x(v.insert(), [{"id": x.id, "incident_id": x.incident_id,
                                      "doc": to_json(x)} for x in new_v])
            self._log(actor, "adjudicate", "incidents", {
                "new_incidents": len(fresh), "kept_reviewed": len(kept),
                "candidate_violations": len(new_v),
                "incidents_sha256": hashlib.sha256("\n".join(sorted(docs)).encode())
                .hexdigest()})

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
                        start: str | None = None, end: str | None = None,
                        sector: str | None = None, category: str | None = None,
                        statuses: list[str] | None = None, limit: int = 100,
                        offset: int = 0, raw: bool = False
                        ) -> tuple[list[Any], int]:
        """Incidents matching every filter given (bbox through the spatial index), and the
        total. ``raw``: the stored JSON documents as dicts (what the API sends)."""
        i = self._t("incidents")

        def filtered(stmt: sa.Select[Any]) -> sa.Select[Any]:
            if bbox is not None:
                stmt = within_box(self._dialect, stmt, i, bbox)
            if start:
                stmt = stmt.where(i.c.time_start >= start)
            if end:
                stmt = stmt.where(i.c.time_start < end)
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
            i.c.time_start, i.c.id).limit(limit).offset(offset)
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
