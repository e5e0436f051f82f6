"""Screenshots of both bulletins (public and restricted HTML) at 1400x900 and at 390x844
(a phone), in headless Debian chromium, each checked against its page boxes first: the
document does not scroll sideways and no element passes the viewport's right edge (a wide
table may scroll inside its own box; nothing is cut).

    python benchmarks/bulletin_screenshots.py [OUT_DIR] [--images docs/images]

Without OUT_DIR it runs the built-in cycle (no PDFs) in a temporary folder. It writes
``bulletin-{public,restricted}-{1400x900,390x844}.png`` (full-page, palette-quantised to
stay small), prints one line per screenshot and exits 1 if any page overflows."""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

from lab.browser import SIZES, chromium, page_boxes

VARIANTS = ("public", "restricted")


def bulletin(out: Path, variant: str) -> Path:
    """The newest ``bulletin-DATE-VARIANT.html`` of a cycle's out folder."""
    found = sorted(out.glob(f"bulletin-*-{variant}.html"))
    if not found:
        raise SystemExit(f"no bulletin-*-{variant}.html in {out}: run trucewatch run first")
    return found[-1]


def small_png(png: bytes, dest: Path) -> int:
    """Write ``png`` to ``dest`` as a 256-colour palette PNG (text and flat fills survive
    it) and return its size in bytes."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(dest, optimize=True)
    return dest.stat().st_size


def shoot(out: Path, images: Path) -> list[str]:
    """Screenshot both variants at both sizes into ``images``; return the overflows."""
    images.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with chromium() as browser:
        for variant in VARIANTS:
            url = bulletin(out, variant).resolve().as_uri()
            for w, h in SIZES:
                page = browser.new_page(viewport={"width": w, "height": h})
                page.goto(url)
                boxes = page_boxes(page)
                dest = images / f"bulletin-{variant}-{w}x{h}.png"
                size = small_png(page.screenshot(full_page=True), dest)
                full_h = page.evaluate("() => document.scrollingElement.scrollHeight")
                print(f"{dest}  {w}x{full_h} px  {size / 1024:.0f} kB  scrollWidth "
                      f"{boxes['scroll_width']}/{boxes['inner_width']}  "
                      f"wide {len(boxes['wide'])}  cut {len(boxes['cut'])}")
                if (boxes["scroll_width"] > boxes["inner_width"] or boxes["wide"]
                        or boxes["cut"]):
                    problems.append(f"{variant} {w}x{h}: {boxes}")
                page.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", type=Path, help="a trucewatch run --out folder")
    ap.add_argument("--images", type=Path, default=Path("docs/images"))
    args = ap.parse_args(argv)
    if args.out is not None:
        problems = shoot(args.out, args.images)
    else:
        from lab.cycle import builtin_cycle
        from trucewatch.demo import generate

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            builtin_cycle(generate(Path(tmp) / "scenario"), out)
            problems = shoot(out, args.images)
    for p in problems:
        print("OVERFLOW", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
