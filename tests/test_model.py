from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trucewatch.demo import ScenarioFiles
from trucewatch.errors import SchemaVersionError, TransitionError
from trucewatch.model import (
    Category,
    Incident,
    Location,
    Observation,
    SourceKind,
    Status,
    Violation,
    from_dict,
    from_json,
    to_dict,
    to_json,
)

T = datetime(2026, 4, 26, 10, 42, tzinfo=UTC)


def _obs() -> Observation:
    return Observation(id="o-1", source_kind=SourceKind.SATELLITE_FIRE,
                       source_id="firms:VIIRS_NOAA20_NRT", time_start=T, time_end=T,
                       location=Location(47.5, 36.0, 190.0), attributes={"frp": 2.1},
                       raw_sha256="ab" * 32, batch_id="b-1")


def test_roundtrips_are_lossless(scenario: ScenarioFiles) -> None:
    from trucewatch.agreement import load_agreement

    inc = Incident(id="inc-1", category=Category.EXPLOSION_IMPACT, time_start=T, time_end=T,
                   location=Location(47.5, 36.0, 300.0), observation_ids=["o-1"],
                   zone_ids=["buffer:left"])
    vio = Violation(id="v-1", incident_id="inc-1", agreement_id="a", rule="fire_in_buffer_zone",
                    explanation="x", category=Category.FIRE, time=T)
    agreement = load_agreement(scenario.agreement)
    for obj in (_obs(), inc, vio, agreement):
        back = from_json(to_json(obj))
        assert to_dict(back) == to_dict(obj)
        assert type(back) is type(obj)


def test_unknown_fields_are_kept() -> None:
    d = to_dict(_obs()) | {"x_vendor_field": {"a": 1}}
    back = from_dict(d)
    assert back.extra == {"x_vendor_field": {"a": 1}}
    assert to_dict(back)["x_vendor_field"] == {"a": 1}


def test_versioned() -> None:
    d = to_dict(_obs())
    assert d["type"] == "trucewatch/observation" and d["schema_version"] == 1
    with pytest.raises(SchemaVersionError, match="newer"):
        from_dict(d | {"schema_version": 7})
    with pytest.raises(SchemaVersionError, match="unknown payload type"):
        from_dict(d | {"type": "nope"})


def test_naive_time_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        from_dict(to_dict(_obs()) | {"time_start": "2026-04-26T10:42:00"})


def test_status_lifecycle() -> None:
    inc = Incident(id="i", category=Category.FIRE, time_start=T, time_end=T,
                   location=Location(0, 0, 1), observation_ids=[])
    inc.set_status(Status.PENDING_VERIFICATION)
    inc.set_status(Status.VERIFIED)
    with pytest.raises(TransitionError, match="from verified to rejected") as e:
        inc.set_status(Status.REJECTED)
    assert e.value.fix == "allowed next statuses from verified: none"
    assert Status.AUTOMATIC.can_become(Status.REJECTED)
    assert not Status.AUTOMATIC.can_become(Status.VERIFIED)
