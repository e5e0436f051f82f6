"""What each concern of the store offers, as protocols: the API, review, reports, intake
and the pipeline type against the narrowest of these they use, not against a concrete
store. The concerns: evidence (:class:`EvidenceStore`), observations
(:class:`ObservationStore`), incidents (:class:`IncidentStore`), review
(:class:`ReviewStore`), tokens (:class:`PrincipalStore`, also :data:`TokenStore`) and
products (:class:`ProductStore`); a few modules need two or more
(:class:`ArchiveStore`, :class:`DecidedStore`, :class:`ReviewDeskStore`,
:class:`SourcesStore`, :class:`BulletinStore`, :class:`ClockStore`, :class:`PassStore`,
with :class:`AtomicStore` for one transaction around several writes), and
:class:`FullStore` is their union. ``SqliteStore`` / ``PostgisStore`` (the facade)
satisfy all of them; each repository in storage.repositories satisfies its own, over
any open
:class:`~trucewatch.storage.database.Database`.

    def export(store: IncidentStore) -> ...          # any store, either backend
    IncidentRepository(Database(url))                # one concern on its own

mypy checks that the facade satisfies :class:`FullStore` (storage.sqlite).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import polars as pl

from trucewatch.ingest.base import Batch, QuarantineEntry
from trucewatch.integrity.chain import LogEntry
from trucewatch.model.enums import SourceKind, Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.principal import PrincipalRecord
from trucewatch.storage.base import IngestReport
from trucewatch.storage.dialect import Box
from trucewatch.storage.repositories.principals import TokenOwner


@runtime_checkable
class EvidenceStore(Protocol):
    """Raw inputs verbatim, batches, quarantine, refusals, the audit log, verification."""

    def ingest(self, batch: Batch, on_progress: Callable[[int], None] | None = None,
               actor: str = "ingest") -> IngestReport: ...
    def refuse(self, raw: bytes, name: str, source: str, reason: str,
               actor: str = "ingest") -> None: ...
    def refused(self) -> list[dict[str, object]]: ...
    def log(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None: ...
    def audit_log(self) -> list[LogEntry]: ...
    def verify(self) -> list[str]: ...
    def quarantine(self, batch_id: str | None = None) -> list[QuarantineEntry]: ...
    def raw_input(self, sha256: str) -> bytes: ...
    def inputs(self, source: str) -> list[dict[str, Any]]: ...
    def batches(self) -> list[dict[str, object]]: ...
    def counts(self) -> dict[str, int]: ...


@runtime_checkable
class ObservationStore(Protocol):
    """Stored observations as columnar tables."""

    def fire_summary(self) -> pl.DataFrame: ...
    def observations_of_batches(self, batch_ids: list[str]) -> pl.DataFrame: ...
    def explosions(self) -> pl.DataFrame: ...
    def observations(self, kind: str) -> pl.DataFrame: ...
    def contract_observations(self, kinds: Iterable[SourceKind | str] | None = None,
                              before: datetime | None = None,
                              since: datetime | None = None) -> pl.DataFrame:
        """Stored observations as the observation contract (model.contract)."""
    def observations_in_bbox(self, min_lon: float, min_lat: float, max_lon: float,
                             max_lat: float) -> list[str]: ...
    def count_observations(self, kinds: Iterable[SourceKind | str],
                           before: datetime | str | None = None,
                           since: datetime | str | None = None) -> int: ...
    def observation_span(self, kinds: Iterable[SourceKind | str]
                         ) -> tuple[datetime, datetime] | None: ...
    def observations_page(self, kind: SourceKind | str, box: Box | None = None,
                          start: datetime | str | None = None,
                          end: datetime | str | None = None, limit: int = 100,
                          offset: int = 0) -> tuple[pl.DataFrame, int]: ...
    def observations_in(self, box: Box | None = None, start: datetime | str | None = None,
                        end: datetime | str | None = None, kind: SourceKind | None = None,
                        near: tuple[float, float, float] | None = None,
                        limit: int | None = None) -> pl.DataFrame: ...


@runtime_checkable
class IncidentStore(Protocol):
    """Incidents, violations, versions and coverage."""

    def save_incidents(self, incidents: list[Incident], violations: list[Violation],
                       replace_automatic: bool = True, actor: str = "pipeline",
                       details: dict[str, Any] | None = None,
                       within: Collection[str] | None = None) -> dict[str, int]: ...
    def batch_count(self) -> int: ...
    def batch_ids(self) -> list[str]: ...
    def record(self, actor: str, action: str, subject: str,
               details: dict[str, Any]) -> None: ...
    def last_record(self, actor: str, action: str) -> dict[str, Any] | None: ...
    def incidents(self, status: Status | None = None) -> list[Incident]: ...
    def incident(self, incident_id: str) -> Incident: ...
    def violations(self) -> list[Violation]: ...
    def incident_digests(self) -> list[tuple[str, str, str, str]]: ...
    def violations_of(self, incident_ids: list[str]) -> list[Violation]: ...
    def save_incident_version(self, inc: Incident, action: str, who: str, why: str,
                              violation: Violation | None = None,
                              who_id: str | None = None) -> int: ...
    def incident_history(self, incident_id: str) -> list[dict[str, Any]]: ...
    def all_history(self) -> list[dict[str, Any]]: ...
    def set_status(self, incident_id: str, new: Status, who: str, why: str) -> None: ...
    def query_incidents(self, *, bbox: tuple[float, float, float, float] | None = None,
                        start: datetime | str | None = None,
                        end: datetime | str | None = None,
                        sector: str | None = None, category: str | None = None,
                        statuses: list[str] | None = None, limit: int = 100,
                        offset: int = 0, raw: bool = False) -> tuple[list[Any], int]: ...
    def save_coverage(self, doc: dict[str, Any], actor: str = "pipeline") -> None: ...
    def latest_coverage(self) -> dict[str, Any] | None: ...


@runtime_checkable
class ReviewStore(Protocol):
    """Review locks, allegations and rulings."""

    def claim(self, incident_id: str, analyst: str, until: datetime,
              name: str | None = None) -> str | None: ...
    def lock_holder(self, incident_id: str) -> str | None: ...
    def release(self, incident_id: str, analyst: str) -> str | None: ...
    def allegations(self) -> list[dict[str, Any]]: ...
    def save_rulings(self, rulings: list[dict[str, Any]], actor: str = "pipeline") -> None: ...
    def rulings(self) -> list[dict[str, Any]]: ...


@runtime_checkable
class PrincipalStore(Protocol):
    """Principals and their API tokens."""

    def principal(self, principal_id: str) -> PrincipalRecord: ...
    def principal_named(self, name: str) -> PrincipalRecord | None: ...
    def principals(self) -> list[PrincipalRecord]: ...
    def bootstrap_open(self) -> bool: ...
    def add_principal(self, name: str, role: str, party: str | None = None,
                      actor: str = "admin") -> PrincipalRecord: ...
    def add_token(self, name: str, role: str, party: str | None = None,
                  actor: str = "admin", reissue: bool = False) -> str: ...
    def token_owner(self, raw: str) -> TokenOwner | None: ...
    def revoke_token(self, name: str, actor: str = "admin", token_id: str | None = None,
                     disable: bool = False) -> int: ...
    def tokens(self) -> list[dict[str, object]]: ...


@runtime_checkable
class ProductStore(Protocol):
    """Published products and checkpoints."""

    def publish_product(self, path: Path, kind: str, report_date: date, audience: str,
                        actor: str = "pipeline", recorded_path: Path | None = None
                        ) -> bool: ...
    def publish_checkpoint(self, out_dir: Path, day: date,
                           key_path: Path | None = None) -> Path: ...
    def products(self) -> list[dict[str, Any]]: ...
    def product(self, name: str) -> dict[str, Any] | None: ...


TokenStore = PrincipalStore  # the "tokens" concern: principals and their tokens


# what a module needs of two or more concerns (Python has no intersection type)
@runtime_checkable
class AtomicStore(Protocol):
    """A store that wraps several writes in one transaction."""

    def atomic(self) -> AbstractContextManager[None]:
        """One transaction around several writes: all are kept, or none."""


@runtime_checkable
class ArchiveStore(ProductStore, EvidenceStore, Protocol):
    """Published products and the evidentiary copies of their bytes (reports.archive)."""


@runtime_checkable
class DecidedStore(IncidentStore, ReviewStore, Protocol):
    """Incidents and the rulings on allegations: what a bulletin's fingerprint rests on
    (reports.basis.source_fingerprint)."""


@runtime_checkable
class ReviewDeskStore(IncidentStore, ReviewStore, PrincipalStore, EvidenceStore, Protocol):
    """What the review service reads and writes: incidents and their versions, review
    locks, the principal deciding, and the audit log (review.workflow)."""


@runtime_checkable
class StreamStore(Protocol):
    """The sensor stream's derived events, taken inputs and resume points (revision 0009)
    and the first copy of each detection id taken (revision 0010)."""

    def stream_state(self, network: str) -> dict[str, Any] | None: ...
    def stream_inputs(self, network: str | None = None) -> list[dict[str, Any]]: ...
    def derived_events(self, network: str | None = None,
                       after_window_us: int | None = None) -> pl.DataFrame: ...
    def stream_detections(self, network: str, ids: list[str] | None = None,
                          limit: int | None = None) -> pl.DataFrame: ...
    def save_stream_step(self, network: str, state: dict[str, Any],
                         inputs: list[dict[str, Any]], events: pl.DataFrame,
                         after_window_us: int | None, actor: str = "stream",
                         details: dict[str, Any] | None = None,
                         firsts: pl.DataFrame | None = None,
                         replace_firsts: bool = False) -> dict[str, int]: ...


@runtime_checkable
class SourcesStore(ObservationStore, EvidenceStore, ReviewStore, Protocol):
    """What was observed and received: the observations, the inputs kept as evidence and
    the allegations (the fuse stage's reads, a worker's plan, a derived render basis)."""


@runtime_checkable
class BulletinStore(ReviewDeskStore, ObservationStore, Protocol):
    """A bulletin rendered from the store: its basis derived from the observations where
    no cycle kept one, the incidents in their review state, rulings and integrity
    (pipeline.bulletins, reports.basis.render_from_store)."""


@runtime_checkable
class ClockStore(BulletinStore, ProductStore, Protocol):
    """The products clock (reports.tiers): incidents, the bulletins it renders, and the
    products it publishes and archives."""


@runtime_checkable
class PassStore(SourcesStore, IncidentStore, AtomicStore, StreamStore, Protocol):
    """One worker pass (pipeline.worker): reads the observations, inputs and allegations,
    advances the sensor stream (its own transaction, before the pass), writes incidents,
    rulings, coverage and its watermark in one transaction; never
    principals, tokens or products."""


class FullStore(EvidenceStore, ObservationStore, IncidentStore, ReviewStore, PrincipalStore,
                ProductStore, AtomicStore, StreamStore, Protocol):
    """Every concern (what the facade is); ``close`` ends it. Only what holds the store
    for every concern types against it: the cycle's context and the service's dependency
    that opens the store."""

    def close(self) -> None: ...


__all__ = ["ArchiveStore", "AtomicStore", "BulletinStore", "ClockStore", "DecidedStore",
           "EvidenceStore", "FullStore", "IncidentStore", "ObservationStore", "PassStore",
           "PrincipalStore", "ProductStore", "ReviewDeskStore", "ReviewStore", "SourcesStore",
           "StreamStore",
           "TokenStore"]
