"""atheris fuzzing of every parser: ``python -m trucewatch.testing.fuzz TARGET [libFuzzer
args]``. A parser may refuse input only with a :class:`TrucewatchError` (the user's
error, with its fix) or by quarantining rows; anything else is a crash.

Targets: firms, detections, drones, allegations, agreement, envelope, stations, keys.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import atheris

# coverage from trucewatch's own code only (instrumenting polars' Python layer breaks it)
with atheris.instrument_imports(include=["trucewatch"]):
    from trucewatch.agreement.loader import check_agreement
    from trucewatch.errors import TrucewatchError
    from trucewatch.ingest.allegations import AllegationSource
    from trucewatch.ingest.drones import DroneSource
    from trucewatch.ingest.extraction import Extractor
    from trucewatch.ingest.firms import parse_firms
    from trucewatch.ingest.sensors import parse_detections, parse_stations
    from trucewatch.integrity.envelope import open_envelope
    from trucewatch.integrity.keys import KeyRegistry

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _targets() -> dict[str, Callable[[bytes], object]]:
    import polars as pl

    stations = pl.DataFrame({"id": ["A1", "A2", "S1"], "latitude": [48.0, 48.1, 48.2],
                             "longitude": [37.0, 37.1, 37.2], "elevation_m": [100.0] * 3,
                             "kind": ["acoustic", "acoustic", "seismic"],
                             "array": [False] * 3, "timing_s": [0.001] * 3})
    drones = DroneSource()
    allegations = AllegationSource(Extractor(use_spacy=False))
    folder = Path(tempfile.mkdtemp(prefix="tw-fuzz-"))

    def agreement(data: bytes) -> object:
        path = folder / "a.yaml"
        path.write_bytes(data)
        return check_agreement(path)

    return {
        "firms": lambda d: parse_firms(d, "f.csv", today=NOW),
        "detections": lambda d: parse_detections(d, "d.csv", stations, now=NOW),
        "drones": lambda d: drones.parse(d, "d.json", now=NOW),
        "allegations": lambda d: allegations.parse(d, "a.json", now=NOW),
        "agreement": agreement,
        "envelope": open_envelope,
        "stations": lambda d: parse_stations(d, "st.csv"),
        "keys": lambda d: KeyRegistry.from_text(d.decode("utf-8", "replace"), "keys.json"),
    }


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in _targets():
        sys.exit(f"usage: python -m trucewatch.testing.fuzz "
                 f"{{{','.join(_targets())}}} [libFuzzer args]")
    target = _targets()[sys.argv[1]]

    def one(data: bytes) -> None:
        # a clear refusal is the right answer to bad input; anything else is a crash
        with contextlib.suppress(TrucewatchError):
            target(data)

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
