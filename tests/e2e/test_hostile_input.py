"""A run named with Markdown and HTML, and a `?run=` value made of Markdown, in a real browser: the
page shows the text as written, builds no image or link from it, and never fetches its address.

Real server, real browser (Debian's chromium through Playwright); the run is put in the server's
store directly and stopped while queued, so no worker trains it.
"""
import urllib.parse

import pytest

from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.e2e.conftest import screenshot
from tests.e2e.waiting import settle

pytestmark = [pytest.mark.e2e]

HOST = "127.0.0.1:9"  # the discard port: nothing answers there, but a request would still be made
NAME = f"![x](http://{HOST}/track) [a](http://{HOST}/link) :red[x] <img src=x> http://{HOST}/bare www.x.org"
WORD_JOINER = "\u2060"
# Every <img> and <a> in the app's main area (but the page title's own anchor and the page's own links
# to other pages, "Edit in Build" and "Test this model"), and every attribute anywhere that names the host.
BUILT = """(host) => ({
  images: [...document.querySelectorAll('[data-testid="stMain"] img')].map(e => e.outerHTML),
  links: [...document.querySelectorAll('[data-testid="stMain"] a:not(h1 a):not([data-testid="stPageLink-NavLink"])')]
    .map(e => e.outerHTML),
  naming_host: [...document.querySelectorAll('*')].flatMap(
      e => [...e.attributes].filter(a => a.value.includes(host)).map(a => e.tagName + ' ' + a.name)),
})"""


@pytest.fixture
def hostile_run(app_server):
    _url, home = app_server
    with SQLiteRunStore(home) as store:
        run = store.create_run(NAME, "fashion_mnist", get_preset("mlp-128x2").spec.to_dict(), total_epochs=1)
        store.request_stop(run.id)  # a queued run stops at once; one a worker took stops after a batch
        return run.id


def open_and_watch(page, url: str) -> list[str]:
    """Open `url` and wait until the app is idle; returns every URL the page requested."""
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.get_by_role("heading", name="Train").wait_for()
    settle(page)
    return requests


def assert_nothing_built_from(page, requests: list[str]) -> None:
    built = page.evaluate(BUILT, HOST)
    assert built == {"images": [], "links": [], "naming_host": []}
    fetched = [urllib.parse.urlparse(u) for u in requests]
    assert not [u.geturl() for u in fetched if u.netloc == HOST or u.path.endswith("/x")]


def test_a_run_named_with_markdown_is_shown_as_written(app_server, page, hostile_run):
    url, home = app_server
    requests = open_and_watch(page, f"{url}/train?run={hostile_run}")
    heading = page.locator('[data-testid="stMain"] h3').first
    heading.wait_for()
    with SQLiteRunStore(home) as store:
        assert store.get_run(hostile_run).status in (RunStatus.STOPPED, RunStatus.RUNNING)
    assert heading.inner_text().replace(WORD_JOINER, "").strip() == NAME
    screenshot(page, "hostile-run-name")
    assert_nothing_built_from(page, requests)


def test_a_run_link_made_of_markdown_is_refused_in_fixed_words(app_server, page):
    url, _home = app_server
    requests = open_and_watch(page, f"{url}/train?run=%5Bx%5D(http://{HOST}/)")
    alert = page.locator('[data-testid="stAlert"]').first
    alert.wait_for()
    assert "is not a run id" in alert.inner_text()
    assert "[x]" not in page.locator('[data-testid="stMain"]').inner_text()
    assert_nothing_built_from(page, requests)
