"""Hostile inputs for every parser, as hypothesis strategies, and the oracle they are
judged by (issue 11). Used by ``benchmarks/parser_fuzz.py`` (many inputs, a report) and
``tests/test_parser_fuzz.py`` (a few, in every test run).

A parser passes an input when it returns (a Batch whose valid and quarantined rows add
up, with no NaN or infinity among its stored numbers, or any other value) or raises a
:class:`~trucewatch.errors.TrucewatchError`; anything else (a traceback) is a failure.

Parsers: ``firms``, ``stations``, ``detections``, ``drones``, ``allegations``,
``agreement``, ``envelope``, ``keys``. Each gets structured inputs (valid layouts with
hostile values: times in year 0001 and 9999 with offsets, NaN, infinities, huge numbers,
wrong types, missing and repeated columns, self-crossing and antimeridian lines, YAML
anchors and aliases, deep nesting) and mutated seeds (random bytes replaced, inserted,
deleted or repeated in a valid file).
"""

from __future__ import annotations

import json
import math
import tempfile
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import strategies as st

from trucewatch.errors import TrucewatchError

NOW = datetime(2026, 6, 1, tzinfo=UTC)
PARSERS = ("firms", "stations", "detections", "drones", "allegations", "agreement",
           "envelope", "keys")

# ------------------------------------------------------------------ hostile values
TIMES = ["2026-05-30T04:00:00Z", "2026-05-30T04:00:00.25+02:00", "2026-05-30 04:00:00+0000",
         "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00",
         "9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999+00:00", "1969-12-31T23:59:59Z",
         "1989-12-31T23:59:59Z", "2026-05-30T04:00:00", "2026-02-30T00:00:00Z",
         "2026-05-30T24:00:00Z", "2026-05-30T04:00:60Z", "2026-05-30T04:00:00+24:00",
         "2026-05-30T04:00:00+23:59", "2026-05-30T04:00:00-23:59", "+12026-05-30T00:00:00Z",
         "2026-05-30T04:00:00.12345678901Z", "2026-05-30", "0000-01-01T00:00:00Z", "", " ",
         "nan", "now", "2026-W22-6T04:00Z", "20260530T040000Z", "2026-05-30T04:00:00ZZ"]
NUMBERS = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e308", "-1e308", "1e309",
           "1e-320", "0", "-0", "", " ", "0x10", "1_000", "\u0661\u0662", "12e", ".", "-",
           "48.0", "37.5", "100", "-500", "9000", "360", "0.001", "3.3", "0.34"]
DATES = ["2021-07-01", "0001-01-01", "1989-12-31", "1990-01-01", "9999-12-31", "2026-06-02",
         "2026-02-30", "21-07-01", "", "2021-7-1", "2021-07-01T00:00:00Z"]
FLOATS_JSON = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 48.0, 37.5, 90.0, 180.0, 180.0000001, -180.0, 1e308, 5e-324]))
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70,
                                                              max_value=2**70),
                         FLOATS_JSON, st.text(max_size=12), st.sampled_from(TIMES))
JSON_ANY = st.recursive(JSON_SCALARS, lambda c: st.one_of(
    st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)),
    max_leaves=12)


def _field(options: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(options), st.sampled_from(NUMBERS),
                     st.sampled_from(TIMES), st.text(max_size=10))


def _csv(header: list[str], columns: dict[str, list[str]]) -> st.SearchStrategy[bytes]:
    """A CSV with ``header`` (sometimes damaged) and rows of hostile field values."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        head = list(header)
        if draw(st.booleans()) and draw(st.booleans()):
            head = draw(st.permutations(head))
        if draw(st.integers(0, 9)) == 0:
            head.append(draw(st.sampled_from(head)))  # a column twice
        if draw(st.integers(0, 9)) == 0 and head:
            head.pop(draw(st.integers(0, len(head) - 1)))  # a column missing
        rows = []
        for _ in range(draw(st.integers(0, 6))):
            vals = [draw(_field(columns.get(c, [""]))) for c in head]
            if draw(st.integers(0, 9)) == 0:
                vals = vals[:draw(st.integers(0, len(vals)))]  # a short row
            rows.append(",".join(vals))
        text = "\n".join([",".join(head), *rows]) + draw(st.sampled_from(["\n", "", "\r\n"]))
        if draw(st.integers(0, 9)) == 0:
            text = "\ufeff" + text
        return text.encode("utf-8", "surrogatepass")

    return build()


def _json_doc(fmt: str, key: str, item: st.SearchStrategy[Any],
              extra: dict[str, st.SearchStrategy[Any]] | None = None
              ) -> st.SearchStrategy[bytes]:
    """``{"format": fmt, key: [item, ...]}``, with a wrong kind of list now and then."""
    items = st.one_of(st.lists(item, max_size=5), JSON_ANY)
    fields: dict[str, st.SearchStrategy[Any]] = {"format": st.just(fmt), key: items}
    fields.update(extra or {})
    return st.fixed_dictionaries(fields).map(
        lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _obj(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with these fields, each either its hostile value or anything at all."""
    return st.fixed_dictionaries({}, optional={k: st.one_of(v, JSON_ANY)
                                               for k, v in fields.items()})


TIME_J = st.sampled_from(TIMES)
LAT_J = st.one_of(FLOATS_JSON, st.floats(-90, 90))
LON_J = st.one_of(FLOATS_JSON, st.floats(-180, 180))

# ------------------------------------------------------------------ per parser
FIRMS_VIIRS = ["latitude", "longitude", "bright_ti4", "scan", "track", "acq_date",
               "acq_time", "satellite", "confidence", "version", "bright_ti5", "frp",
               "daynight"]
FIRMS_MODIS = ["latitude", "longitude", "brightness", "scan", "track", "acq_date", "acq_time",
               "satellite", "instrument", "confidence", "version", "bright_t31", "frp",
               "daynight", "type"]
FIRMS_MINIMAL = ["latitude", "longitude", "acq_date", "sensor_guess"]
FIRMS_VALUES = {"acq_date": DATES, "acq_time": ["1030", "0", "2359", "2400", "12:30", "9:5",
                                                "-1", "99999"],
                "satellite": ["N", "N20", "Terra", "A", "1", "x"],
                "confidence": ["n", "l", "h", "81", "101", "-1"],
                "version": ["2.0NRT", "6.03", "1"], "daynight": ["D", "N"],
                "sensor_guess": ["MODIS", "VIIRS_6dec", "x"], "instrument": ["MODIS"],
                "type": ["0", "3"]}
STATION_HEAD = ["id", "latitude", "longitude", "elevation_m", "kind", "array", "timing_s"]
STATION_VALUES = {"id": ["A1", "S1", ""], "kind": ["acoustic", "seismic", "infrasound", "x"],
                  "array": ["true", "false", "1"]}
DETECTION_HEAD = ["detection_id", "station", "time", "phase", "back_azimuth_deg",
                  "apparent_velocity_km_s", "amplitude", "snr"]
DETECTION_VALUES = {"detection_id": ["d1", "d2", ""], "station": ["A1", "A2", "S1", "X9"],
                    "time": TIMES, "phase": ["acoustic", "P", "S", "x"]}

REPORT = _obj({"report_id": st.sampled_from(["r1", "r2", ""]),
               "platform_id": st.sampled_from(["P", ""]), "time": TIME_J,
               "platform": _obj({"lat": LAT_J, "lon": LON_J, "alt_m": FLOATS_JSON}),
               "target": _obj({"lat": LAT_J, "lon": LON_J, "error_m": FLOATS_JSON,
                               "bearing_deg": FLOATS_JSON, "range_m": FLOATS_JSON}),
               "class": st.sampled_from(["explosion", "fire", "heavy_weapon", "x"]),
               "confidence": FLOATS_JSON, "count": st.integers(-5, 2**65),
               "klv": st.sampled_from(["", "AAAA", "not base64!", "BgAA"]),
               "media": st.lists(_obj({"sha256": st.text(max_size=64),
                                       "uri": st.text(max_size=5)}), max_size=2)})
PATROL = _obj({"platform_id": st.sampled_from(["P"]), "time_start": TIME_J,
               "time_end": TIME_J, "swath_m": FLOATS_JSON,
               "track": st.lists(st.tuples(LON_J, LAT_J), max_size=3)})
ALLEGATION = _obj({"allegation_id": st.sampled_from(["A1", "A2", ""]),
                   "claimant": st.sampled_from(["x", ""]),
                   "claimant_kind": st.sampled_from(["party", "public", "monitor", "x"]),
                   "received_at": TIME_J, "time_start": TIME_J, "time_end": TIME_J,
                   "text": st.sampled_from(["", "Вчора о 22:00 обстріл Бахмута",
                                            "shelling on 1 January 0001 in Toretsk",
                                            "trucewatch-signed/1", "x" * 30]),
                   "language": st.sampled_from(["fr", "en", "uk", "ru", "de"]),
                   "place": st.sampled_from(["Toretsk", "Bakhmut", "Nowhere"]),
                   "lat": LAT_J, "lon": LON_J,
                   "category": st.sampled_from(["fire", "explosion", "x"])})
ENVELOPE = _obj({"format": st.just("trucewatch-signed/1"), "key_id": st.text(max_size=5),
                 "signed_at": TIME_J, "nonce": st.text(max_size=5),
                 "payload": st.sampled_from(["", "e30=", "!!", "AAAA"]),
                 "payload_sha256": st.text(max_size=5),
                 "signature": st.sampled_from(["", "AAAA", "%%"])}).map(
    lambda d: json.dumps(d).encode())
KEY = _obj({"key_id": st.sampled_from(["k1", ""]),
            "source": st.sampled_from(["drone:P", "sensors", "x"]),
            "public_key": st.sampled_from(["", "AAAA", "A" * 43 + "=", "%%"]),
            "valid_from": TIME_J, "valid_until": TIME_J, "revoked_at": TIME_J,
            "speaks_for": st.one_of(st.lists(st.text(max_size=3), max_size=2), JSON_ANY)})
KEYS = st.one_of(
    st.fixed_dictionaries({"keys": st.one_of(st.lists(KEY, max_size=3), JSON_ANY)}).map(
        lambda d: json.dumps(d).encode()),
    st.fixed_dictionaries({"keys": st.lists(KEY, max_size=2)}).map(
        lambda d: _yaml_of(d).encode()))


def _yaml_of(value: Any) -> str:
    """Flow-style YAML of a JSON-like value (JSON is YAML, but NaN/Infinity are .nan/.inf)."""
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_yaml_of(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_of(v) for v in value) + "]"
    return json.dumps(value)


POINT = st.tuples(st.one_of(st.floats(36.5, 38.5), FLOATS_JSON),
                  st.one_of(st.floats(47.0, 49.0), FLOATS_JSON))
LINES = st.one_of(
    st.lists(POINT, min_size=0, max_size=6),
    st.just([(37.0, 47.5), (37.5, 48.5), (37.5, 47.5), (37.0, 48.5)]),  # crosses itself
    st.just([(179.5, 65.0), (-179.5, 65.2)]),  # across the antimeridian
    st.just([(37.0, 47.5), (37.0, 47.5)]))


@st.composite
def _agreement(draw: st.DrawFn) -> bytes:
    coords = draw(LINES)
    sides = draw(st.sampled_from([
        "[{id: left, buffer_km: 10}, {id: right, buffer_km: 10}]",
        "[{id: left, buffer_km: .nan}, {id: right, buffer_km: -1}]",
        "[{id: left, buffer_km: 1e308}, {id: right, buffer_km: .inf}]", "5", "[]"]))
    eif = draw(st.one_of(TIME_J, st.sampled_from(["'0001-01-01T00:00:00+01:00'", "~", "5"])))
    extra = draw(st.lists(st.sampled_from([
        "withdrawal_km: {artillery: 30, mortar: .inf}",
        "withdrawal_km: &w {artillery: 30}\nsectors_alias: *w",
        "protected_sites: [{id: s, lat: 48.0, lon: 36.0, radius_m: 1000}]",
        "protected_sites: [{id: s, lat: .nan, lon: 36.0, radius_m: -1}]",
        "live_fire_training: [{id: t, lat: 48, lon: 36, radius_m: 10, windows: "
        "[{start: 0001-01-01T00:00:00+01:00, end: 9999-12-31T23:00:00-05:00}]}]",
        "grace_period_hours: 1e308", "grace_period_hours: .nan",
        "disengagement_areas: [{id: d, geojson: {type: Polygon, coordinates: "
        "[[[179, 1], [-179, 1], [-179, 2], [179, 1]]]}}]",
        "evidence_rules: {withdrawal: {fire: none}}", "evidence_rules: 5",
        "crs: EPSG:999999", "crs: auto", "name: " + "[" * 80 + "]" * 80,
        "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nname: *c",
        "name: &r [*r]", "sectors: 5"]), max_size=3))
    text = "\n".join(["format: trucewatch-agreement", "id: t", f"entry_into_force: {eif}",
                      "line_of_contact: {geojson: {type: LineString, coordinates: "
                      f"{_yaml_of([list(p) for p in coords])}}}}}", f"sides: {sides}", *extra])
    return text.encode()


SEEDS: dict[str, list[bytes]] = {
    "firms": [(",".join(FIRMS_VIIRS) + "\n48.1,37.1,330,0.4,0.4,2026-05-30,1030,N20,n,2.0NRT,"
               "290,5.2,D\n").encode(),
              b"latitude,longitude,acq_date,sensor_guess\n48.2113,38.2567,2021-07-01,MODIS\n"],
    "stations": [b"id,latitude,longitude,elevation_m,kind\nA1,48.0,37.0,100,acoustic\n"
                 b"S1,48.2,37.2,100,seismic\n",
                 b'[{"id": "A1", "latitude": 48, "longitude": 37, "elevation_m": 1, '
                 b'"kind": "acoustic"}]'],
    "detections": [b"detection_id,station,time,phase,back_azimuth_deg,amplitude,snr\n"
                   b"D1,A1,2026-05-30T04:00:00.100Z,acoustic,,1.5,8.0\n"
                   b"D2,S1,2026-05-30T04:00:01.200Z,P,,0.2,5.0\n"],
    "drones": [json.dumps({"format": "trucewatch-drone/1", "reports": [
        {"report_id": "r1", "platform_id": "P", "time": "2026-05-30T04:12:00Z",
         "platform": {"lat": 48.0, "lon": 37.5}, "class": "explosion", "confidence": 0.8,
         "target": {"bearing_deg": 10.0, "range_m": 2500.0}}], "patrols": [
        {"platform_id": "P", "time_start": "2026-05-30T04:00:00Z",
         "time_end": "2026-05-30T05:00:00Z", "track": [[37.5, 48.0], [37.6, 48.1]],
         "swath_m": 500}]}).encode()],
    "allegations": [json.dumps({"format": "trucewatch-allegations/1", "allegations": [
        {"allegation_id": "A2", "claimant": "y", "claimant_kind": "public",
         "received_at": "2026-05-31T09:00:00Z", "lat": 48.0, "lon": 37.8,
         "time_start": "2026-05-30T04:00:00Z", "category": "fire"}]}).encode()],
    "agreement": [b"format: trucewatch-agreement\nid: t\nentry_into_force: "
                  b"2026-04-20T00:00:00Z\nline_of_contact: {geojson: {type: LineString, "
                  b"coordinates: [[37.0, 47.5], [37.5, 48.5]]}}\nsides: [{id: left, "
                  b"buffer_km: 10}, {id: right, buffer_km: 10}]\nwithdrawal_km: "
                  b"{artillery: 30}\n"],
    "envelope": [json.dumps({"format": "trucewatch-signed/1", "key_id": "k",
                             "signed_at": "2026-05-30T00:00:00Z", "nonce": "n",
                             "payload": "e30=", "payload_sha256": "0" * 64,
                             "signature": "AAAA"}).encode()],
    "keys": [json.dumps({"keys": [{"key_id": "k1", "source": "drone:P",
                                   "public_key": "A" * 43 + "=",
                                   "valid_from": "2026-01-01T00:00:00Z"}]}).encode()],
}
# inputs every run tries once: what broke parsers before (deep nesting, a wrong kind)
SPECIAL: dict[str, list[bytes]] = {
    "firms": [b'{"format": "trucewatch-drone/1", "reports": []}',
              b'{"format": "trucewatch-allegations/1", "allegations": 5}'],
    "stations": [b"[" * 100_000 + b"]" * 100_000, b'{"stations": 5}'],
    "drones": [b'{"format": "trucewatch-drone/1", "reports": ' + b"[" * 100_000
               + b"]" * 100_000 + b"}", b'{"format": "trucewatch-drone/1", "reports": 5}',
               b'{"format": "trucewatch-drone/1", "patrols": 5}'],
    "allegations": [b'{"format": "trucewatch-allegations/1", "allegations": 5}',
                    b'{"format": "trucewatch-allegations/1", "allegations": '
                    + b"[" * 100_000 + b"]" * 100_000 + b"}"],
    "envelope": [b'{"format": "trucewatch-signed/1", "x": ' + b"[" * 100_000
                 + b"]" * 100_000 + b"}"],
    "keys": [b'{"keys": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
             b"keys: " + b"[" * 100_000 + b"]" * 100_000],
    "agreement": [b"format: trucewatch-agreement\nname: " + b"[" * 100_000
                  + b"]" * 100_000],
}


@st.composite
def _mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few random edits: bytes replaced, inserted, deleted or repeated."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            data += draw(st.binary(min_size=1, max_size=4))
            continue
        k = draw(st.integers(0, len(data) - 1))
        op = draw(st.integers(0, 3))
        chunk = draw(st.one_of(st.binary(min_size=1, max_size=4),
                               st.sampled_from([b",", b"\n", b'"', b"\x00", b"\xff", b"nan",
                                                b"9999", b"0001", b"&a ", b"*a", b"[", b"{"])))
        if op == 0:
            data[k:k + len(chunk)] = chunk
        elif op == 1:
            data[k:k] = chunk
        elif op == 2:
            del data[k:k + draw(st.integers(1, 8))]
        else:
            j = min(len(data), k + draw(st.integers(1, 16)))
            data[k:k] = data[k:j] * draw(st.integers(1, 3))
    return bytes(data)


def strategy(parser: str) -> st.SearchStrategy[bytes]:
    structured: dict[str, st.SearchStrategy[bytes]] = {
        "firms": st.one_of(_csv(FIRMS_VIIRS, FIRMS_VALUES), _csv(FIRMS_MODIS, FIRMS_VALUES),
                           _csv(FIRMS_MINIMAL, FIRMS_VALUES)),
        "stations": st.one_of(
            _csv(STATION_HEAD, STATION_VALUES),
            st.lists(_obj({c: st.one_of(st.sampled_from(NUMBERS), JSON_SCALARS)
                           for c in STATION_HEAD}), max_size=4).map(
                lambda r: json.dumps(r).encode())),
        "detections": _csv(DETECTION_HEAD, DETECTION_VALUES),
        "drones": _json_doc("trucewatch-drone/1", "reports", REPORT,
                            {"patrols": st.lists(PATROL, max_size=3)}),
        "allegations": _json_doc("trucewatch-allegations/1", "allegations", ALLEGATION),
        "agreement": _agreement(),
        "envelope": ENVELOPE,
        "keys": KEYS,
    }
    return st.one_of(structured[parser], _mutated(SEEDS[parser]), st.binary(max_size=64))


# ------------------------------------------------------------------ the oracle
def targets() -> dict[str, Callable[[bytes], object]]:
    """Each parser as a function of the input's bytes."""
    from trucewatch.agreement.loader import check_agreement
    from trucewatch.ingest.allegations import AllegationSource
    from trucewatch.ingest.drones import DroneSource, read_patrols
    from trucewatch.ingest.extraction import Extractor
    from trucewatch.ingest.firms import parse_firms
    from trucewatch.ingest.sensors import parse_detections, parse_stations
    from trucewatch.integrity.envelope import open_envelope
    from trucewatch.integrity.keys import KeyRegistry

    stations = pl.DataFrame({"id": ["A1", "A2", "S1"], "latitude": [48.0, 48.1, 48.2],
                             "longitude": [37.0, 37.1, 37.2], "elevation_m": [100.0] * 3,
                             "kind": ["acoustic", "acoustic", "seismic"],
                             "array": [False] * 3, "timing_s": [0.001] * 3})
    drones = DroneSource()
    allegations = AllegationSource(Extractor(use_spacy=False))
    folder = Path(tempfile.mkdtemp(prefix="tw-hostile-"))

    def agreement(data: bytes) -> object:
        path = folder / "a.yaml"
        path.write_bytes(data)
        return check_agreement(path)

    def drone(data: bytes) -> object:
        batch = drones.parse(data, "d.json", now=NOW)
        read_patrols(data, "d.json", now=NOW)
        return batch

    return {
        "firms": lambda d: parse_firms(d, "f.csv", today=NOW),
        "stations": lambda d: parse_stations(d, "st.csv"),
        "detections": lambda d: parse_detections(d, "d.csv", stations, now=NOW),
        "drones": drone,
        "allegations": lambda d: allegations.parse(d, "a.json", now=NOW),
        "agreement": agreement,
        "envelope": open_envelope,
        "keys": lambda d: KeyRegistry.from_text(d.decode("utf-8", "replace"), "keys.json"),
    }


def _check_result(result: object) -> None:
    """What a parser returns must be sound: rows add up, no NaN/inf stored, times that
    convert (a year-0 or year-10000 datetime cannot be read back)."""
    from trucewatch.ingest.base import Batch

    if isinstance(result, Batch):
        result.check_accounting()
        for name, dtype in result.records.schema.items():
            col = result.records[name]
            if dtype.is_float() and not col.drop_nulls().is_finite().all():
                raise AssertionError(f"non-finite {name} among the valid records")
            if isinstance(dtype, pl.Datetime):
                col.to_list()
            if dtype == pl.String and name in ("attributes", "doc"):
                for text in col.drop_nulls().to_list():
                    json.loads(text, parse_constant=_no_constant)


def _no_constant(name: str) -> object:
    raise AssertionError(f"{name} stored in JSON")


def judge(target: Callable[[bytes], object], data: bytes) -> str | None:
    """None when the parser answered ``data`` properly; else the traceback (its last lines)."""
    try:
        _check_result(target(data))
    except TrucewatchError:
        return None
    except Exception as err:  # anything else is the failure looked for
        tb = traceback.format_exception(type(err), err, err.__traceback__)
        return "".join(tb[-3:])
    return None


def signature(tb: str) -> str:
    """A short name for a failure: the exception line and where it was raised."""
    lines = [x.strip() for x in tb.strip().splitlines() if x.strip()]
    where = next((x for x in reversed(lines) if x.startswith("File ")), "")
    return f"{lines[-1][:160]} @ {where[:160]}"
