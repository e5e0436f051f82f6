"""Published products (bulletins and their GeoJSON): listed from the store, served only
while their file is the one published."""

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from trucewatch.api import guard
from trucewatch.api.auth import Principal
from trucewatch.api.deps import AsBulletins, ConfigDep, StoreDep
from trucewatch.api.models import Bulletins, Products
from trucewatch.errors import NotFoundError, TrucewatchError
from trucewatch.reports.archive import revision_of
from trucewatch.reports.tiers import tier_of
from trucewatch.storage.protocols import ArchiveStore, EvidenceStore, ProductStore

router = APIRouter()

MEDIA_TYPES = {"json": "application/json", "html": "text/html; charset=utf-8",
               "pdf": "application/pdf", "geojson": "application/geo+json"}


def _products(who: Principal, store: ProductStore) -> list[dict[str, Any]]:
    return [p for p in store.products()
            if p["audience"] == "public" or who.may("bulletins_restricted")]


def listing(shown: list[dict[str, Any]]) -> dict[str, Any]:
    return {"files": [p["name"] for p in shown],
            "products": [{k: p[k] for k in ("name", "kind", "report_date", "audience",
                                            "sha256", "size", "published_at")}
                         for p in shown]}


@router.get("/bulletins", tags=["bulletins"], response_model=Bulletins)
def bulletins(who: AsBulletins, store: StoreDep) -> dict[str, Any]:
    """The published products (bulletins and their GeoJSON) from the store's list, as
    the cycle recorded them with their SHA-256; public ones only for roles without
    the right to restricted ones."""
    return listing(_products(who, store))


@router.get("/products", tags=["bulletins"], response_model=Products)
def products(who: AsBulletins, store: StoreDep) -> dict[str, Any]:
    """The published products, oldest first, each with its day, format, variant (public
    or restricted), tier (``automatic``, ``6h``, ``24h``... for the clock's incident
    lists, ``daily`` for its daily bulletin, ``bulletin`` for a cycle's), revision,
    SHA-256, publication time and the URL that serves it;
    restricted ones only for roles that may read restricted bulletins."""
    return {"products": [
        {"name": p["name"], "date": p["report_date"], "kind": p["kind"],
         "variant": p["audience"], "revision": revision_of(str(p["name"])),
         "tier": tier_of(str(p["name"])),
         "sha256": p["sha256"], "size": p["size"], "published_at": p["published_at"],
         "url": f"/api/v1/bulletins/{p['name']}"} for p in _products(who, store)]}


def serve_product(p: dict[str, Any], bulletins_dir: Path | None,
                  store: ArchiveStore | None = None) -> Response:
    path = bulletins_dir / p["name"] if bulletins_dir else Path(p["path"])
    if store is not None and not path.exists() and not path.is_symlink():
        content = _archived_bytes(store, p)  # kept in the store (reports.archive)
    else:
        content = _published_bytes(path, p)
    return Response(content, media_type=MEDIA_TYPES.get(p["kind"],
                                                        "application/octet-stream"),
                    headers={"Content-Security-Policy": guard.PRODUCT_CSP,
                             "Content-Disposition": f'inline; filename="{p["name"]}"',
                             "ETag": f'"{p["sha256"]}"'})


def find_product(store: ProductStore, name: str) -> dict[str, Any]:
    p = store.product(name)
    if p is None:
        raise NotFoundError(f"no published bulletin file {name!r}",
                            fix="list the published ones at /api/v1/bulletins")
    return p


@router.get("/bulletins/{name}", tags=["bulletins"], response_class=Response,
            responses={200: {"content": {t: {} for t in sorted(set(MEDIA_TYPES.values()))}}})
def bulletin(name: str, who: AsBulletins, store: StoreDep, cfg: ConfigDep) -> Response:
    """One published product, served only if it is on the store's list and its file
    still has the SHA-256 recorded when it was published (a symbolic link is never
    followed)."""
    p = find_product(store, name)
    if p["audience"] != "public" and not who.may("bulletins_restricted"):
        raise HTTPException(403, f"role {who.role.value} may not read restricted "
                            "bulletins")
    return serve_product(p, cfg.bulletins_dir, store)


class ProductChangedError(TrucewatchError):
    status = 409
    code = "product_changed"


def _archived_bytes(store: EvidenceStore, product: dict[str, Any]) -> bytes:
    """A published product's bytes as kept in the store, if they are those published."""
    from trucewatch.ingest.base import unpack

    try:
        content = unpack(store.raw_input(str(product["sha256"])), str(product["name"]))
    except NotFoundError:
        raise NotFoundError(f"published file {product['name']} is missing from the "
                            "bulletins folder and not kept in the store",
                            fix="restore the file from a backup") from None
    if hashlib.sha256(content).hexdigest() != product["sha256"]:
        raise ProductChangedError(f"{product['name']}: the bytes kept in the store are "
                                  "not the ones published", fix="run `trucewatch verify`")
    return content


def _published_bytes(path: Path, product: dict[str, Any]) -> bytes:
    """A published file's bytes, if they are still those published (never through a
    symbolic link)."""
    fix = ("restore the published file, or run the cycle again to publish a revision; "
           "the list at /api/v1/bulletins says what was published")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise NotFoundError(f"published file {product['name']} is missing from the "
                            "bulletins folder", fix=fix) from None
    except OSError as err:  # ELOOP: a symbolic link
        raise ProductChangedError(f"{product['name']} is not the file published: "
                                  f"{err.strerror or 'unreadable'} (symbolic links are "
                                  "not followed)", fix=fix) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ProductChangedError(f"{product['name']} is not a regular file", fix=fix)
        content = f.read()
    sha = hashlib.sha256(content).hexdigest()
    if sha != product["sha256"]:
        raise ProductChangedError(
            f"{product['name']} changed since it was published: its SHA-256 is "
            f"{sha[:12]}..., published {product['sha256'][:12]}...", fix=fix)
    return content
