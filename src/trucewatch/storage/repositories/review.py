"""Review: the analysts' locks on incidents, allegations and their rulings."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from trucewatch.integrity.chain import canonical
from trucewatch.storage.database import now
from trucewatch.storage.dialect import upsert
from trucewatch.storage.repositories.base import Repository


class ReviewRepository(Repository):
    """Review locks (transient, not bound into the log), allegations and rulings."""

    def claim(self, incident_id: str, analyst: str, until: datetime,
              name: str | None = None) -> str | None:
        """Take the lock for ``analyst`` (a principal id; ``name`` is how the log and
        others see it) unless someone else holds an unexpired one; return that holder."""
        stamp = now()
        with self._transaction():
            held = self._lock(incident_id, stamp)
            if held and held[0] != analyst:
                return held[1]
            self._x(upsert(self._dialect, self._t("review_locks")).values(
                incident_id=incident_id, analyst=analyst, claimed_at=stamp,
                expires_at=until.isoformat().replace("+00:00", "Z")))
            self._log(name or analyst, "claim", incident_id, {"until": until.isoformat(),
                                                               "principal": analyst})
        return None

    def _lock(self, incident_id: str, at: str) -> tuple[str, str] | None:
        """(holder, 'NAME until TIME') of an unexpired lock, or None."""
        lk, p = self._t("review_locks"), self._t("principals")
        row = self._x(sa.select(lk.c.analyst, lk.c.expires_at, p.c.display_name)
                      .select_from(lk.outerjoin(p, p.c.id == lk.c.analyst))
                      .where(lk.c.incident_id == incident_id)).first()
        if not row or row[1] <= at:
            return None
        return row[0], f"{row[2] or row[0]} until {row[1]}"

    def lock_holder(self, incident_id: str) -> str | None:
        """The principal id holding an unexpired lock, or None."""
        held = self._lock(incident_id, now())
        return held[0] if held else None

    def release(self, incident_id: str, analyst: str) -> str | None:
        """Drop ``analyst``'s lock. A lock someone else holds (unexpired) is kept and
        its holder returned ('NAME until TIME'); no lock at all is no change."""
        lk = self._t("review_locks")
        with self._transaction():
            held = self._lock(incident_id, now())
            if held and held[0] != analyst:
                return held[1]
            self._x(lk.delete().where(lk.c.incident_id == incident_id))
        return None

    # ------------------------------------------------------------- allegations
    def allegations(self) -> list[dict[str, Any]]:
        a = self._t("allegations")
        return [json.loads(r[0]) for r in
                self._x(sa.select(a.c.doc).order_by(a.c.received_at, a.c.id))]

    def save_rulings(self, rulings: list[dict[str, Any]], actor: str = "pipeline") -> None:
        """Store automatic rulings; a ruling an analyst made (basis 'reviewed') is kept."""
        r = self._t("rulings")
        with self._transaction():
            reviewed = {x[0] for x in self._x(sa.select(r.c.allegation_id)
                                              .where(r.c.basis == "reviewed"))}
            stamp = now()
            rows = [{"allegation_id": x["allegation_id"], "ruling": x["ruling"],
                     "basis": x.get("basis", "automatic"),
                     "doc": json.dumps(x, ensure_ascii=False, sort_keys=True), "at": stamp}
                    for x in rulings if x["allegation_id"] not in reviewed]
            self._bind("rulings", [(x["allegation_id"],) for x in rows])
            for row in rows:
                self._x(upsert(self._dialect, r).values(**row))
            self._log(actor, "rule_allegations", "allegations", {
                "rulings": len(rows), "kept_reviewed": len(reviewed),
                "sha256": hashlib.sha256(canonical([x["doc"] for x in rows])).hexdigest()})

    def rulings(self) -> list[dict[str, Any]]:
        r = self._t("rulings")
        return [json.loads(x[0]) for x in
                self._x(sa.select(r.c.doc).order_by(r.c.allegation_id))]
