"""Bulletin figures with matplotlib (Agg, SVG): the map and the observed-vs-expected trend."""

from __future__ import annotations

import io
import re
from datetime import date

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl
import shapely
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from shapely.geometry.base import BaseGeometry

from trucewatch.model.agreement import Agreement, Sector, ZoneKind
from trucewatch.model.incident import Incident

_ZONE_STYLE = {ZoneKind.WITHDRAWAL: ("#f3e3b5", 0.5), ZoneKind.BUFFER: ("#f1a78a", 0.55),
               ZoneKind.PROTECTED_SITE: ("#7fb3d5", 0.8)}


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _parts(g: BaseGeometry) -> list[BaseGeometry]:
    """The polygons of a Polygon, MultiPolygon or (nested) GeometryCollection."""
    return [p for p in shapely.get_parts(shapely.get_parts(g))
            if p.geom_type == "Polygon" and not p.is_empty]


def _polys(ax: Axes, g: BaseGeometry, color: str, alpha: float) -> None:
    for p in _parts(g):
        x, y = p.exterior.xy
        ax.fill(x, y, color=color, alpha=alpha, linewidth=0)


def _sector(ax: Axes, s: Sector, view: BaseGeometry) -> None:
    """Every part of a sector (MultiPolygon ones too), labelled once at a point inside its
    largest part within the map. The SVG ids are sector-<id>-<part> and sector-label-<id>."""
    key = re.sub(r"[^A-Za-z0-9_.-]", "_", s.id)
    for k, p in enumerate(_parts(s.geometry)):
        for j, ring in enumerate([p.exterior, *p.interiors]):
            x, y = ring.xy
            ax.plot(x, y, color="#888", linewidth=0.6, linestyle=":",
                    gid=f"sector-{key}-{k}" + (f"-hole{j}" if j else ""))
    shown = _parts(s.geometry.intersection(view))
    if shown:
        at = max(shown, key=lambda p: p.area).representative_point()
        ax.annotate(s.name, (at.x, at.y), fontsize=6, color="#555", ha="center",
                    gid=f"sector-label-{key}")


def map_svg(agreement: Agreement, incidents: list[Incident], public: bool) -> str:
    fig, ax = plt.subplots(figsize=(7.0, 6.0))
    for kind in (ZoneKind.WITHDRAWAL, ZoneKind.BUFFER, ZoneKind.PROTECTED_SITE):
        color, alpha = _ZONE_STYLE[kind]
        for z in agreement.zones:
            if z.kind == kind and (kind != ZoneKind.WITHDRAWAL or
                                   z.distance_km == min(agreement.withdrawal_km.values())):
                _polys(ax, z.geometry, color, alpha)
    minx, miny, maxx, maxy = agreement.line_of_contact.buffer(0.8).bounds
    for s in agreement.sectors:
        _sector(ax, s, shapely.box(minx, miny, maxx, maxy))
    for part in getattr(agreement.line_of_contact, "geoms", [agreement.line_of_contact]):
        x, y = part.xy
        ax.plot(x, y, color="#b00020", linewidth=1.6, label="line of contact")
    if incidents:
        # the public map shows the 0.1 degree cell, not the exact place
        lons = [round(i.location.lon, 1) if public else i.location.lon for i in incidents]
        lats = [round(i.location.lat, 1) if public else i.location.lat for i in incidents]
        ax.scatter(lons, lats, s=28, marker="X", color="#222", zorder=5, label="incident")
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_aspect(1 / 0.66)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title("Zones, line of contact and incidents", fontsize=9)
    return _svg(fig)


def trend_svg(daily: pl.DataFrame, t0: date) -> str:
    per_day = daily.group_by("acq_date").agg(pl.col("war_related").sum(),
                                             pl.col("detections").sum()).sort("acq_date")
    expected = daily.unique(["acq_date", "sector"]).group_by("acq_date").agg(
        pl.col("expected").sum()).sort("acq_date")
    fig, ax = plt.subplots(figsize=(7.0, 2.6))
    ax.plot(per_day["acq_date"], per_day["detections"], color="#999", linewidth=0.8,
            label="all fire detections")
    ax.plot(per_day["acq_date"], per_day["war_related"], color="#b00020", linewidth=1.2,
            label="war-related")
    ax.plot(expected["acq_date"], expected["expected"], color="#1f77b4", linestyle="--",
            linewidth=1.0, label="expected in a normal year")
    ax.axvline(t0, color="black", linewidth=1.0)  # type: ignore[arg-type]
    ax.annotate("entry into force", (t0, ax.get_ylim()[1] * 0.9), fontsize=7,
                xytext=(3, 0), textcoords="offset points")
    ax.set_ylabel("detections per day", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper right")
    fig.autofmt_xdate()
    return _svg(fig)
