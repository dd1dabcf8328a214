"""The app makes no request off the machine: every page, in a real browser, asks only the local
server for what it shows (its icon font and favicon, charts and the drawing pad included), and the
icons still draw.

A request to another host fails offline and, on a network, tells a third party who uses the app.
"""
from urllib.parse import urlsplit

import pytest

from pipelines.modelspec.keras_build import build_model
from pipelines.modelspec.presets import get_preset
from pipelines.runs.artifacts import MODEL_FILE, SPEC_FILE
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.e2e.waiting import settle

pytestmark = [pytest.mark.e2e]

# Each page by its path (Data is the app's first page, at the root), with a finished run where it
# shows one: Train draws its charts, Test its drawing pad, Compare its tables.
PAGES = {"": "Data", "build": "Build", "train?run={run}": "Train", "test?run={run}": "Test",
         "compare?runs={run}": "Compare"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = {"data", "blob", "about"}
# The icon font counts as loaded once a face of it is; a Material icon that drew is a square glyph,
# while the same element without its font shows its ligature's name ("compare_arrows") as text.
ICON_FONT_LOADED = """() => [...document.fonts].some(f => f.family.includes('Material Symbols') && f.status === 'loaded')"""
ICON_BOXES = """() => [...document.querySelectorAll('[data-testid="stIconMaterial"]')]
  .filter(e => e.offsetParent !== null)
  .map(e => { const r = e.getBoundingClientRect(); return [e.innerText, r.width, r.height]; })"""


def _off_machine(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in LOCAL_SCHEMES and parts.hostname not in LOCAL_HOSTS


@pytest.fixture
def finished_run(app_server, tmp_path) -> str:
    """A finished MNIST run in the server's store, its model saved as a trained one's is."""
    _, home = app_server
    spec = get_preset("mlp-128x2").spec
    files = tmp_path / "run"
    files.mkdir()
    build_model(spec, (28, 28, 1)).save(files / MODEL_FILE)
    (files / SPEC_FILE).write_text(spec.to_json())
    with SQLiteRunStore(home) as store:
        return store.add_finished_run("offline check", "mnist", spec.to_dict(), files,
                                      metrics={"test_accuracy": 0.5, "test_loss": 1.0}).id


def test_every_page_asks_only_this_machine_and_its_icons_draw(app_server, page, finished_run):
    url, _ = app_server
    leaks: list[str] = []
    page.on("request", lambda request: leaks.append(request.url) if _off_machine(request.url) else None)
    for path, heading in PAGES.items():
        page.goto(f"{url}/{path.format(run=finished_run)}")
        page.get_by_role("heading", name=heading, exact=True).first.wait_for()
        settle(page)
        page.wait_for_function(ICON_FONT_LOADED)
        page.wait_for_load_state("networkidle")
        boxes = page.evaluate(ICON_BOXES)
        assert boxes, f"the {heading} page shows no Material icon to check"
        unsquare = [box for box in boxes if not (0 < box[1] <= 1.5 * box[2])]
        assert unsquare == [], f"{heading}: icons drawn as text, not glyphs (name, width, height): {unsquare}"
        assert leaks == [], f"the {heading} page asked another host: {sorted(set(leaks))}"
