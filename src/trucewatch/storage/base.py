"""The storage interface. SQLite implements it now; PostgreSQL + PostGIS will too."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import polars as pl

from trucewatch.ingest.base import Batch, QuarantineEntry
from trucewatch.model.enums import SourceKind, Status
from trucewatch.model.incident import Incident, Violation


@dataclass(frozen=True)
class IngestReport:
    batch_id: str
    name: str
    raw_sha256: str
    rows: int
    new: int
    duplicates: int
    quarantined: int
    already_ingested: bool


class Store(Protocol):
    def ingest(self, batch: Batch) -> IngestReport:
        """Store a batch all-or-nothing: the raw input verbatim, observations, quarantine."""

    def contract_observations(self, kinds: Iterable[SourceKind | str] | None = None,
                              before: datetime | None = None,
                              since: datetime | None = None) -> pl.DataFrame:
        """Stored observations as the observation contract (model.contract)."""

    def quarantine(self, batch_id: str | None = None) -> list[QuarantineEntry]: ...

    def raw_input(self, sha256: str) -> bytes: ...

    def save_incidents(self, incidents: list[Incident], violations: list[Violation],
                       replace_automatic: bool = True) -> None: ...

    def incidents(self, status: Status | None = None) -> list[Incident]: ...

    def violations(self) -> list[Violation]: ...

    def set_status(self, incident_id: str, new: Status, who: str, why: str) -> None: ...

    def counts(self) -> dict[str, int]: ...

    def close(self) -> None: ...
