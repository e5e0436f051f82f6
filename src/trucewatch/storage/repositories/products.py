"""Published products (issue 11): the service serves what this list names, never a file
because of its name; each entry is logged with the file's SHA-256."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from trucewatch.storage.database import now
from trucewatch.storage.repositories.base import Repository, dicts


class ProductRepository(Repository):
    """Bulletins and checkpoints, as published."""

    def publish_product(self, path: Path, kind: str, report_date: date, audience: str,
                        actor: str = "pipeline", recorded_path: Path | None = None) -> bool:
        """Record a written product (a bulletin file) as published, with its SHA-256.
        A name is published once: a re-run that would change it writes a revision.
        ``recorded_path``: where the product will lie (default ``path``), for a product
        written to a scratch file first and moved there only once published. True when
        this call published it; False when a product of that name already was (another
        writer won: its record stands, this call is a no-op)."""
        content = Path(path).read_bytes()
        sha = hashlib.sha256(content).hexdigest()
        where = Path(recorded_path) if recorded_path is not None else Path(path)
        name = where.name
        p = self._t("products")
        try:
            with self._transaction():
                if self._x(sa.select(p.c.sha256).where(p.c.name == name)).first() is not None:
                    return False
                self._bind("products", [(name,)], new=True)
                self._x(p.insert().values(name=name, kind=kind,
                                          report_date=report_date.isoformat(),
                                          audience=audience, sha256=sha, size=len(content),
                                          path=str(where.resolve()), published_at=now()))
                self._log(actor, "publish", name, {
                    "kind": kind, "report_date": report_date.isoformat(),
                    "audience": audience, "sha256": sha, "size": len(content)})
        except sa.exc.IntegrityError:  # the name's primary key: published meanwhile
            return False
        return True

    def publish_checkpoint(self, out_dir: Path, day: date,
                           key_path: Path | None = None) -> Path:
        """Sign the log's head with the mission key (``key_path``, else the default place)
        into ``out_dir/checkpoint-DAY.json``, pinning the key in the log the first time
        (integrity.checkpoint: where the key lives, what is signed)."""
        from trucewatch.integrity import checkpoint

        return checkpoint.publish(self, Path(out_dir), day, key_path)  # type: ignore[arg-type]

    def products(self) -> list[dict[str, Any]]:
        """Published products, oldest first: name, kind, report_date, audience (public or
        restricted), sha256, size, path, published_at."""
        p = self._t("products")
        return dicts(self._x(sa.select(p.c.name, p.c.kind, p.c.report_date, p.c.audience,
                                       p.c.sha256, p.c.size, p.c.path, p.c.published_at)
                             .order_by(p.c.published_at, p.c.name)))

    def product(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.products() if p["name"] == name), None)
