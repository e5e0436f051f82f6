"""atheris fuzzing of every parser: ``python -m lab.fuzz TARGET [libFuzzer
args]``. A parser may refuse input only with a :class:`TrucewatchError` (the user's
error, with its fix) or by quarantining rows; anything else is a crash.

Targets: firms, detections, drones, allegations, agreement, envelope, stations, keys.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

# coverage from trucewatch's own code only (instrumenting polars' Python layer breaks it)
with atheris.instrument_imports(include=["trucewatch"]):
    # the same parsers, fixtures and dates as the hypothesis suite (testing.hostile)
    from lab.hostile import targets as _targets
    from trucewatch.agreement import loader  # noqa: F401 (instrumented before use)
    from trucewatch.errors import TrucewatchError
    from trucewatch.ingest import allegations, drones, firms, sensors  # noqa: F401
    from trucewatch.integrity import envelope, keys  # noqa: F401


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in _targets():
        sys.exit(f"usage: python -m lab.fuzz "
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
