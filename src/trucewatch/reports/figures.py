"""Bulletin figures with matplotlib (Agg, SVG): the map (on the offline basemap of
:mod:`trucewatch.reports.basemap`) and the observed-vs-expected trend."""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Callable
from datetime import date

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl
import shapely
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from shapely.geometry.base import BaseGeometry

from trucewatch.adjudication.coverage_maps import CHARGE_CLASSES_KG
from trucewatch.model.agreement import Agreement, Sector, ZoneKind
from trucewatch.model.incident import Incident
from trucewatch.reports.basemap import Basemap, load_basemap
from trucewatch.reports.i18n import (
    CATEGORY_GROUPS,
    SATELLITE_STATES,
    STATUS_LABELS,
    category_group,
)

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


def _draw_ground(ax: Axes, bm: Basemap, border_width: float) -> None:
    """The basemap under a map: sea-tinted ground, the country and its oblast borders."""
    ax.set_facecolor("#eef3f7" if bm.country is not None else "white")
    if bm.country is not None:
        _polys(ax, bm.country, "#fbfaf5", 1.0)
    for a in bm.admin1:
        for p in _parts(a.geometry):
            x, y = p.exterior.xy
            ax.plot(x, y, color="#8c8c8c", linewidth=border_width, linestyle=(0, (4, 2)),
                    zorder=1)


def _polys(ax: Axes, g: BaseGeometry, color: str, alpha: float) -> None:
    for p in _parts(g):
        x, y = p.exterior.xy
        ax.fill(x, y, color=color, alpha=alpha, linewidth=0)


def _sector(ax: Axes, s: Sector, view: BaseGeometry, fontsize: float = 6) -> Text | None:
    """Every part of a sector (MultiPolygon ones too), labelled once at a point inside its
    largest part within the map (a long name wrapped; :func:`_keep_inside` moves the label
    into the map afterwards). The SVG ids are sector-<id>-<part> and sector-label-<id>."""
    key = re.sub(r"[^A-Za-z0-9_.-]", "_", s.id)
    for k, p in enumerate(_parts(s.geometry)):
        for j, ring in enumerate([p.exterior, *p.interiors]):
            x, y = ring.xy
            ax.plot(x, y, color="#888", linewidth=0.6, linestyle=":",
                    gid=f"sector-{key}-{k}" + (f"-hole{j}" if j else ""))
    shown = _parts(s.geometry.intersection(view))
    if shown:
        at = max(shown, key=lambda p: p.area).representative_point()
        return ax.annotate(textwrap.fill(s.name, 26), (at.x, at.y), fontsize=fontsize,
                           color="#555",
                           ha="center", va="center", gid=f"sector-label-{key}",
                           path_effects=[patheffects.withStroke(linewidth=1.5,
                                                                foreground="white")])
    return None


def _keep_inside(ax: Axes, texts: list[Text | None]) -> None:
    """Move each label whose box passes an edge of the map back inside it (a sector whose
    point inside the view lies near its edge would otherwise be labelled off the map,
    over the axis labels). Call it once the limits and aspect are set."""
    ax.apply_aspect()
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    for t in texts:
        if t is None:
            continue
        box = t.get_window_extent(renderer)
        dx = max(0.0, frame.x0 + 2 - box.x0) - max(0.0, box.x1 - frame.x1 + 2)
        dy = max(0.0, frame.y0 + 2 - box.y0) - max(0.0, box.y1 - frame.y1 + 2)
        if dx or dy:
            x, y = ax.transData.transform(t.get_position())
            t.set_position(tuple(ax.transData.inverted().transform((x + dx, y + dy))))


# incidents: the marker says the category, the colour the review status
_MARKERS = {"explosion": "*", "fire": "^", "heavy_weapon": "s", "vehicle_movement": "D",
            "strike_on_protected_site": "P", "restriction_of_monitors": "X"}
_STATUS_COLOURS = {"verified": "#b00020", "pending_verification": "#e07000",
                   "automatic": "#444444", "unverifiable": "#7b4fa0",
                   "inaccurate": "#9a9a9a", "duplicate": "#9a9a9a", "rejected": "#9a9a9a"}


def _identity(s: str) -> str:
    return s


def _nice_km(span_km: float) -> float:
    """A round scale-bar length of about a fifth of the map's width."""
    target = span_km / 5
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500):
        if step >= target:
            return float(step)
    return 1000.0


def _scale_and_north(ax: Axes, bounds: tuple[float, float, float, float],
                     gettext: Callable[[str], str]) -> None:
    minx, miny, maxx, maxy = bounds
    lat = miny + 0.06 * (maxy - miny)
    km_per_deg = 111.32 * math.cos(math.radians(lat))
    length = _nice_km((maxx - minx) * km_per_deg)
    x0 = minx + 0.04 * (maxx - minx)
    x1 = x0 + length / km_per_deg
    ax.plot([x0, x1], [lat, lat], color="black", linewidth=2.2, solid_capstyle="butt",
            zorder=9, gid="scale-bar")
    ax.plot([x0, x0 + (x1 - x0) / 2], [lat, lat], color="white", linewidth=1.0,
            solid_capstyle="butt", zorder=10)
    ax.annotate(gettext("%(km)s km") % {"km": f"{length:g}"}, ((x0 + x1) / 2, lat),
                xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                fontsize=7, zorder=10)
    nx, ny = maxx - 0.05 * (maxx - minx), maxy - 0.13 * (maxy - miny)
    ax.annotate(gettext("N"), xy=(nx, maxy - 0.03 * (maxy - miny)), xytext=(nx, ny),
                ha="center", va="top", fontsize=9, fontweight="bold", zorder=10,
                arrowprops={"arrowstyle": "-|>", "color": "black", "linewidth": 1.2},
                gid="north-arrow")


def map_svg(agreement: Agreement, incidents: list[Incident], public: bool,
            gettext: Callable[[str], str] | None = None, report_date: date | None = None,
            basemap: Basemap | None = None) -> str:
    """The bulletin map: country and oblast borders, labelled places, zones, the line,
    sectors and incidents by category (marker) and status (colour), with a legend, a scale
    bar and a north arrow. Layers the data share lacks are named under the map."""
    _ = gettext or _identity
    minx, miny, maxx, maxy = agreement.line_of_contact.buffer(0.8).bounds
    bounds = (minx, miny, maxx, maxy)
    bm = basemap or load_basemap(bounds)
    fig, ax = plt.subplots(figsize=(7.0, 6.2))
    _draw_ground(ax, bm, border_width=0.7)
    for kind in (ZoneKind.WITHDRAWAL, ZoneKind.BUFFER, ZoneKind.PROTECTED_SITE):
        color, alpha = _ZONE_STYLE[kind]
        for z in agreement.zones:
            if z.kind == kind and (kind != ZoneKind.WITHDRAWAL or
                                   z.distance_km == min(agreement.withdrawal_km.values())):
                _polys(ax, z.geometry, color, alpha)
    sector_labels = [_sector(ax, s, shapely.box(minx, miny, maxx, maxy))
                     for s in agreement.sectors]
    for part in getattr(agreement.line_of_contact, "geoms", [agreement.line_of_contact]):
        x, y = part.xy
        ax.plot(x, y, color="#b00020", linewidth=1.6, zorder=4)
    labelled = bm.labelled()
    if labelled:
        ax.scatter([p.lon for p in labelled], [p.lat for p in labelled], s=6, color="#333",
                   zorder=6, linewidths=0)
        for p in labelled:
            ax.annotate(p.name, (p.lon, p.lat), xytext=(2.5, 2), textcoords="offset points",
                        fontsize=6, color="#222", zorder=6, gid=f"place-{p.geonameid}",
                        path_effects=[patheffects.withStroke(linewidth=1.8,
                                                             foreground="white")])
    categories: dict[str, str] = {}
    statuses: set[str] = set()
    for inc in incidents:
        g = category_group(inc.category.value)
        marker = _MARKERS.get(g, "o")
        categories[g] = marker
        st = inc.status.value
        statuses.add(st)
        # the public map shows the 0.1 degree cell, not the exact place
        lon = round(inc.location.lon, 1) if public else inc.location.lon
        lat = round(inc.location.lat, 1) if public else inc.location.lat
        today = report_date is not None and inc.time_start.date() == report_date
        ax.scatter([lon], [lat], s=70 if marker == "*" else 34, marker=marker,
                   color=_STATUS_COLOURS.get(st, "#444"), edgecolors="black" if today
                   else "white", linewidths=0.9 if today else 0.4, zorder=7)
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_aspect(1 / math.cos(math.radians((miny + maxy) / 2)))
    ax.tick_params(labelsize=6)
    ax.set_xlabel(_("longitude"), fontsize=7)
    ax.set_ylabel(_("latitude"), fontsize=7)
    _scale_and_north(ax, bounds, _)
    handles = [Line2D([], [], color="#b00020", linewidth=1.6, label=_("line of contact")),
               Patch(color=_ZONE_STYLE[ZoneKind.BUFFER][0], label=_("buffer zone")),
               Patch(color=_ZONE_STYLE[ZoneKind.WITHDRAWAL][0], label=_("withdrawal zone")),
               Patch(color=_ZONE_STYLE[ZoneKind.PROTECTED_SITE][0],
                     label=_("protected site"))]
    if bm.admin1:
        handles.append(Line2D([], [], color="#8c8c8c", linewidth=0.7,
                              linestyle=(0, (4, 2)), label=_("oblast border")))
    handles += [Line2D([], [], linestyle="", marker=m, color="#444", markersize=7,
                       label=_(CATEGORY_GROUPS.get(g, g))) for g, m in categories.items()]
    handles += [Line2D([], [], linestyle="", marker="o", color=_STATUS_COLOURS[st],
                       markersize=6, label=_(STATUS_LABELS[st]))
                for st in _STATUS_COLOURS if st in statuses]
    if report_date is not None and incidents:
        handles.append(Line2D([], [], linestyle="", marker="o", color="white",
                              markeredgecolor="black", markersize=6,
                              label=_("on the report day")))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3,
              fontsize=6.5, frameon=False)
    not_drawn = _("not drawn")
    note = [_(m) for m in bm.sources] + [f"{not_drawn}: {_(m)}" for m in bm.missing]
    ax.text(0.99, 0.01, "\n".join(note), transform=ax.transAxes, fontsize=4.5, color="#555",
            va="bottom", ha="right", zorder=11,
            bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1.0})
    ax.set_title(_("Zones, line of contact and incidents"), fontsize=9)
    _keep_inside(ax, sector_labels)
    return _svg(fig)


def trend_svg(daily: pl.DataFrame, t0: date,
              gettext: Callable[[str], str] | None = None) -> str:
    _ = gettext or _identity
    per_day = daily.group_by("acq_date").agg(pl.col("war_related").sum(),
                                             pl.col("detections").sum()).sort("acq_date")
    expected = daily.unique(["acq_date", "sector"]).group_by("acq_date").agg(
        pl.col("expected").sum()).sort("acq_date")
    fig, ax = plt.subplots(figsize=(7.0, 2.6))
    ax.plot(per_day["acq_date"], per_day["detections"], color="#999", linewidth=0.8,
            label=_("all fire detections"))
    ax.plot(per_day["acq_date"], per_day["war_related"], color="#b00020", linewidth=1.2,
            label=_("war-related"))
    ax.plot(expected["acq_date"], expected["expected"], color="#1f77b4", linestyle="--",
            linewidth=1.0, label=_("expected in a normal year"))
    ax.axvline(t0, color="black", linewidth=1.0)  # type: ignore[arg-type]
    # the label sits above the plot and the legend below it, so that neither hides the
    # other or the curves, wherever the entry into force falls
    ax.annotate(_("entry into force"), (t0, 1.0), xycoords=("data", "axes fraction"),
                fontsize=7, xytext=(0, 2), textcoords="offset points", ha="center",
                va="bottom")
    ax.set_ylabel(_("detections per day"), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3,
              frameon=False)
    fig.autofmt_xdate()
    return _svg(fig)


# the capability classes, light (a small charge heard: a good network) to dark
_CHARGE_COLOURS = ("#1a9850", "#66bd63", "#a6d96a", "#fee08b", "#fdae61", "#f46d43",
                   "#d73027")


def _hatch(ax: Axes, g: BaseGeometry, gid: str) -> None:
    """The "not observed" hatching, on every coverage panel the same."""
    for k, p in enumerate(_parts(g)):
        x, y = p.exterior.xy
        ax.fill(x, y, facecolor="none", edgecolor="#555", hatch="////", linewidth=0,
                zorder=5, gid=f"{gid}-{k}")


def coverage_svg(agreement: Agreement, features: list[dict[str, object]], day: str,
                 gettext: Callable[[str], str] | None = None,
                 basemap: Basemap | None = None) -> str:
    """The day's coverage maps side by side: satellite clear sky, the sensor network's
    detection capability (smallest charge heard, kg TNT-equivalent) and the drone
    swaths, each on the basemap with the sectors; what each channel did not observe is
    hatched (SVG ids ``not-observed-<panel>-<k>``)."""
    from shapely.geometry import shape

    _ = gettext or _identity
    mine = [f for f in features if (f.get("properties") or {}).get("date") == day]  # type: ignore[attr-defined]

    def layer(name: str) -> list[tuple[dict[str, object], BaseGeometry]]:
        out = []
        for f in mine:
            props: dict[str, object] = f["properties"]  # type: ignore[assignment]
            if props.get("layer") == name:
                out.append((props, shape(f["geometry"])))
        return out

    sats = layer("satellite")
    area = sats[0][1] if sats else shapely.union_all([s.geometry for s in agreement.sectors])
    minx, miny, maxx, maxy = area.buffer(0.05).bounds
    bounds = (minx, miny, maxx, maxy)
    bm = basemap or load_basemap(bounds)
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.9))
    titles = (_("Satellite: clear sky"), _("Sensors: smallest charge heard"),
              _("Drone patrols"))
    for ax, title in zip(axes, titles, strict=True):
        _draw_ground(ax, bm, border_width=0.5)
        ax.set_title(title, fontsize=8)
    sat_ax, cap_ax, drone_ax = axes
    # satellite: one state for the whole area (what the cloud record resolves)
    for props, g in sats:
        if props.get("observed"):
            _polys(sat_ax, g, "#9ecae1", 0.6)
        else:
            _hatch(sat_ax, g, "not-observed-satellite")
        state = str(props.get("state"))
        cloud = props.get("cloud_cover")
        label = _(SATELLITE_STATES.get(state, state))
        if isinstance(cloud, float | int):
            label += f" ({float(cloud):.0%})"
        sat_ax.text(0.5, 0.04, label, transform=sat_ax.transAxes, ha="center", fontsize=7,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"}, zorder=11)
    # capability classes, then the not-heard area hatched
    classes = []
    for props, g in layer("capability"):
        bound = float(props["max_charge_kg"])  # type: ignore[arg-type]
        k = CHARGE_CLASSES_KG.index(bound) if bound in CHARGE_CLASSES_KG else -1
        _polys(cap_ax, g, _CHARGE_COLOURS[k], 0.75)
        classes.append((bound, _CHARGE_COLOURS[k]))
    for _props, g in layer("not_heard"):
        _hatch(cap_ax, g, "not-observed-sensors")
    swaths = layer("patrol_swath")
    for _props, g in swaths:
        _polys(drone_ax, g, "#6a51a3", 0.6)
    patrolled = shapely.union_all([g for _p, g in swaths]) if swaths else None
    rest = area.difference(patrolled) if patrolled is not None else area
    _hatch(drone_ax, rest, "not-observed-drones")
    labelled = bm.labelled(max_labels=10, min_sep=0.12)
    sector_labels: dict[int, list[Text | None]] = {}
    for n, ax in enumerate(axes):
        sector_labels[n] = [_sector(ax, s, shapely.box(minx, miny, maxx, maxy), 4.5)
                            for s in agreement.sectors]
        for part in getattr(agreement.line_of_contact, "geoms", [agreement.line_of_contact]):
            x, y = part.xy
            ax.plot(x, y, color="#b00020", linewidth=1.2, zorder=6)
        for p in labelled:
            ax.scatter([p.lon], [p.lat], s=4, color="#333", zorder=7, linewidths=0)
            ax.annotate(p.name, (p.lon, p.lat), xytext=(2, 2), textcoords="offset points",
                        fontsize=5, color="#222", zorder=7,
                        path_effects=[patheffects.withStroke(linewidth=1.5,
                                                             foreground="white")])
        ax.set_xlim(minx, maxx)
        ax.set_ylim(miny, maxy)
        ax.set_aspect(1 / math.cos(math.radians((miny + maxy) / 2)))
        ax.tick_params(labelsize=5)
        _scale_and_north(ax, bounds, _)
    up_to = _("up to %(kg)s kg")
    handles = [Patch(facecolor="white", edgecolor="#555", hatch="////",
                     label=_("not observed"))]
    handles += [Patch(color=c, label=up_to % {"kg": f"{b:g}"})
                for b, c in sorted(set(classes))]
    handles.append(Patch(color="#6a51a3", alpha=0.6, label=_("drone swath")))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=6.5,
               frameon=False)
    fig.suptitle(_("What could be seen on %(day)s") % {"day": day}, fontsize=9)
    fig.subplots_adjust(bottom=0.12, top=0.86, wspace=0.12)
    for n, ax in enumerate(axes):
        _keep_inside(ax, sector_labels[n])
    return _svg(fig)
