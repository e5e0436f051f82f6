"""The plausible time range of an observation: one definition for every source.

An observation (a fire detection, a sensor detection, a drone report or patrol, an
allegation's times) is plausible from :data:`EARLIEST` (1990-01-01T00:00:00Z, before
any source trucewatch reads: FIRMS MODIS begins in November 2000) up to the receiving
clock's ``now`` plus :data:`FUTURE_SLACK` (5 minutes, for clocks that differ). FIRMS
gives UTC dates only: an ``acq_date`` is plausible from ``EARLIEST``'s date to ``now``'s
date plus one day (a satellite's UTC date can be ahead of the receiver's).

A row outside the range is quarantined with the reason :func:`time_problem` gives; the
rest of its input goes on. The checks compare aware datetimes, which never overflows,
so times such as ``0001-01-01T00:00:00+01:00`` or ``9999-12-31T23:00:00-05:00`` (whose
conversion to UTC leaves the range of :class:`datetime.datetime`) are refused cleanly,
before anything converts them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(minutes=5)
FUTURE_SLACK_DAYS = 1  # for UTC dates (FIRMS acq_date)
# agreement times (entry into force, notified windows) lie before this: far enough from
# year 9999 that adding a grace period or a window to them cannot overflow
LATEST_AGREEMENT_TIME = datetime(9000, 1, 1, tzinfo=UTC)


def time_problem(t: datetime, now: datetime, what: str = "time") -> str | None:
    """Why ``t`` is no plausible observation time (``None`` when it is one). ``t`` must be
    aware (a naive time is each source's own "no UTC offset" reason)."""
    if t.tzinfo is None or t.utcoffset() is None:
        return f"{what} has no UTC offset; write it like 2026-05-30T04:12:00Z"
    if t < EARLIEST:
        return f"{what} {t.isoformat()} is before {EARLIEST.date().isoformat()} (the " \
               "earliest plausible observation time)"
    if t > now + FUTURE_SLACK:
        return f"{what} {t.isoformat()} is in the future"
    return None



def query_time(value: datetime | str, what: str = "time") -> datetime:
    """A query's bound as an aware UTC datetime: a datetime with an offset, or ISO-8601
    text with one (``Z`` or ``+HH:MM``; any fraction of a second). A naive time or text
    that is no time raises :class:`~trucewatch.errors.InvalidInputError`: a store
    compares times, and a time without an offset is no instant."""
    from trucewatch.errors import InvalidInputError

    fix = "give the time with its UTC offset, e.g. 2026-05-30T04:00:00Z"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00")
                                           .replace("z", "+00:00"))
        except ValueError:
            raise InvalidInputError(f"{what} {value!r} is not an ISO-8601 time",
                                    fix=fix) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{what} {value.isoformat()} has no UTC offset", fix=fix)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError(f"{what} {value.isoformat()} is out of range in UTC",
                                fix=fix) from None
