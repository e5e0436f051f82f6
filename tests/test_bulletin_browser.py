"""Both bulletins (public and restricted HTML of the built-in cycle) in headless Debian
chromium at 1400x900 and at 390x844 (a phone), checked against their page boxes (issue 15):
the page does not scroll sideways, no element passes the viewport's right edge (a wide
table scrolls inside its own box on a phone, which must itself fit), nothing is clipped,
the page declares a viewport, and every incident id of the JSON export is in the visible
text. ``benchmarks/bulletin_screenshots.py`` takes the screenshots in docs/images/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.browser import CHROMIUM, SIZES, chromium, page_boxes

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium "
                                "(apt-get install chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _bulletin(out: Path, variant: str) -> tuple[Path, dict[str, Any]]:
    (html,) = sorted(out.glob(f"bulletin-*-{variant}.html"))
    return html, json.loads(html.with_suffix(".json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("variant", ["public", "restricted"])
def test_the_bulletin_fits_the_screen_and_shows_every_incident(
        built_cycle: Path, browser: Any, variant: str, size: tuple[int, int]) -> None:
    html, doc = _bulletin(built_cycle, variant)
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(html.resolve().as_uri())
    meta = page.locator("meta[name=viewport]")
    assert meta.count() == 1 and "width=device-width" in meta.get_attribute("content")
    boxes = page_boxes(page)
    assert boxes["inner_width"] == size[0]
    assert boxes["scroll_width"] <= boxes["inner_width"], boxes
    assert boxes["wide"] == [] and boxes["cut"] == [], boxes
    text = page.inner_text("body")
    assert doc["incidents"], "the built-in scenario has incidents"
    missing = [i["id"] for i in doc["incidents"] if i["id"] not in text]
    assert missing == []
    if size[0] < 700:
        # on a phone the wide tables scroll inside their own box: every cell is reachable
        for table in ("summary-table", "sectors", *(["inputs"] if variant == "restricted"
                                                    else [])):
            box = page.locator(f"div.scroll:has(> table#{table})")
            assert box.evaluate("(n) => getComputedStyle(n).overflowX") == "auto"
            assert box.bounding_box()["width"] <= size[0]
    page.close()


def test_the_page_box_check_sees_an_overflow_and_a_cut(built_cycle: Path,
                                                       browser: Any) -> None:
    """The check above can fail: a box wider than the phone and a box that clips its
    content are both reported."""
    html, _ = _bulletin(built_cycle, "public")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(html.resolve().as_uri())
    page.evaluate("""() => {
        const wide = document.createElement('div');
        wide.id = 'too-wide'; wide.style.width = '600px'; wide.textContent = 'x';
        const cut = document.createElement('div');
        cut.id = 'clipped';
        cut.style.cssText = 'width: 50px; overflow: hidden; white-space: nowrap';
        cut.textContent = 'a sentence far wider than fifty pixels';
        document.querySelector('#summary').append(wide, cut);
    }""")
    boxes = page_boxes(page)
    assert boxes["scroll_width"] > 390
    assert [w[0] for w in boxes["wide"]] == ["div#too-wide"]
    assert boxes["cut"] == ["div#clipped"]
    page.close()
