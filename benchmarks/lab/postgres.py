"""A throwaway PostgreSQL + PostGIS cluster on loopback, for tests and benchmarks.

    with TemporaryPostgis(folder) as url:      # postgresql://tw@127.0.0.1:PORT/postgres
        db = new_database(url)                 # a fresh, empty database on it

Needs the Debian packages (``postgresql-15-postgis-3``); :func:`binaries` says whether
they are there. As root, the cluster is handed to the ``postgres`` user (initdb refuses
root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from types import TracebackType

from lab.server import free_port


def binaries() -> Path | None:
    """The PostgreSQL bin folder of a version that has PostGIS, or None."""
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        version = bindir.parent.name
        if (bindir / "initdb").exists() and Path(
                f"/usr/share/postgresql/{version}/extension/postgis.control").exists():
            return bindir
    return None


def unavailable() -> str | None:
    """Why a cluster cannot be started here (None when it can)."""
    if binaries() is None:
        return ("needs PostgreSQL with PostGIS (apt-get install postgresql-15-postgis-3; "
                ".ci/run installs it) or TRUCEWATCH_TEST_PG_URL")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser: cannot start PostgreSQL"
    return None


class TemporaryPostgis:
    def __init__(self, folder: Path) -> None:
        self.root = Path(folder)
        self.run_as: list[str] = []
        self.bindir = binaries()

    def __enter__(self) -> str:
        why = unavailable()
        if why or self.bindir is None:
            raise RuntimeError(why)
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self.run_as = ["runuser", "-u", "postgres", "--"]
            for p in [self.root, *self.root.parents]:
                if str(p) == "/":
                    break
                p.chmod(p.stat().st_mode | 0o011)  # let postgres reach its folder
            shutil.chown(self.root, "postgres", "postgres")
        port = free_port()
        data = self.root / "data"
        subprocess.run([*self.run_as, str(self.bindir / "initdb"), "-D", str(data), "-U",
                        "tw", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], check=True,
                       capture_output=True)
        subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(data), "-l",
                        str(self.root / "pg.log"), "-o",
                        f"-c listen_addresses=127.0.0.1 -p {port} -k {self.root} "
                        "-c fsync=off", "-w", "start"], check=True, capture_output=True)
        return f"postgresql://tw@127.0.0.1:{port}/postgres"

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.bindir is not None:
            subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "-D",
                            str(self.root / "data"), "-m", "immediate", "stop"],
                           capture_output=True)


def new_database(server_url: str) -> str:
    """A fresh, empty database on the cluster at ``server_url``; its URL."""
    import psycopg

    name = f"tw_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name
