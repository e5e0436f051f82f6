"""Lossless, versioned JSON serialization of the domain objects.

Every payload carries ``type`` and ``schema_version``. Reading identifies the type,
migrates older versions forward and keeps unknown keys in ``extra`` so that a
round trip never loses what a newer writer or a third party added.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from trucewatch.errors import SchemaVersionError

T = TypeVar("T")

# type name -> class; filled by @register
_REGISTRY: dict[str, type[Any]] = {}
# (type name, from_version) -> function upgrading a dict by one version
_MIGRATIONS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


def register(type_name: str, version: int) -> Callable[[type[T]], type[T]]:
    """Class decorator: declare a dataclass serializable under ``type_name``."""

    def wrap(cls: type[T]) -> type[T]:
        cls.TYPE = type_name  # type: ignore[attr-defined]
        cls.SCHEMA_VERSION = version  # type: ignore[attr-defined]
        _REGISTRY[type_name] = cls
        return cls

    return wrap


def migration(type_name: str, from_version: int) -> Callable[
    [Callable[[dict[str, Any]], dict[str, Any]]], Callable[[dict[str, Any]], dict[str, Any]]
]:
    def wrap(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[
        [dict[str, Any]], dict[str, Any]
    ]:
        _MIGRATIONS[(type_name, from_version)] = fn
        return fn

    return wrap


def _encode(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, BaseGeometry):
        return mapping(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: trucewatch times are UTC-aware")
    try:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except OverflowError as err:
        raise ValueError(f"time {value.isoformat()} is out of range in UTC") from err


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone; write it in UTC with a trailing Z")
    try:
        return value.astimezone(UTC)
    except OverflowError as err:  # 0001-01-01T00:00+01:00, 9999-12-31T23:00-05:00
        raise ValueError(f"time {text!r} is out of range in UTC") from err


def to_dict(obj: Any) -> dict[str, Any]:
    """Serialize a registered dataclass (nested ones too) to plain JSON types."""
    out: dict[str, Any] = {}
    type_name = getattr(obj, "TYPE", None)
    if type_name is not None:
        out["type"] = type_name
        out["schema_version"] = obj.SCHEMA_VERSION
    for f in dataclasses.fields(obj):
        if f.name == "extra":
            continue
        out[f.name] = _encode(getattr(obj, f.name))
    extra = getattr(obj, "extra", None)
    if extra:
        for k, v in extra.items():
            out.setdefault(k, v)
    return out


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return _decode(args[0], value) if len(args) == 1 else value
    if origin in (list, tuple):
        (inner, *_) = get_args(tp) or (Any,)
        items = [_decode(inner, v) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        return dict(value)
    if isinstance(tp, type):
        if issubclass(tp, Enum):
            return tp(value)
        if issubclass(tp, datetime):
            return parse_time(value)
        if issubclass(tp, BaseGeometry):
            return shape(value)
        if dataclasses.is_dataclass(tp):
            return _from_dict_as(tp, value)
    return value


def _from_dict_as(cls: type[T], data: dict[str, Any]) -> T:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("type", "schema_version"):
            continue
        if key in names and key != "extra":
            kwargs[key] = _decode(hints[key], value)
        else:
            extra[key] = value
    if "extra" in names:
        kwargs["extra"] = extra
    return cls(**kwargs)


def from_dict(data: dict[str, Any], cls: type[T] | None = None) -> T:
    """Read a payload: identify its type, migrate it forward, keep unknown keys."""
    type_name = data.get("type")
    if cls is None:
        if type_name not in _REGISTRY:
            raise SchemaVersionError(
                f"unknown payload type {type_name!r}",
                fix=f"expected one of {sorted(_REGISTRY)}",
            )
        cls = _REGISTRY[type_name]
    target = getattr(cls, "SCHEMA_VERSION", None)
    if target is not None:
        type_name = getattr(cls, "TYPE")  # noqa: B009 - set by @register
        version = int(data.get("schema_version", target))
        if version > target:
            raise SchemaVersionError(
                f"{type_name} schema_version {version} is newer than this trucewatch "
                f"understands ({target})",
                fix="upgrade trucewatch",
            )
        data = dict(data)
        while version < target:
            step = _MIGRATIONS.get((type_name, version))
            if step is None:
                raise SchemaVersionError(
                    f"no migration for {type_name} from schema_version {version}",
                    fix="re-export the data with a supported trucewatch version",
                )
            data = step(data)
            version += 1
    return _from_dict_as(cls, data)


def to_json(obj: Any) -> str:
    return json.dumps(to_dict(obj), ensure_ascii=False, sort_keys=True)


def from_json(text: str, cls: type[T] | None = None) -> T:
    return from_dict(json.loads(text), cls)


def geometry_equal(a: BaseGeometry | None, b: BaseGeometry | None) -> bool:
    if a is None or b is None:
        return a is b
    return bool(shapely.equals_exact(a, b, tolerance=0))
