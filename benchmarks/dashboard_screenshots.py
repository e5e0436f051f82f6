"""Screenshots of the dashboard, signed in as a reviewer, at 1400x900 (English) and at
390x844 (a phone, Ukrainian), in headless Debian chromium, each checked against its page
boxes first (as ``bulletin_screenshots.py``: no sideways scroll, nothing past the
viewport's right edge).

    python benchmarks/dashboard_screenshots.py [OUT_DIR] [--images docs/images]

OUT_DIR is a ``trucewatch run`` out folder (its ``trucewatch.db`` is copied, never
changed; the agreement is ``OUT_DIR/scenario/agreement.yaml`` or ``--agreement``).
Without it the built-in cycle is run in a temporary folder. It writes
``dashboard-1400x900.png`` and ``dashboard-390x844-uk.png`` (palette-quantised), prints
one line per screenshot and exits 1 if any page overflows. Run it with an absolute
PYTHONPATH: the server starts in another folder."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bulletin_screenshots import small_png
from lab.browser import SIZES, chromium, page_boxes
from lab.server import Server, free_port

SHOTS = ((SIZES[0], "en", "dashboard-1400x900.png"),
         (SIZES[1], "uk", "dashboard-390x844-uk.png"))


def shoot(out: Path, agreement: Path, images: Path, work: Path) -> list[str]:
    """Serve a copy of ``out``'s store and screenshot the dashboard; the overflows."""
    from trucewatch.storage import SqliteStore

    images.mkdir(parents=True, exist_ok=True)
    db = work / "dashboard.db"
    shutil.copy(out / "trucewatch.db", db)
    store = SqliteStore(db)
    token = store.add_token("ben", "reviewer")
    store.close()
    # the cycle's state as it stands: no worker re-deciding it and no products clock
    # writing the wall-clock day's products into OUT while the pictures are taken
    server = Server(db, free_port(), extra=("--agreement", str(agreement),
                                            "--bulletins", str(out), "--no-worker",
                                            "--no-products")).start()
    problems: list[str] = []
    try:
        with chromium() as browser:
            for (w, h), lang, name in SHOTS:
                page = browser.new_page(viewport={"width": w, "height": h})
                page.goto(f"{server.url}/?lang={lang}")
                page.wait_for_selector("body[data-view='public'][data-map-ready='1']",
                                       timeout=60_000)
                page.fill("#token", token)
                page.click("#signin button")
                page.wait_for_selector("body[data-view='signed'][data-map-ready='1']",
                                       timeout=60_000)
                page.wait_for_selector("#queue li .actions")
                boxes = page_boxes(page)
                dest = images / name
                size = small_png(page.screenshot(), dest)
                print(f"{dest}  {w}x{h} px  {size / 1024:.0f} kB  scrollWidth "
                      f"{boxes['scroll_width']}/{boxes['inner_width']}  "
                      f"wide {len(boxes['wide'])}  cut {len(boxes['cut'])}")
                # the map's canvas is a box of its own (MapLibre sizes it)
                wide = [b for b in boxes["wide"] if "maplibregl" not in b[0]]
                if boxes["scroll_width"] > boxes["inner_width"] or wide:
                    problems.append(f"{name}: {boxes}")
                page.close()
    finally:
        server.stop()
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", type=Path, help="a trucewatch run --out folder")
    ap.add_argument("--agreement", type=Path, help="default: OUT/scenario/agreement.yaml")
    ap.add_argument("--images", type=Path, default=Path("docs/images"))
    args = ap.parse_args(argv)
    images = args.images.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.out is not None:
            out = args.out.resolve()
            agreement = (args.agreement or out / "scenario" / "agreement.yaml").resolve()
        else:
            from lab.cycle import builtin_cycle
            from trucewatch.demo import generate

            scenario = generate(work / "scenario")
            out = work / "out"
            builtin_cycle(scenario, out)
            agreement = scenario.agreement
        problems = shoot(out, agreement, images, work)
    for p in problems:
        print("OVERFLOW", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
