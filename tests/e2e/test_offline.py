"""The app makes no request off the machine: every page, in a real browser, asks only the local
server for what it shows (its icon font and favicon included), and the icons still draw.

A request to another host fails offline and, on a network, tells a third party who uses the app.
"""
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.e2e]

PAGES = {"": "Data", "build": "Build", "train": "Train", "test": "Test", "compare": "Compare"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = {"data", "blob", "about"}
SETTLED = """() => document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState === 'notRunning'
  && !document.querySelector('[data-testid="stSkeleton"]') && !document.querySelector('[data-stale="true"]')"""
# The icon font counts as loaded once a face of it is; a Material icon that drew is a square glyph,
# while the same element without its font shows its ligature's name ("compare_arrows") as text.
ICON_FONT_LOADED = """() => [...document.fonts].some(f => f.family.includes('Material Symbols') && f.status === 'loaded')"""
ICON_BOXES = """() => [...document.querySelectorAll('[data-testid="stIconMaterial"]')]
  .filter(e => e.offsetParent !== null)
  .map(e => { const r = e.getBoundingClientRect(); return [e.innerText, r.width, r.height]; })"""


def _off_machine(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in LOCAL_SCHEMES and parts.hostname not in LOCAL_HOSTS


def test_every_page_asks_only_this_machine_and_its_icons_draw(app_server, page):
    url, _ = app_server
    leaks: list[str] = []
    page.on("request", lambda request: leaks.append(request.url) if _off_machine(request.url) else None)
    for path, heading in PAGES.items():
        page.goto(f"{url}/{path}")
        page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=90_000)
        page.wait_for_function(SETTLED, timeout=60_000)
        page.wait_for_function(ICON_FONT_LOADED, timeout=20_000)
        page.wait_for_load_state("networkidle", timeout=30_000)
        boxes = page.evaluate(ICON_BOXES)
        assert boxes, f"the {heading} page shows no Material icon to check"
        unsquare = [box for box in boxes if not (0 < box[1] <= 1.5 * box[2])]
        assert unsquare == [], f"{heading}: icons drawn as text, not glyphs (name, width, height): {unsquare}"
        assert leaks == [], f"the {heading} page asked another host: {sorted(set(leaks))}"
