"""Background loops that run inside ``trucewatch serve``: the products clock and the
webhook dispatcher. Each is a :class:`Periodic`: one daemon thread that runs its step
every ``interval_s`` seconds, opening the store for the step and closing it after (so it
shares nothing with the request handlers), until stopped. A step that fails is logged
and tried again at the next interval: a loop never takes the service down, and a
webhook endpoint that hangs holds only the dispatcher's thread, for at most its
timeout per attempt (the API goes on answering).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from trucewatch.alerts import cap, webhooks
from trucewatch.errors import ConfigError
from trucewatch.reports import tiers
from trucewatch.storage import open_store

log = logging.getLogger(__name__)


class Periodic:
    """``step(stop)`` every ``interval_s`` seconds on a daemon thread (the first at once).
    ``stop`` is the loop's stop event: a step that waits (a retry's backoff) waits on it,
    so that :meth:`stop` is not held up by it."""

    def __init__(self, name: str, interval_s: float,
                 step: Callable[[threading.Event], object]) -> None:
        if not interval_s > 0:
            raise ConfigError(f"{name}: interval {interval_s!r} s is not positive",
                              fix="give an interval of 1 s or more")
        self.name, self.interval_s, self.step = name, float(interval_s), step
        self.runs = 0
        self.failures = 0
        self.last_error = ""
        self.done = threading.Event()  # set after each step (tests wait on it)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step(self._stop)
            except Exception as err:  # logged; the next interval tries again
                self.failures += 1
                self.last_error = f"{type(err).__name__}: {err}"[:500]
                log.exception("%s: step failed", self.name)
            self.runs += 1
            self.done.set()
            self._stop.wait(self.interval_s)


def products_clock(store: Path | str, out_dir: Path, interval_s: float = 60.0,
                   schedule: tiers.Schedule | None = None,
                   catch_up_days: int = tiers.DEFAULT_CATCH_UP_DAYS,
                   bulletins: tiers.BulletinMaker | None = None,
                   clock: tiers.Clock = tiers.Clock.WALL) -> Periodic:
    """The products clock (:func:`trucewatch.reports.tiers.tick` at the current time, or
    with ``clock`` data at the end of the store's latest data day: a replay's products
    are cut as its data pass), started. ``bulletins``: renders the daily bulletin's
    HTML/PDF at the cut (:class:`trucewatch.pipeline.bulletins.StoreBulletins`); None:
    JSON only."""
    schedule = schedule or tiers.Schedule()
    said: set[tuple[str, str]] = set()  # each "not rendered" reason is logged once

    def step(_: threading.Event) -> None:
        db = open_store(store, pooled=True)
        try:
            now = tiers.clock_time(db, clock, datetime.now(UTC))
            r = tiers.tick(db, now, out_dir, schedule,
                           catch_up_days=catch_up_days, bulletins=bulletins)
        finally:
            db.close()
        for p in r.published:
            log.info("published %s (%s)", p.name, p.reason)
        for day, why in r.not_rendered.items():
            if (day.isoformat(), why) not in said:
                said.add((day.isoformat(), why))
                log.warning("daily bulletin %s: HTML/PDF not rendered (%s); its JSON "
                            "product is published", day, why)

    return Periodic("products-clock", interval_s, step).start()


def webhook_dispatcher(store: Path | str, hook: webhooks.Webhook, sent_path: Path,
                       dead_path: Path, interval_s: float = 30.0,
                       audience: cap.Audience = cap.Audience.RESTRICTED) -> Periodic:
    """Delivers each alert not yet delivered to ``hook`` (:func:`webhooks.push_alerts`:
    the delivery record in ``sent_path`` survives a restart, failures go to the dead
    letters in ``dead_path``), started."""
    dead = webhooks.DeadLetters(dead_path)

    def step(stop: threading.Event) -> None:
        def backoff(seconds: float) -> None:
            stop.wait(seconds)  # a stop ends the wait at once

        db = open_store(store, pooled=True)
        try:
            r = webhooks.push_alerts(db, hook, sent_path, dead, audience, sleep=backoff)
        finally:
            db.close()
        if r.sent or r.failed:
            log.info("webhooks: %d delivered, %d dead-lettered", len(r.sent), len(r.failed))

    return Periodic("webhook-dispatcher", interval_s, step).start()
