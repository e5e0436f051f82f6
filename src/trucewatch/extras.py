"""Optional extras: the heavy stacks a core install does without.

A core install (``pip install trucewatch``) ingests, classifies and fuses. The PDF bulletin,
free-text allegations, StationXML and QuakeML, the service, PostGIS and Dask each need an
extra. A missing one is one clear error naming the extra (:class:`MissingExtraError`), raised
by :func:`require` where a feature starts, and by :func:`as_missing_extra` for an import
that failed deeper down (the CLI and the API translate those).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from trucewatch.errors import MissingExtraError

# extra -> (what it enables, the top-level modules it installs)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pdf": ("bulletins (HTML, PDF and their maps)", ("weasyprint", "matplotlib")),
    "nlp": ("reading free-text allegations", ("spacy", "fr_core_news_sm", "dateparser",
                                              "pymorphy3")),
    "sensors": ("StationXML inventories and QuakeML export", ("obspy",)),
    "service": ("the REST API and the dashboard", ("fastapi", "uvicorn", "fastapi_offline",
                                                    "starlette")),
    "postgis": ("the PostgreSQL + PostGIS store", ("psycopg", "psycopg_pool", "geoalchemy2")),
    "scale": ("reprocessing on a Dask cluster", ("dask", "distributed")),
}
_EXTRA_OF = {mod: extra for extra, (_, mods) in EXTRAS.items() for mod in mods}


def extra_for(module: str) -> str | None:
    """The extra that installs ``module`` (a dotted name), or None for a core dependency."""
    return _EXTRA_OF.get(module.split(".", 1)[0])


def missing(module: str, extra: str, feature: str = "") -> MissingExtraError:
    what = feature or EXTRAS[extra][0]
    return MissingExtraError(f"{what} needs the '{extra}' extra: {module} is not installed",
                             extra=extra)


def require(module: str, extra: str, feature: str = "") -> ModuleType:
    """Import ``module`` or raise the :class:`MissingExtraError` naming its extra."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise missing(module, extra, feature) from err


def as_missing_extra(err: ImportError) -> MissingExtraError | None:
    """The :class:`MissingExtraError` an import failure stands for, when the module that
    could not be found belongs to an extra; None otherwise (a real bug: let it show)."""
    if isinstance(err, MissingExtraError):
        return err
    name = getattr(err, "name", None) or ""
    extra = extra_for(name) if isinstance(err, ModuleNotFoundError) else None
    return missing(name, extra) if extra else None
