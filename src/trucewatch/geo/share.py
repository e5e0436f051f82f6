"""Finding a data folder (the data share, the land-use covariates): the one rule that
``reports.basemap.find_data_dir`` and ``satellite.covariates.find_covariates`` share."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def find_folder(explicit: Path | None, env_var: str, candidates: Sequence[str | Path],
                markers: Sequence[str | Path]) -> Path | None:
    """``explicit`` if given, else ``$env_var`` if set (neither is checked: a wrong one
    is the caller's clear error), else the first of ``candidates`` (relative to the
    working directory) holding one of the ``markers`` files, resolved; else None."""
    if explicit is not None:
        return explicit
    env = os.environ.get(env_var)
    if env:
        return Path(env)
    for d in candidates:
        if any((Path(d) / m).is_file() for m in markers):
            return Path(d).resolve()
    return None
