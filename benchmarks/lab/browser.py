"""Headless Debian chromium, driven by Playwright, as tests/test_web.py launches it (no
browser is downloaded), and the page-box check shared by the bulletin browser test and
``benchmarks/bulletin_screenshots.py``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--enable-unsafe-swiftshader"]

SIZES = ((1400, 900), (390, 844))
"""The two viewports of issue 15: a desktop and a phone (CSS pixels)."""

# Every rendered element of the body (an SVG counts as its <svg> box), with the right edge
# of the box it must fit in: the viewport, or, inside a box that scrolls horizontally on
# its own (a wide table on a phone), that box, which must itself fit. A box that hides
# what overflows it (overflow-x hidden or clip) is "cut".
_BOXES = """() => {
    const name = (n) => n.tagName.toLowerCase() + (n.id ? '#' + n.id : '')
        + (typeof n.className === 'string' && n.className.trim()
           ? '.' + n.className.trim().split(/\\s+/).join('.') : '');
    const wide = [], cut = [];
    for (const n of document.querySelectorAll('body *')) {
        if (!n.getClientRects().length) continue;
        if (n.closest('svg') && n.tagName.toLowerCase() !== 'svg') continue;
        let limit = innerWidth, scroller = null;
        for (let p = n.parentElement; p && p !== document.body; p = p.parentElement) {
            const ox = getComputedStyle(p).overflowX;
            if (ox === 'auto' || ox === 'scroll') { scroller = p; break; }
        }
        if (scroller) {
            const b = scroller.getBoundingClientRect();
            limit = b.left + scroller.scrollWidth;
        }
        const r = n.getBoundingClientRect().right;
        if (r > limit + 1) wide.push([name(n), Math.round(r), Math.round(limit)]);
        const s = getComputedStyle(n);
        if ((s.overflowX === 'hidden' || s.overflowX === 'clip')
            && n.scrollWidth > n.clientWidth + 1) cut.push(name(n));
    }
    return {wide, cut, inner_width: innerWidth,
            scroll_width: document.scrollingElement.scrollWidth};
}"""


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright browser on Debian's chromium (``/usr/bin/chromium``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def page_boxes(page: Any) -> dict[str, Any]:
    """The page-box check of ``page``: ``scroll_width`` against ``inner_width`` (the
    document must not scroll sideways), ``wide``: elements whose right edge passes the
    viewport (or, inside a box that scrolls on its own, that box's scrollable content)
    by more than a pixel, as ``[selector, right, limit]``, and ``cut``: boxes that hide
    content wider than themselves. A page that fits has ``wide == cut == []`` and
    ``scroll_width <= inner_width``."""
    return dict(page.evaluate(_BOXES))
