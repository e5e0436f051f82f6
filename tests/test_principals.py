"""Principals, not names (issue 11, item 4): every review action is made by an
authenticated principal, names are canonical and unique, the two-person rule compares
principals, revoking frees nothing and forges nothing; tokens need an admin; review
input is validated; a claim is released only by its holder. Each test names the
finding it covers."""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from trucewatch.errors import TrucewatchError, TwoPersonRuleError
from trucewatch.model.enums import Category, Status
from trucewatch.model.incident import Incident, Violation
from trucewatch.model.observation import Location
from trucewatch.model.serialization import to_json
from trucewatch.storage import SqliteStore

T = datetime(2026, 5, 30, 4, 0, tzinfo=UTC)
CLI = [sys.executable, "-m", "trucewatch"]


def _incidents(store: SqliteStore, n: int = 3) -> None:
    incs = [Incident(id=f"inc-{k}", category=Category.EXPLOSION_IMPACT, time_start=T,
                     time_end=T, location=Location(48.0, 37.5 + k / 100, 50.0),
                     observation_ids=[f"o{k}"],
                     attributes={"rule": "explosion_in_buffer_zone", "confidence": k / 10})
            for k in range(n)]
    vios = [Violation(id=f"vio-{k}", incident_id=f"inc-{k}", agreement_id="a",
                      rule="explosion_in_buffer_zone", explanation="x",
                      category=Category.EXPLOSION_IMPACT, time=T) for k in range(n)]
    store.save_incidents(incs, vios)


def _cli(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRUCEWATCH_TOKEN"}
    if token is not None:
        env["TRUCEWATCH_TOKEN"] = token
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env)


def _one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ----------------------------------------------------------------- canonical names
def test_lookalike_names_are_one_principal() -> None:
    """Finding: `anna` and `ANNA`, or `mallory` and `mallory\\u200b`, count as two
    people. Canonical names (NFKC, casefold, no invisible or control characters) are
    unique; a look-alike is refused, never a second principal."""
    from trucewatch.model.principal import canonical_name

    store = SqliteStore()
    store.add_token("anna", "analyst")
    store.add_token("mallory", "reviewer")
    for twin in ("ANNA", " Anna ", "\uff41\uff4e\uff4e\uff41", "anna"):  # fullwidth: NFKC
        with pytest.raises(TrucewatchError, match="taken") as e:
            store.add_token(twin, "reviewer")
        assert e.value.code == "principal_conflict"
    for bad in ("mallory\u200b", "mal\u200dlory", "\ufeffmallory", "mallory\u202e",
                "mallory\u2060", "mal\x07lory", "mal\nlory", "", "   ", "\u0430nna",
                "pipeline"):
        with pytest.raises(TrucewatchError) as e:
            store.add_token(bad, "reviewer")
        assert e.value.code == "validation_error", bad
    assert canonical_name("  Anna   Kovalenko ") == "anna kovalenko"
    assert canonical_name("Stra\u00dfe") == canonical_name("STRASSE")
    assert canonical_name("\u041a\u043e\u0432\u0430\u043b\u0435\u043d\u043a\u043e") == \
        "\u043a\u043e\u0432\u0430\u043b\u0435\u043d\u043a\u043e"  # one script: fine
    assert [p.name for p in store.principals()] == ["anna", "mallory"]
    assert store.principal_named("ANNA") == store.principal_named("anna")


def test_whole_script_lookalikes_of_a_name_are_refused(tmp_path: Path) -> None:
    """Hostile finding: a name wholly in Cyrillic (or Greek) letters that look Latin
    (``расо``: р, а, с, о) is one script, so the mixed-script check let it through, and
    it impersonated the Latin ``paco``. A name whose skeleton is another principal's is
    refused, both ways round, through the store, the CLI and the API alike."""
    from trucewatch.model.principal import skeleton

    store = SqliteStore(tmp_path / "s.db")
    store.add_token("paco", "reviewer")
    store.add_token("topaz", "reviewer")
    store.add_token("сова", "analyst")  # сова, Cyrillic: its own name
    assert skeleton("расо") == "paco"
    for twin in ("расо",      # расо, all Cyrillic
                 "\u03c4\u03bf\u03c1\u03b1\u03b6",  # all Greek (tau omicron rho alpha zeta)
                 "РАСО",      # РАСО, upper case
                 "coba"):                          # Latin, like сова
        with pytest.raises(TrucewatchError, match="looks like the name of principal") as e:
            store.add_token(twin, "admin")
        assert e.value.code == "principal_conflict", twin
        assert e.value.fix
    # a Cyrillic name that looks like no other is a name like any other
    store.add_token("олена", "analyst")  # олена
    assert [p.name for p in store.principals()] == [
        "paco", "topaz", "сова", "олена"]
    # the CLI says it in one line, exit 2
    r = subprocess.run([sys.executable, "-c", "from trucewatch.cli.app import main; main()",
                        "tokens", "new", "расо", "--role", "analyst",
                        "--store", str(tmp_path / "s.db"),
                        "--token", store.add_token("root", "admin")],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    [line] = r.stderr.splitlines()
    assert line.startswith("error: the name") and "looks like" in line and "(fix: " in line
    store.close()


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=20))
def test_canonical_names_are_stable(name: str) -> None:
    """Any name is refused or has one canonical form: canonicalising it again, or
    looking it up, gives the same form (a stored name is found by its own text)."""
    from trucewatch.errors import InvalidInputError
    from trucewatch.model.principal import canonical_name, legacy_key

    try:
        c = canonical_name(name)
    except InvalidInputError:
        return
    assert canonical_name(c) == c == legacy_key(name) == legacy_key(c)
    assert c and c == c.strip() and "  " not in c


# ----------------------------------------------------------------- the two-person rule
@pytest.fixture()
def served(tmp_path: Path) -> tuple[TestClient, dict[str, str], Path]:
    from trucewatch.api import create_app

    db = tmp_path / "s.db"
    store = SqliteStore(db)
    _incidents(store)
    tokens = {"admin": store.add_token("root", "admin"),
              "anna": store.add_token("anna", "reviewer"),
              "ben": store.add_token("ben", "reviewer"),
              "carla": store.add_token("carla", "analyst")}
    tokens["anna2"] = store.add_token("Anna", "reviewer", reissue=True)  # a second token
    store.close()
    return TestClient(create_app(db), raise_server_exceptions=False), tokens, db


def test_two_tokens_of_one_principal_are_one_person(
        served: tuple[TestClient, dict[str, str], Path]) -> None:
    """Finding: the two-person rule trusts names. It compares principal ids: a second
    token of the same person does not make a second person."""
    c, tok, db = served
    assert c.post("/api/v1/review/inc-1/claim", headers=_h(tok["anna"])).status_code == 200
    r = c.post("/api/v1/review/inc-1/decide", headers=_h(tok["anna"]),
               json={"status": "pending_verification", "why": "frame agrees"})
    assert r.status_code == 200, r.text
    assert c.post("/api/v1/review/inc-1/claim", headers=_h(tok["anna2"])).status_code == 200
    r = c.post("/api/v1/review/inc-1/decide", headers=_h(tok["anna2"]),
               json={"status": "verified", "why": "me again"})
    assert r.status_code == 403 and r.json()["error"] == "two_person_rule", r.text
    assert c.post("/api/v1/review/inc-1/claim", headers=_h(tok["ben"])).status_code == 200
    r = c.post("/api/v1/review/inc-1/decide", headers=_h(tok["ben"]),
               json={"status": "verified", "why": "second look"})
    assert r.status_code == 200 and r.json()["status"] == "verified"
    store = SqliteStore(db)
    hist = store.incident_history("inc-1")
    anna, ben = store.principal_named("anna"), store.principal_named("ben")
    assert anna and ben and anna.id != ben.id
    # history shows names, and keeps who acted as a principal id
    assert [(h["who"], h["who_id"]) for h in hist[1:]] == [("anna", anna.id),
                                                           ("ben", ben.id)]
    assert store.verify() == []


def test_the_service_refuses_a_made_up_principal() -> None:
    """The review service acts only for a principal of the store: a name, or an object
    with an id the store does not know, is refused."""
    from trucewatch.review import ReviewService

    store = SqliteStore()
    _incidents(store)
    svc = ReviewService(store)
    anna = store.add_principal("anna", "analyst")
    svc.claim("inc-0", anna)

    class Forged:
        id = "p-forged"
        name = "anna"

    with pytest.raises(TrucewatchError, match="not a principal") as e:
        svc.claim("inc-1", Forged())
    assert e.value.code == "unauthorized"
    store.revoke_token("anna", disable=True)
    with pytest.raises(TrucewatchError, match="disabled"):
        svc.claim("inc-1", anna)


# ----------------------------------------------------------------- tokens and the CLI
def test_review_commands_need_a_token(tmp_path: Path) -> None:
    """Finding: `review --as` takes any name. Every review command acts as the token's
    principal (TRUCEWATCH_TOKEN or --token); none, unknown, revoked or a mismatching
    --as is one line, exit 2."""
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    _incidents(store)
    anna = store.add_token("anna", "analyst")
    ben = store.add_token("ben", "reviewer")
    old = store.add_token("dan", "analyst")
    store.revoke_token("dan")
    store.add_token("eve", "coalition")
    eve = store.add_token("eve", "coalition", reissue=True)
    store.close()
    s = ["--store", str(db)]
    _one_line_error(_cli("review", "claim", "inc-0", "--as", "anna", *s), "no token",
                    "TRUCEWATCH_TOKEN")
    _one_line_error(_cli("review", "claim", "inc-0", *s, token="tw_made_up"),
                    "unknown or revoked")
    _one_line_error(_cli("review", "claim", "inc-0", *s, token=old), "unknown or revoked")
    _one_line_error(_cli("review", "claim", "inc-0", "--as", "ben", *s, token=anna),
                    "--as ben", "anna")
    _one_line_error(_cli("review", "claim", "inc-0", *s, token=eve), "coalition")
    ok = _cli("review", "claim", "inc-0", "--as", "ANNA", *s, token=anna)
    assert ok.returncode == 0 and "anna holds inc-0" in ok.stdout, ok.stderr
    ok = _cli("review", "decide", "inc-0", "--token", anna, "--status",
              "pending_verification", "--why", "frame agrees", *s)
    assert ok.returncode == 0, ok.stderr
    # an analyst proposes; only a reviewer (or admin) confirms, as in the API
    _cli("review", "claim", "inc-1", *s, token=anna)
    _cli("review", "decide", "inc-1", "--status", "pending_verification", "--why", "x", *s,
         token=anna)
    _cli("review", "claim", "inc-1", *s, token=ben)
    assert _cli("review", "decide", "inc-1", "--status", "verified", "--why", "y", *s,
                token=ben).returncode == 0
    _cli("review", "claim", "inc-2", *s, token=anna)
    _cli("review", "decide", "inc-2", "--status", "pending_verification", "--why", "x", *s,
         token=anna)
    _cli("review", "claim", "inc-2", *s, token=anna)
    _one_line_error(_cli("review", "decide", "inc-2", "--status", "verified", "--why", "y",
                         *s, token=anna), "only a reviewer")
    store = SqliteStore(db)
    assert [h["who"] for h in store.incident_history("inc-1")] == ["pipeline", "anna", "ben"]


def test_tokens_new_needs_an_admin(tmp_path: Path) -> None:
    """Finding: `tokens new --role admin` needs only file access. The first token of a
    store is its admin (bootstrap); after that every token needs an admin's token."""
    db = str(tmp_path / "s.db")
    _one_line_error(_cli("tokens", "new", "anna", "--role", "analyst", "--store", db),
                    "first token", "admin")
    first = _cli("tokens", "new", "root", "--role", "admin", "--store", db)
    assert first.returncode == 0, first.stderr
    root = first.stdout.split()[-1]  # the token is the last word (a stable contract)
    assert root.startswith("tw_")
    _one_line_error(_cli("tokens", "new", "eve", "--role", "admin", "--store", db),
                    "admin's token")
    made = _cli("tokens", "new", "anna", "--role", "analyst", "--store", db, token=root)
    assert made.returncode == 0, made.stderr
    anna = made.stdout.split()[-1]
    _one_line_error(_cli("tokens", "new", "eve", "--role", "admin", "--store", db,
                         token=anna), "admin")
    _one_line_error(_cli("tokens", "new", "eve", "--role", "admin", "--store", db,
                         token="tw_made_up"), "unknown or revoked")
    _one_line_error(_cli("tokens", "revoke", "root", "--store", db, token=anna), "admin")
    _one_line_error(_cli("tokens", "new", "ANNA", "--role", "reviewer", "--store", db,
                         token=root), "taken")
    eve = _cli("tokens", "new", "eve", "--role", "admin", "--store", db, "--token", root)
    assert eve.returncode == 0, eve.stderr
    listed = _cli("tokens", "list", "--store", db).stdout
    assert "root" in listed and "anna" in listed and "eve" in listed
    store = SqliteStore(db)
    assert store.token_owner(anna) is not None
    actors = [(e.actor, e.action, e.subject) for e in store.audit_log()
              if e.action.startswith(("principal", "token"))]
    assert ("bootstrap", "token_created", "root") in actors
    assert ("root", "token_created", "anna") in actors
    assert store.verify() == []


def test_a_revoked_principal_is_reissued_not_forged(tmp_path: Path) -> None:
    """Finding: a revoked name can never be issued again. Revoking a token frees
    nothing: the name stays with its principal; an admin issues that same principal a
    new token (--reissue), and nobody else can take the name."""
    db = str(tmp_path / "s.db")
    root = _cli("tokens", "new", "root", "--role", "admin", "--store", db).stdout.split()[-1]
    leaked = _cli("tokens", "new", "anna", "--role", "analyst", "--store", db,
                  token=root).stdout.split()[-1]
    store = SqliteStore(db)
    first = store.token_owner(leaked)
    assert first is not None
    store.close()
    assert _cli("tokens", "revoke", "anna", "--store", db, token=root).returncode == 0
    store = SqliteStore(db)
    assert store.token_owner(leaked) is None
    store.close()
    # the name is not free: a plain `tokens new` is refused, a reissue continues her
    _one_line_error(_cli("tokens", "new", "Anna", "--role", "analyst", "--store", db,
                         token=root), "taken", "--reissue")
    again = _cli("tokens", "new", "anna", "--role", "analyst", "--reissue", "--store", db,
                 token=root)
    assert again.returncode == 0, again.stderr
    store = SqliteStore(db)
    owner = store.token_owner(again.stdout.split()[-1])
    assert owner is not None and owner.id == first.id and owner.name == "anna"
    assert store.token_owner(leaked) is None  # the leaked one stays dead
    # a role change is an admin's reissue too
    store.add_token("anna", "reviewer", reissue=True, actor="root")
    assert store.principal_named("anna").role == "reviewer"  # type: ignore[union-attr]
    with pytest.raises(TrucewatchError, match="no principal named"):
        store.add_token("zoe", "analyst", reissue=True)
    # disabling a principal keeps its name forever and issues it nothing again
    store.revoke_token("anna", disable=True)
    with pytest.raises(TrucewatchError, match="disabled"):
        store.add_token("anna", "analyst", reissue=True)
    with pytest.raises(TrucewatchError, match="taken"):
        store.add_token("ANNA", "analyst")
    # the last admin cannot lock the store out
    with pytest.raises(TrucewatchError, match="last admin"):
        store.revoke_token("root")
    assert store.verify() == []


# ----------------------------------------------------------------- validation
def test_review_add_and_modify_validate_their_input() -> None:
    """Finding: `review add` stores lat 999 and uncertainty -5 (and time_end before
    time_start). Out-of-range, non-finite, naive or implausible values are refused
    with a clear error (validation_error, 422) and nothing is stored."""
    from trucewatch.review import ReviewService

    store = SqliteStore()
    _incidents(store)
    svc = ReviewService(store)
    anna = store.add_principal("anna", "analyst")
    good: dict[str, Any] = {"category": Category.FIRE, "lat": 48.1, "lon": 37.6,
                            "uncertainty_m": 100.0, "time_start": T}
    bad = [("lat", 999.0), ("lat", -91.0), ("lat", math.nan), ("lon", 181.0),
           ("lon", math.inf), ("uncertainty_m", -5.0), ("uncertainty_m", 0.0),
           ("uncertainty_m", math.nan), ("uncertainty_m", math.inf),
           ("time_start", datetime(2026, 5, 30, 4, 0)),  # no time zone
           ("time_start", datetime(1, 1, 1, tzinfo=UTC)),
           ("time_start", datetime.now(UTC) + timedelta(days=30)),
           ("time_end", T - timedelta(hours=1))]
    for key, value in bad:
        with pytest.raises(TrucewatchError) as e:
            svc.add(anna, "seen", **(good | {key: value}))
        assert e.value.code == "validation_error" and e.value.status == 422, (key, value)
    assert not [i for i in store.incidents() if i.id.startswith("inc-a")]
    svc.claim("inc-0", anna)
    for key, value in [("lat", 999.0), ("lon", math.nan), ("uncertainty_m", -5.0),
                       ("time_start", datetime(9999, 1, 1, tzinfo=UTC))]:
        with pytest.raises(TrucewatchError) as e:
            svc.modify("inc-0", anna, "moved", **{key: value})
        assert e.value.code == "validation_error", (key, value)
    assert store.incident("inc-0").location == Location(48.0, 37.5, 50.0)
    assert svc.add(anna, "seen", **good).location.lat == 48.1


def test_review_add_nan_is_one_line(tmp_path: Path) -> None:
    """Finding: `review add --lat nan` gives a traceback."""
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    anna = store.add_token("anna", "analyst")
    store.close()
    base = ["review", "add", "--why", "seen", "--category", "fire", "--lon", "37.6",
            "--time", "2026-05-30T08:00:00Z", "--store", str(db)]
    _one_line_error(_cli(*base, "--lat", "nan", token=anna), "lat")
    _one_line_error(_cli(*base, "--lat", "999", token=anna), "lat")
    _one_line_error(_cli(*base, "--lat", "48", "--uncertainty", "-5", token=anna),
                    "uncertainty")
    base[base.index("2026-05-30T08:00:00Z")] = "2026-05-30T08:00:00"
    _one_line_error(_cli(*base, "--lat", "48", token=anna), "time zone")
    assert SqliteStore(db).incidents() == []


def test_api_refuses_an_incident_that_ends_before_it_starts(
        served: tuple[TestClient, dict[str, str], Path]) -> None:
    c, tok, _ = served
    r = c.post("/api/v1/review/incidents", headers=_h(tok["carla"]), json={
        "why": "x", "category": "fire", "lat": 48.1, "lon": 37.6, "uncertainty_m": 100.0,
        "time_start": "2026-05-30T08:00:00Z", "time_end": "2026-05-30T07:00:00Z"})
    assert r.status_code == 422 and r.json()["error"] == "validation_error", r.text
    assert "time_end" in r.json()["message"]


# ----------------------------------------------------------------- release
def test_release_of_anothers_claim_is_refused(
        served: tuple[TestClient, dict[str, str], Path]) -> None:
    """Finding: releasing someone else's claim answers 200. Only the holder releases
    (ReviewError: 409 review_conflict); releasing an unclaimed incident is a no-op."""
    c, tok, db = served
    assert c.post("/api/v1/review/inc-0/claim", headers=_h(tok["anna"])).status_code == 200
    r = c.post("/api/v1/review/inc-0/release", headers=_h(tok["ben"]))
    assert r.status_code == 409 and r.json()["error"] == "review_conflict", r.text
    assert "anna" in r.json()["message"]
    store = SqliteStore(db)
    anna = store.principal_named("anna")
    assert anna is not None and store.lock_holder("inc-0") == anna.id
    store.close()
    # the holder's other token is the same person: it may release
    assert c.post("/api/v1/review/inc-0/release", headers=_h(tok["anna2"])).status_code == 200
    assert c.post("/api/v1/review/inc-0/release", headers=_h(tok["ben"])).status_code == 200


# ----------------------------------------------------------------- migration
def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


OLD_TOKENS = [("tw_old_anna", "anna", "analyst", None, "2026-01-01T00:00:00Z", None),
              ("tw_old_ANNA", "ANNA", "reviewer", None, "2026-01-02T00:00:00Z", None),
              ("tw_old_ben", "Ben", "reviewer", None, "2026-01-03T00:00:00Z", None),
              ("tw_old_ben2", "ben", "reviewer", None, "2026-01-04T00:00:00Z", None),
              ("tw_old_mallory", "mallory", "reviewer", None, "2026-01-05T00:00:00Z", None),
              ("tw_old_mallory2", "mallory\u200b", "reviewer", None,
               "2026-01-06T00:00:00Z", None),
              ("tw_old_liaison", "side-b", "liaison", "Side B", "2026-01-07T00:00:00Z",
               None),
              ("tw_old_gone", "gone", "analyst", None, "2026-01-08T00:00:00Z",
               "2026-01-09T00:00:00Z")]


def _legacy_incident() -> tuple[Incident, str]:
    inc = Incident(id="inc-old", category=Category.EXPLOSION_IMPACT, time_start=T,
                   time_end=T, location=Location(48.0, 37.5, 50.0), observation_ids=["o"],
                   status=Status.PENDING_VERIFICATION)
    return inc, to_json(inc)


def _check_migrated(store: SqliteStore) -> None:
    from trucewatch.review import ReviewService
    from trucewatch.storage.sqlite import SCHEMA_VERSION

    assert store.schema_version() == SCHEMA_VERSION
    names = {p.name: p for p in store.principals()}
    # each old token's name is a principal; names that canonicalise alike are one
    assert sorted(names) == ["anna", "ben", "gone", "mallory", "side-b"]
    assert names["ben"].display_name == "Ben" and names["side-b"].party == "Side B"
    anna = store.token_owner("tw_old_anna")
    assert anna is not None and (anna.name, anna.role, anna.id) == (
        "anna", "analyst", names["anna"].id)
    # a look-alike of another role cannot keep its role under someone else's name
    assert store.token_owner("tw_old_ANNA") is None
    b1, b2 = store.token_owner("tw_old_ben"), store.token_owner("tw_old_ben2")
    assert b1 and b2 and b1.id == b2.id
    m1, m2 = store.token_owner("tw_old_mallory"), store.token_owner("tw_old_mallory2")
    assert m1 and m2 and m1.id == m2.id  # one person, whatever the invisible character
    assert store.token_owner("tw_old_gone") is None  # revoked stays revoked ...
    store.add_token("gone", "analyst", reissue=True)  # ... and the person can be reissued
    assert store.principal_named("gone").id == names["gone"].id  # type: ignore[union-attr]
    # the legacy history names mallory\u200b as proposer: mallory cannot confirm
    svc = ReviewService(store)
    svc.claim("inc-old", names["mallory"])
    with pytest.raises(TwoPersonRuleError, match="proposed"):
        svc.decide("inc-old", names["mallory"], Status.VERIFIED, "mine")
    svc.claim("inc-old", names["ben"])
    svc.decide("inc-old", names["ben"], Status.VERIFIED, "second look")
    assert store.verify() == []


def test_a_v6_store_migrates_its_tokens_to_principals(tmp_path: Path) -> None:
    """A store written by the old code (schema 6: tokens named by free text) opens: each
    old token's name becomes a principal."""
    from trucewatch.storage.sqlite import MIGRATIONS, _statements

    path = tmp_path / "v6.db"
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:6]:
        for stmt in _statements(script):
            db.execute(stmt)
    db.execute("PRAGMA user_version = 6")
    db.executemany("INSERT INTO api_tokens VALUES (?,?,?,?,?,?)",
                   [(_sha(t), *rest) for t, *rest in OLD_TOKENS])
    inc, doc = _legacy_incident()
    db.execute("INSERT INTO incidents VALUES (?,?,?,?,?,?,?)",
               (inc.id, inc.status.value, inc.category.value, T.isoformat(), 48.0, 37.5,
                doc))
    # the old code kept each incident's box in the R*Tree (verify now checks it)
    db.execute("INSERT INTO incidents_rtree SELECT rowid, lon, lon, lat, lat FROM incidents")
    db.executemany("INSERT INTO incident_versions VALUES (?,?,?,?,?,?,?,?)", [
        (inc.id, 1, "automatic", "created", "pipeline", "", "2026-05-30T05:00:00Z", doc),
        (inc.id, 2, "pending_verification", "decide:pending_verification",
         "mallory\u200b", "ok", "2026-05-30T06:00:00Z", doc)])
    db.execute("INSERT INTO review_locks VALUES ('inc-old', 'anna', '2026-05-30T06:00:00Z',"
               " '2999-01-01T00:00:00Z')")
    db.close()
    store = SqliteStore(path)
    assert store.lock_holder("inc-old") is None  # open claims of names are released
    _check_migrated(store)


def test_a_v6_postgis_store_migrates_its_tokens_to_principals(pg_url: str) -> None:
    import psycopg

    from trucewatch.storage.postgis import PG_MIGRATIONS, SCHEMA, PostgisStore

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]
        conn.execute(PG_MIGRATIONS[6])  # type: ignore[arg-type]
        conn.execute("INSERT INTO tw_meta VALUES ('schema_version', '6')")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO api_tokens VALUES (%s,%s,%s,%s,%s,%s)",
                            [(_sha(t), *rest) for t, *rest in OLD_TOKENS])
        inc, doc = _legacy_incident()
        conn.execute("INSERT INTO incidents (id, status, category, time_start, lat, lon, doc)"
                     " VALUES (%s,%s,%s,%s,%s,%s,%s)",
                     (inc.id, inc.status.value, inc.category.value, T.isoformat(), 48.0,
                      37.5, doc))
        for row in [(inc.id, 1, "automatic", "created", "pipeline", "",
                     "2026-05-30T05:00:00Z", doc),
                    (inc.id, 2, "pending_verification", "decide:pending_verification",
                     "mallory\u200b", "ok", "2026-05-30T06:00:00Z", doc)]:
            conn.execute("INSERT INTO incident_versions VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                         row)
    store = PostgisStore(pg_url)
    try:
        _check_migrated(store)
    finally:
        store.close()


# ----------------------------------------------------------------- the built-in scenario
def test_the_scripted_review_is_made_by_two_principals(built_cycle: Path) -> None:
    """The built-in scenario's scripted review still verifies violations, each proposed
    and confirmed by two distinct principals of the store."""
    store = SqliteStore(built_cycle / "trucewatch.db")
    verified = store.incidents(Status.VERIFIED)
    assert verified and {v.incident_id for v in store.violations()} & {i.id for i in verified}
    ids = {p.id for p in store.principals()}
    for inc in verified:
        hist = store.incident_history(inc.id)
        proposer = next(h for h in hist if h["status"] == "pending_verification")
        confirmer = hist[-1]
        assert proposer["who_id"] in ids and confirmer["who_id"] in ids
        assert proposer["who_id"] != confirmer["who_id"]
    names = {p.name: p.role for p in store.principals()}
    assert names == {"analyst.kovalenko": "analyst", "reviewer.martin": "reviewer"}
    assert store.verify() == []
