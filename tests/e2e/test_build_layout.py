"""Build in a real browser: at 1024 and 1440 px no label is cut off, the model survives a refresh
with its undo history, and what a screen reader announces for each button is a word.

Every test starts from a preset and ends on the default one (mlp-128x2 on Fashion-MNIST): the
server is shared, and a new tab opens the newest draft, so the next test finds Build as it expects.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import new_context, screenshot
from tests.e2e.waiting import act_and_settle, click, keyed, settle

pytestmark = [pytest.mark.e2e]

# Every visible button's and link's box against its own text and every element inside it: a label shown
# with an ellipsis, or clipped, is wider (scrollWidth) than the box that shows it (clientWidth).
CUT_LABELS = """() => [...document.querySelectorAll('[data-testid="stMain"] button, [data-testid="stMain"] a')]
  .filter(b => b.offsetParent !== null)
  .flatMap(b => [b, ...b.querySelectorAll('*')]
    .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)
    .map(e => `${(b.querySelector('[data-testid="stMarkdownContainer"]') || b).innerText.trim()} `
      + `(${e.scrollWidth} > ${e.clientWidth} px)`))"""
# Other things a user must read: a table, the dataset picker's value, the run name (a text box shows
# all its lines) and the page itself never scroll.
OVERFLOWS = """() => [...document.querySelectorAll(
    '[data-testid="stMain"], [data-testid="stTable"], [data-testid="stSelectbox"] [data-baseweb="select"] div, '
    + '[data-testid="stMain"] input[type="text"], [data-testid="stMain"] textarea')]
  .filter(e => e.offsetParent !== null && e.clientWidth > 0
    && (e.scrollWidth > e.clientWidth + 1 || (e.tagName === 'TEXTAREA' && e.scrollHeight > e.clientHeight + 1)))
  .map(e => `${e.getAttribute('data-testid') || e.value || e.innerText.trim().slice(0, 40)} `
    + `(${e.scrollWidth} > ${e.clientWidth} px)`)"""
def open_build(page, url: str):
    page.goto(f"{url}/build")
    keyed(page, "build_train").wait_for()
    settle(page)
    click(page, "build_preset_mlp-128x2")
    keyed(page, "build_card_dense_3").wait_for()


def assert_nothing_cut(page, what: str, width: int):
    cut = page.evaluate(CUT_LABELS) + page.evaluate(OVERFLOWS)
    if cut:
        screenshot(page, f"build-cut-{width}-{what}", top=True)
    assert cut == [], f"{what} at {width} px: {cut}"


@pytest.mark.parametrize("width", [1024, 1440])
def test_no_label_on_build_is_cut_off(app_server, browser, width):
    url, _ = app_server
    context = new_context(browser, width=width, height=900)
    page = context.new_page()
    try:
        open_build(page, url)
        assert_nothing_cut(page, "mlp-128x2", width)
        planted = keyed(page, "build_add_BatchNormalization").locator("button").first
        planted.evaluate("b => { b.dataset.width = b.style.width; b.style.width = '60px'; }")
        assert any(cut.startswith("BatchNormalization") for cut in page.evaluate(CUT_LABELS)), "the check sees a cut"
        planted.evaluate("b => { b.style.width = b.dataset.width; }")

        # Problems with one-click fixes on a card and beside Train, and an insertion point.
        click(page, "build_clear")
        keyed(page, "build_card_dense_1").wait_for(state="detached")
        for layer_type, name in (("Conv2D", "conv2d_1"), ("Dense", "dense_1")):
            click(page, f"build_add_{layer_type}")
            keyed(page, f"build_card_{name}").wait_for()
        click(page, "build_sel_conv2d_1")
        page.get_by_role("button", name="Insert Flatten").wait_for()
        page.get_by_text("Train is off: fix 1 problem first.").wait_for()
        assert_nothing_cut(page, "problems", width)

        # The longest labels: a dataset that is not on this machine, every layer type of a CNN.
        click(page, "build_preset_cifar-cnn")
        page.get_by_text("Train is off: CIFAR-10 is not on this machine.").wait_for()
        expect(keyed(page, "build_train").locator("button").first).to_be_disabled()
        assert_nothing_cut(page, "cifar-cnn", width)
        screenshot(page, f"build-{width}", top=True)
    finally:
        open_build(page, url)
        context.close()


def test_the_model_survives_a_refresh_and_undo_still_works(app_server, page):
    url, _ = app_server
    open_build(page, url)
    click(page, "build_clear")
    keyed(page, "build_card_dense_1").wait_for(state="detached")
    for layer_type, name in (("Flatten", "flatten_1"), ("Dense", "dense_1"), ("Dropout", "dropout_1")):
        click(page, f"build_add_{layer_type}")
        keyed(page, f"build_card_{name}").wait_for()
    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill("3")
    act_and_settle(page, lambda: epochs.press("Enter"))
    page.get_by_text("3 epochs of 32").wait_for()
    assert re.search(r"[?&]draft=[0-9a-f]{12}", page.url)

    page.reload()
    keyed(page, "build_card_dropout_1").wait_for()
    settle(page)
    assert keyed(page, "build_card_dense_2").count() == 0
    page.get_by_text("3 epochs of 32").wait_for()

    click(page, "build_undo")  # the epochs
    page.get_by_text("5 epochs of 32").wait_for()
    click(page, "build_undo")  # the Dropout
    keyed(page, "build_card_dropout_1").wait_for(state="detached")
    assert keyed(page, "build_card_dense_1").count() == 1

    tab = page.context.new_page()  # a new tab opens the newest draft
    tab.goto(f"{url}/build")
    keyed(tab, "build_card_dense_1").wait_for()
    assert keyed(tab, "build_card_dense_3").count() == 0
    tab.close()
    open_build(page, url)


def test_a_screen_reader_hears_words_for_every_button_on_a_card(app_server, page):
    url, _ = app_server
    open_build(page, url)
    card = keyed(page, "build_card_dense_1")
    snapshot = card.aria_snapshot()
    for name in ("Up", "Down", "Copy", "Delete", "Add below"):
        assert f'button "{name}"' in snapshot, (name, snapshot)
    assert " icon" not in snapshot, snapshot
