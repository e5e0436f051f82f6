"""Look-alike identifiers (UTS #39 skeletons, as for principal names): station ids, key
ids and key sources, and source plugins' names are refused when they hide characters,
mix scripts or read as another's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from trucewatch.errors import ConfigError, InputFileError
from trucewatch.intake.sources import StationSource, adapters, stored_stations
from trucewatch.integrity.keys import KeyRecord, KeyRegistry, new_keypair
from trucewatch.model.lookalike import identifier_problem, identifier_skeleton, lookalike

CYR_A, CYR_O, CYR_I = "\u0410", "\u041e", "\u0456"  # А, О, і
MAY = datetime(2026, 5, 1, tzinfo=UTC)


def test_skeletons() -> None:
    assert identifier_skeleton(f"{CYR_A}001") == identifier_skeleton("A001") == "a001"
    assert identifier_problem(f"A0{CYR_O}1X") is not None  # Latin and Cyrillic letters
    assert "U+200B" in str(identifier_problem("S01\u200b"))
    assert identifier_problem(f"{CYR_A}001") is None  # one script: fine on its own
    assert identifier_problem("drone:UA-07") is None
    assert lookalike(f"{CYR_A}001", ["B002", "A001"]) == "A001"
    assert lookalike("A001", ["A001", "A002"]) is None  # itself is no look-alike


def _key(key_id: str, source: str, speaks: tuple[str, ...] = ()) -> KeyRecord:
    return KeyRecord(key_id, source, new_keypair()[1], MAY, speaks_for=speaks)


@pytest.mark.parametrize(("record", "named"), [
    # one Cyrillic letter in a Latin name: mixed scripts
    (_key("ua07-b", f"drone:U{CYR_A}-07"), "source 'drone:UА-07' mixes scripts"),
    # the same letters in another case, or wholly in Cyrillic look-alikes
    (_key("ua07-b", "drone:ua-07"), "looks like source 'drone:UA-07'"),
    (_key("UA07", "drone:UA-08"), "looks like key 'ua07'"),
    (_key("расо", "drone:UA-08"), "looks like key 'paco'"),
    (_key("net\u200b", "sensors:net"), r"U\+200B"),
    (_key("net-2", "sensors:net", (f"S{CYR_O}1",)), "mixes scripts"),
])
def test_key_ids_and_sources_that_look_like_anothers_are_refused(record: KeyRecord,
                                                                named: str) -> None:
    reg = KeyRegistry([_key("ua07", "drone:UA-07"), _key("paco", "drone:PA-01")])
    with pytest.raises(ConfigError, match=named) as err:
        reg.add(record)
    assert err.value.fix
    # a new key of the same source (a rotation) is no look-alike
    reg.rotate("ua07", _key("ua07-2026b", "drone:UA-07"))
    assert len(reg) == 3


def test_the_registry_file_is_checked_too(tmp_path: Path) -> None:
    import json

    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [_key("ua07", "drone:UA-07").to_dict(),
                                         _key("ua07-x", "drone:Ua-07").to_dict()]}),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="looks like source"):
        KeyRegistry.load(path)


def _inventory(*ids: str) -> bytes:
    return ("id,latitude,longitude,elevation_m,kind\n" + "".join(
        f"{i},{48.0 + 0.01 * k},37.5,100,acoustic\n" for k, i in enumerate(ids))).encode()


def test_an_inventory_with_look_alike_station_ids_is_refused() -> None:
    with pytest.raises(InputFileError, match="station ids 'A001' and 'А001' look alike"):
        StationSource().parse(_inventory("A001", f"{CYR_A}001"), "st.csv")
    with pytest.raises(InputFileError, match="mixes scripts"):
        StationSource().parse(_inventory("A001", f"B0{CYR_O}2"), "st.csv")
    assert StationSource().parse(_inventory("A001", "B002"), "st.csv").n_rows == 2


def test_a_station_id_like_one_the_store_holds_is_refused(tmp_path: Path) -> None:
    """Another network's inventory (now kept beside the first's) may not bring a station
    that reads as one already held."""
    from trucewatch.intake import receive
    from trucewatch.integrity.envelope import SourcePolicy
    from trucewatch.storage import SqliteStore

    store = SqliteStore(tmp_path / "s.db")
    try:
        first = receive(store, _inventory("A001", "A002"), "net-a.csv", StationSource(),
                        policy=SourcePolicy.OPTIONAL)
        assert first.usable
        o = receive(store, _inventory(f"{CYR_A}001", "T001"), "net-b.csv",
                    adapters(store)["stations"], policy=SourcePolicy.OPTIONAL)
        assert "station id 'А001' looks like station 'A001' already held" in o.refused
        assert sorted(stored_stations(store)["id"].to_list()) == ["A001", "A002"]
        # the held stations sent again (a network's next inventory) are no look-alikes
        again = receive(store, _inventory("A001", "A002", "A003"), "net-a-2.csv",
                        adapters(store)["stations"], policy=SourcePolicy.OPTIONAL)
        assert again.usable and not again.refused
    finally:
        store.close()


def test_a_source_plugin_named_like_a_builtin_source_is_refused(monkeypatch: Any) -> None:
    from trucewatch.ingest import registry

    class Fake:
        name = f"f{CYR_I}rms"

    ep = SimpleNamespace(name="evil", value="evil:Fake", load=lambda: Fake)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep])
    with pytest.raises(ConfigError, match="'fіrms' mixes scripts"):
        registry.sources()
    Fake.name = "Firms"
    with pytest.raises(ConfigError, match="'Firms' looks like the source 'firms'"):
        registry.sources()
    Fake.name = "acled"
    assert [s.name for s in registry.sources()][-1] == "acled"
