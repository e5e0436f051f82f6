"""Property-based checks of the API's models and routes (hypothesis, issue 11): whatever
JSON arrives, the models answer with a validation error or a value, never another
exception; the routes answer below 500, in the one error shape; and every refused
allegation is on the record. A bounded number of examples here (CI time); the larger
run is ``benchmarks/hostile_inputs.py``."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from conftest import BuiltStore
from test_api import _h, _is_error, make_api
from trucewatch.api.app import AllegationForm, Decision, Modification, NewIncident
from trucewatch.api.session import SignIn
from trucewatch.demo import ScenarioFiles
from trucewatch.storage import open_store

Api = tuple[TestClient, dict[str, str], str]


@pytest.fixture()
def api(built_store: BuiltStore, scenario: ScenarioFiles) -> Api:
    return make_api(built_store, scenario)
# the benchmark sets a larger number (benchmarks/hostile_inputs.py)
EXAMPLES = int(os.environ.get("TRUCEWATCH_HYPOTHESIS_EXAMPLES", "60"))
TIMES = ["2026-05-30T04:00:00Z", "2026-05-30T04:00:00+02:00", "0001-01-01T00:00:00+05:00",
         "9999-12-31T23:59:59-05:00", "2026-05-30T04:00:00", "2026-13-45T99:99:99Z", "1e9",
         "1989-12-31T23:59:59Z", "2999-01-01T00:00:00Z", "2026-05-30T04:00:00.123456789Z"]
NUMBERS = st.one_of(st.integers(-10**20, 10**20),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([-90, 90, -180, 180, 0, 1e308, -1e-308]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=40),
                    st.sampled_from(TIMES), st.sampled_from(
                        ["fire", "explosion", "verified", "automatic", "trucewatch-signed/1",
                         "<img src=x onerror=alert(1)>", "uk", "Toretsk", "x" * 3000]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
FIELDS = ["text", "language", "place", "lat", "lon", "time_start", "time_end", "category",
          "why", "status", "duplicate_of", "uncertainty_m", "rule", "token", "allegations"]


def documents() -> st.SearchStrategy[bytes]:
    """JSON texts shaped like the API's bodies (known fields, any values), and some not."""
    shaped = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=8)
    return st.one_of(
        shaped.map(lambda d: json.dumps(d).encode()),  # NaN, Infinity included
        VALUES.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
        st.integers(1, 3000).map(lambda n: b'{"text": ' + b"[" * n + b"]" * n + b"}"))


@settings(max_examples=EXAMPLES * 3, deadline=None)
@given(raw=documents(), model=st.sampled_from([AllegationForm, NewIncident, Modification,
                                               Decision, SignIn]))
def test_models_answer_a_value_or_a_validation_error(raw: bytes,
                                                     model: type[BaseModel]) -> None:
    with contextlib.suppress(ValidationError):
        model.model_validate_json(raw)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=documents())
def test_every_refused_allegation_is_on_the_record(api: Api, raw: bytes) -> None:
    c, tok, db = api
    store = open_store(db)
    before = store.counts()
    r = c.post("/api/v1/allegations", content=raw,
               headers=_h(tok["public"]) | {"Content-Type": "application/json"})
    after = store.counts()
    store.close()
    assert r.status_code < 500, r.text
    if r.status_code == 201:
        assert after["allegations"] == before["allegations"] + 1
    else:
        _is_error(r, r.status_code)
        kept = (after["refused"] - before["refused"]) + (after["quarantine"] -
                                                          before["quarantine"])
        assert kept == 1, (r.text, before, after)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=documents(), route=st.sampled_from(["/review/incidents", "/session",
                                                "/ingest/allegations", "/ingest/firms"]))
def test_posted_bodies_never_make_a_server_error(api: Api, raw: bytes, route: str) -> None:
    c, tok, _ = api
    r = c.post(f"/api/v1{route}", content=raw,
               headers=_h(tok["admin"]) | {"Content-Type": "application/json"})
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        _is_error(r, r.status_code)


QUERY = st.dictionaries(st.sampled_from(["start", "end", "bbox", "limit", "offset", "status",
                                         "category", "sector"]),
                        st.one_of(st.sampled_from(TIMES), st.text(max_size=30),
                                  NUMBERS.map(str), st.just("37,48,38,49")), max_size=4)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=QUERY)
def test_queries_never_make_a_server_error(api: Api, params: dict[str, Any]) -> None:
    c, tok, _ = api
    r = c.get("/api/v1/incidents", params=params, headers=_h(tok["liaison"]))
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        _is_error(r, r.status_code)
