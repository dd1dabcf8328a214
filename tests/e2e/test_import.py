"""A user imports a teammate's .keras model on the Test page: a hostile file first (refused, with
its reason), then the real one, which appears among the runs to try, with its test accuracy.

Real server, real browser (Debian's chromium through Playwright); the files are real `.keras`
archives saved by Keras.
"""
import copy
import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.e2e.waiting import act_and_settle, settle
from tests.io.keras_files import assemble, function_object, parts, plain_keras_model, save

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
UPLOADER = ".st-key-import_file input[type=file]"


def import_file(page, path):
    page.locator(UPLOADER).set_input_files(str(path))
    page.locator(".st-key-import_file").get_by_text(path.name).wait_for()
    settle(page)
    act_and_settle(page, page.locator(".st-key-import_go button").click)


def test_import_a_keras_file_and_see_it_among_the_runs(app_server, page, tmp_path):
    url, _home = app_server
    good = save(plain_keras_model(), tmp_path / "teammate.keras")
    config, weights, _ = parts(good)
    hostile = copy.deepcopy(config)
    hostile["config"]["layers"][5]["config"]["activation"] = function_object("os", "system")
    hostile_path = assemble(tmp_path / "hostile.keras", hostile, weights)

    page.goto(f"{url}/test")
    page.get_by_role("heading", name="Test").wait_for()
    settle(page)
    if not page.locator(".st-key-import_dataset").is_visible():  # closed once the page has runs
        page.get_by_text("Import a .keras model").click()
    page.locator(UPLOADER).wait_for(state="attached")
    settle(page)
    mnist = page.get_by_role("option", name="MNIST", exact=True)
    for _attempt in range(8):  # a click while the expander still opens may not open the list
        page.locator(".st-key-import_dataset").click()
        try:
            mnist.wait_for(timeout=15_000)
            break
        except PlaywrightTimeout:  # open the list again
            page.keyboard.press("Escape")
    act_and_settle(page, mnist.click)
    page.locator(".st-key-import_name input").fill("e2e teammate")
    act_and_settle(page, lambda: page.locator(".st-key-import_name input").press("Enter"))

    import_file(page, hostile_path)
    page.get_by_text("names 'os.system'").wait_for()
    screenshot(page, "import-refused")

    import_file(page, good)
    page.get_by_text("Imported e2e teammate as run").wait_for(timeout=300_000)
    settle(page)
    screenshot(page, "import-done", top=True)
    # The Model picker now offers it, with its test figures, as it offers any run.
    expect(page.get_by_role("combobox", name="Model")).to_have_value(re.compile(r"^e2e teammate · [0-9.]+% test accuracy · "))
    page.get_by_text(re.compile(r"^MNIST · ")).first.wait_for()  # the caption under the picker names the dataset
