"""Bulletin length and render time: for each bulletin of an output folder, the PDF's pages
(portrait summary and body, landscape annex), the seconds WeasyPrint takes to lay it out
and write it, and the seconds to re-render its HTML from the JSON in each language.

    python benchmarks/bulletin_pages.py OUT_DIR [OUT_DIR ...]

OUT_DIR is a ``trucewatch run --out`` folder (the built-in scenario or a replay)."""

from __future__ import annotations

import io
import json
import re
import sys
import time
from pathlib import Path


def measure(html_path: Path) -> dict[str, object]:
    import pypdf
    from weasyprint import HTML

    from trucewatch.reports.bulletin import render_html
    from trucewatch.reports.i18n import LANGUAGES

    html = html_path.read_text(encoding="utf-8")
    t = time.perf_counter()
    buf = io.BytesIO()
    HTML(string=html).write_pdf(buf)
    pdf_s = time.perf_counter() - t
    pages = pypdf.PdfReader(io.BytesIO(buf.getvalue())).pages
    landscape = sum(1 for p in pages if float(p.mediabox.width) > float(p.mediabox.height))
    ctx = json.loads(html_path.with_suffix(".json").read_text(encoding="utf-8"))
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)[:2]
    t = time.perf_counter()
    for lang in LANGUAGES:
        render_html(ctx, lang, *svgs)
    html_s = (time.perf_counter() - t) / len(LANGUAGES)
    return {"bulletin": html_path.name, "incidents": len(ctx["incidents"]),
            "pages": len(pages), "landscape_annex_pages": landscape,
            "pdf_seconds": round(pdf_s, 2), "html_seconds_per_language": round(html_s, 3)}


def main(dirs: list[str]) -> None:
    print("| bulletin | incidents | pages | of which annex (landscape) | PDF s | HTML s |")
    print("|---|---|---|---|---|---|")
    for d in dirs:
        for path in sorted(Path(d).glob("bulletin-*.html")):
            m = measure(path)
            print(f"| {m['bulletin']} | {m['incidents']} | {m['pages']} | "
                  f"{m['landscape_annex_pages']} | {m['pdf_seconds']} | "
                  f"{m['html_seconds_per_language']} |")


if __name__ == "__main__":
    main(sys.argv[1:])
