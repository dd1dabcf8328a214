"""Every page readable from 1024 px: at 1024x768 and at 1440x900 a real browser opens Data, Build,
Train (on a finished run), Test (each tab, after a stroke and an upload, and an evaluation on a
folder of clothing photos) and Compare (two runs selected), and finds no heading, label, button,
caption or table cell cut off.

A text counts as cut when
- its own box is narrower than its text and hides the rest or ends it with an ellipsis;
- it reaches past the edge of a box that clips it (as a column pushed out of the page is);
- it is crushed to a column about a letter wide, printing one letter per line;
- a line break falls inside a word (between two letters or digits), as in a table column too
  narrow for its layer names;
- it sits in a table (st.dataframe draws its cells on a canvas) that scrolls sideways and hides
  part of one of the columns a user reads first (`LEADING`).
Every check is tried on a planted fault first, so a check that cannot see anything fails.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e import waiting
from tests.e2e.conftest import REPO, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WIDTHS = [(1024, 768), (1440, 900)]
# The columns of a table a user reads first: when a table scrolls sideways, these must be in view.
LEADING = ["Name", "Status", "Best val. accuracy", "Test accuracy", "Val acc (best)", "Test acc", "Class", "Accuracy",
           "Your class"]

CUT_TEXT = r"""() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const shown = e => e.offsetParent !== null && e.getClientRects().length > 0;
  const name = e => (e.tagName === 'INPUT' ? e.value : e.innerText || e.textContent || '').trim()
    .replace(/\s+/g, ' ').slice(0, 50);
  const flagged = [];  // [element, what is wrong]; an outer box around a flagged one is not named again
  const texts = main.querySelectorAll('h1, h2, h3, h4, h5, h6, label, button, a, p, li, td, th, '
    + '[data-testid="stMetricValue"], [data-testid="stMetricLabel"], [data-testid="stCaptionContainer"], '
    + '[data-testid="stMarkdownContainer"], [data-baseweb="tab"], [data-baseweb="select"] div, '
    + 'input[type="text"], input:not([type])');  // a selectbox shows its value in an input
  for (const e of texts) {
    if (!shown(e) || !name(e)) continue;
    const style = getComputedStyle(e), box = e.getBoundingClientRect(), font = parseFloat(style.fontSize);
    if (e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0
        && (style.overflowX !== 'visible' || style.textOverflow === 'ellipsis')) {
      flagged.push([e, `"${name(e)}" is cut by its own box (${e.scrollWidth} > ${e.clientWidth} px)`]);
      continue;
    }
    if (name(e).length > 3 && box.width < 2 * font && box.height > 3 * font) {
      flagged.push([e, `"${name(e)}" is crushed to ${Math.round(box.width)} px, a letter or two a line`]);
      continue;
    }
    const right = e.clientWidth > 0 ? box.left + Math.max(e.scrollWidth, box.width) : box.right;  // text spilling out too
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX === 'visible') continue;
      const edge = a.getBoundingClientRect();
      if (right > edge.right + 1 || box.left < edge.left - 1)
        flagged.push([e, `"${name(e)}" reaches past the edge of its ${a.dataset.testid || a.tagName.toLowerCase()} `
                      + `(${Math.round(box.left)}-${Math.round(right)} px, shown ${Math.round(edge.left)}-`
                      + `${Math.round(edge.right)} px)`]);
      break;
    }
  }
  const cuts = flagged.filter(([e]) => !flagged.some(([other]) => other !== e && e.contains(other)))
    .map(([, what]) => what);
  const letter = /[\p{L}\p{N}]/u, range = document.createRange();
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent, parent = node.parentElement;
    if (text.trim().length < 4 || parent.closest('svg') || !shown(parent)) continue;  // charts turn their labels
    if (parent.getBoundingClientRect().height < 1.8 * parseFloat(getComputedStyle(parent).fontSize)) continue;
    let top = null;
    for (let i = 0; i < text.length; i++) {
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rects = range.getClientRects();
      if (!rects.length) { top = null; continue; }
      if (top !== null && rects[0].top > top + 2 && letter.test(text[i]) && letter.test(text[i - 1])) {
        const word = text.slice(0, i).split(/\s/).pop() + '|' + text.slice(i).split(/\s/)[0];
        cuts.push(`"${word}" breaks inside a word ("${text.trim().slice(0, 50)}")`);
        break;
      }
      top = rects[0].top;
    }
  }
  return [...new Set(cuts)];
}"""


# st.dataframe draws its cells on a canvas; its accessibility table names the columns in view (and
# one partly in view at the right edge of a table that scrolls sideways). Scrolling across it
# collects every column's name; back at the start, a leading column must be wholly in view.
HIDDEN_COLUMNS = r"""async (leading) => {
  const frame = () => new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve, 60)));
  const names = grid => [...grid.querySelectorAll('th[role="columnheader"]')].map(th => th.innerText.trim());
  const hidden = [];
  for (const grid of document.querySelectorAll('[data-testid="stMain"] [data-testid="stDataFrame"]')) {
    const scroller = grid.querySelector('.dvn-scroller');
    if (!scroller || grid.offsetParent === null || scroller.scrollWidth <= scroller.clientWidth + 1) continue;
    const scrollTo = async left => {  // the grid redraws its columns a few frames after a scroll
      const before = names(grid).join();
      scroller.scrollLeft = left;
      for (let waited = 0; waited < 20 && names(grid).join() === before; waited++) await frame();
    };
    const every = new Set(names(grid));
    for (let left = scroller.clientWidth / 2; left < scroller.scrollWidth; left += scroller.clientWidth / 2) {
      await scrollTo(left);
      names(grid).forEach(name => every.add(name));
    }
    await scrollTo(0);
    const inView = names(grid).slice(0, -1);  // the last one shown is cut by the table's edge
    for (const name of leading)
      if (every.has(name) && !inView.includes(name))
        hidden.push(`table column "${name}" is hidden behind the table's sideways scroll (in view: ${inView.join(', ')})`);
  }
  return hidden;
}"""


def settle(page):
    """A quiet page (tests/e2e/waiting.py) whose images have loaded."""
    waiting.settle(page)
    page.wait_for_function("() => [...document.images].every(image => image.complete)")


def cut_text(page) -> list[str]:
    return page.evaluate(CUT_TEXT) + page.evaluate(HIDDEN_COLUMNS, LEADING)


def assert_readable(page, where: str, width: int) -> None:
    cuts = cut_text(page)
    if cuts:
        screenshot(page, f"widths-{width}-{where}", top=True)
    assert cuts == [], f"{where} at {width} px:\n" + "\n".join(cuts)


def train(home, shared_datasets, dataset: str, preset: str) -> str:
    """A one-epoch run through the CLI into the server's store; its id."""
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "train", "--dataset", dataset, "--preset", preset, "--epochs", "1",
         "--home", str(home)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "LAYERLAB_DATA_DIR": str(shared_datasets), "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "COMPLETED", summary
    return summary["run_id"]


@pytest.fixture(scope="module")
def finished_runs(app_server, shared_datasets):
    """Two finished runs: a LeNet on MNIST, and an MLP on Fashion-MNIST for the clothing photos."""
    _url, home = app_server
    return [train(home, shared_datasets, "mnist", "lenet"), train(home, shared_datasets, "fashion_mnist", "mlp-128x2")]


@pytest.fixture
def viewport(browser, request):
    width, height = request.param
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    yield page, width
    context.close()


def test_the_check_sees_cut_crushed_and_broken_text(app_server, browser):
    url, _home = app_server
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    try:
        page.goto(f"{url}/data")
        page.get_by_role("heading", name="Data").wait_for(timeout=60_000)
        settle(page)
        found = cut_text(page)
        assert found == [], "\n".join(found)
        page.evaluate("""() => {
          const main = document.querySelector('[data-testid="stMain"]');
          const plant = (html, style) => {
            const box = document.createElement('div');
            box.innerHTML = html;
            Object.assign(box.firstElementChild.style, style);
            main.querySelector('h1').parentElement.append(box);
          };
          plant('<p>An ellipsis over a long label</p>',
                {width: '60px', overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap'});
          plant('<h3>Crushed heading</h3>', {width: '12px'});
          plant('<p>batch_normalization</p>', {width: '60px', overflowWrap: 'anywhere'});
          plant('<div style="width: 100px; overflow: hidden"><label style="display: block; margin-left: 80px; '
                + 'white-space: nowrap">Pushed out</label></div>', {});
        }""")
        # The class table (Label, Class, Training images, Test images) squeezed to 150 px scrolls sideways.
        page.locator('[data-testid="stDataFrame"]').first.evaluate(
            "grid => { grid.closest('[data-testid=\"stElementContainer\"]').style.width = '150px'; }")
        page.wait_for_function("() => { const s = document.querySelector('.dvn-scroller'); "
                               "return s.scrollWidth > s.clientWidth + 1; }")
        hidden = "\n".join(page.evaluate(HIDDEN_COLUMNS, ["Label", "Test images"]))
        assert 'table column "Test images" is hidden' in hidden and '"Label"' not in hidden, hidden
        cuts = "\n".join(cut_text(page))
        assert '"An ellipsis over a long label" is cut by its own box' in cuts, cuts
        assert '"Crushed heading" is crushed' in cuts, cuts
        assert "breaks inside a word" in cuts and "batch_normalization" in cuts, cuts
        assert '"Pushed out" reaches past the edge' in cuts, cuts
    finally:
        context.close()


@pytest.mark.parametrize("viewport", WIDTHS, indirect=True, ids=lambda size: f"{size[0]}px")
def test_data_is_readable(app_server, viewport):
    url, _home = app_server
    page, width = viewport
    page.goto(f"{url}/data")
    page.get_by_role("heading", name="Data").wait_for(timeout=60_000)
    settle(page)
    assert_readable(page, "data", width)


@pytest.mark.parametrize("viewport", [pytest.param(WIDTHS[0], id="1024px"),
                                      pytest.param(WIDTHS[1], id="1440px")], indirect=True)
def test_build_is_readable_with_its_longest_layer_names(app_server, viewport):
    url, _home = app_server
    page, width = viewport
    page.goto(f"{url}/build")
    page.locator(".st-key-build_train").wait_for(timeout=90_000)
    settle(page)
    try:
        waiting.click(page, "build_preset_cifar-cnn")
        page.get_by_text("batch_normalization_5").first.wait_for()
        settle(page)
        assert_readable(page, "build-cifar-cnn", width)
    finally:  # the Build tests that share this server expect the default model
        waiting.click(page, "build_preset_mlp-128x2")


@pytest.mark.parametrize("viewport", WIDTHS, indirect=True, ids=lambda size: f"{size[0]}px")
def test_train_is_readable_on_a_finished_run(app_server, finished_runs, viewport):
    url, _home = app_server
    page, width = viewport
    page.goto(f"{url}/train?run={finished_runs[0]}")
    page.get_by_text("Completed").first.wait_for(timeout=60_000)
    settle(page)
    assert_readable(page, "train", width)


def png_bytes(array: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("viewport", WIDTHS, indirect=True, ids=lambda size: f"{size[0]}px")
def test_every_tab_of_test_is_readable(app_server, finished_runs, viewport, shared_datasets, tmp_path):
    url, _home = app_server
    page, width = viewport
    page.goto(f"{url}/test?run={finished_runs[0]}")
    page.get_by_text("Draw a digit").wait_for(timeout=120_000)
    settle(page)
    assert_readable(page, "test-draw", width)

    canvas = page.locator(".st-key-test_canvas_0 canvas.upper-canvas")  # the drawing library's input layer
    canvas.scroll_into_view_if_needed()
    prediction = page.locator(".st-key-test_top_class [data-testid='stMetricValue']")
    for _attempt in range(3):  # a stroke made while the library still sets itself up is not sent
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + 140, box["y"] + 40)
        page.mouse.down()
        for step in range(1, 13):
            page.mouse.move(box["x"] + 140, box["y"] + 40 + step * 16)
        page.mouse.up()
        try:
            prediction.wait_for(timeout=20_000)
            break
        except PlaywrightTimeout:
            continue
    prediction.wait_for(timeout=1_000)
    settle(page)
    # The answer stands beside the canvas, its bars as wide as a readable chart.
    answer, drawing = prediction.bounding_box(), canvas.bounding_box()
    assert answer["x"] > drawing["x"] + drawing["width"] and answer["y"] < drawing["y"] + drawing["height"], (
        answer, drawing)
    bars = page.locator(".st-key-test_top_class_chart .js-plotly-plot").bounding_box()
    assert bars["width"] >= 200, bars
    assert page.locator(".st-key-test_model_input img").bounding_box()["width"] >= 150
    assert_readable(page, "test-drawn", width)

    mnist = np.load(shared_datasets / "mnist-sample" / "mnist.npz")
    (tmp_path / "a-picture-with-a-long-file-name-of-a-seven.png").write_bytes(png_bytes(mnist["x_test"][0]))
    waiting.act_and_settle(page, page.get_by_role("tab", name="Upload").click)
    settle(page)
    page.locator(".st-key-test_upload input[type='file']").set_input_files(
        [str(path) for path in tmp_path.glob("*.png")])
    page.locator(".st-key-test_result_0 [data-testid='stMetricValue']").wait_for(timeout=30_000)
    settle(page)
    assert_readable(page, "test-upload", width)

    waiting.act_and_settle(page, page.get_by_role("tab", name="Evaluate").click)
    page.locator(".st-key-test_confusion .js-plotly-plot").wait_for(timeout=120_000)
    settle(page)
    assert_readable(page, "test-evaluate", width)

    waiting.act_and_settle(page, page.get_by_role("tab", name="See inside").click)
    page.locator(".st-key-test_inside_maps .js-plotly-plot").wait_for(timeout=60_000)
    settle(page)
    assert_readable(page, "test-inside", width)


@pytest.mark.parametrize("viewport", WIDTHS, indirect=True, ids=lambda size: f"{size[0]}px")
def test_the_evaluation_on_photos_is_readable(app_server, finished_runs, viewport, shared_datasets):
    url, _home = app_server
    page, width = viewport
    page.goto(f"{url}/test?run={finished_runs[1]}")
    page.get_by_text("Draw one of").first.wait_for(timeout=120_000)
    settle(page)
    waiting.act_and_settle(page, page.get_by_role("tab", name="Evaluate").click)
    page.locator(".st-key-test_confusion .js-plotly-plot").wait_for(timeout=120_000)
    settle(page)
    waiting.act_and_settle(page, page.get_by_text("A folder on this server").click)
    folder = page.locator(".st-key-test_folder_path input")
    folder.fill(str(shared_datasets / "clothing-small" / "validation"))  # photos named by UUIDs: long names
    waiting.act_and_settle(page, lambda: folder.press("Enter"))
    waiting.click(page, "test_folder_go")
    page.get_by_text("Accuracy on your photos").wait_for(timeout=180_000)
    settle(page)
    assert_readable(page, "test-photos", width)


@pytest.mark.parametrize("viewport", [pytest.param(WIDTHS[0], id="1024px"),
                                      pytest.param(WIDTHS[1], id="1440px")], indirect=True)
def test_compare_is_readable_with_two_runs_selected(app_server, finished_runs, viewport):
    url, _home = app_server
    page, width = viewport
    page.goto(f"{url}/compare?runs={','.join(finished_runs)}")
    page.get_by_role("heading", name="Compare").wait_for(timeout=60_000)
    settle(page)
    assert_readable(page, "compare", width)
