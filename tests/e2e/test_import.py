"""A user imports a teammate's .keras model on the Test page: a hostile file first (refused, with
its reason), then the real one, which appears among the runs to try, with its test accuracy.

Real server, real browser (Debian's chromium through Playwright); the files are real `.keras`
archives saved by Keras.
"""
import copy

import pytest

from tests.e2e.conftest import screenshot
from tests.io.keras_files import assemble, function_object, parts, plain_keras_model, save

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
IDLE = ("() => !document.querySelector("
        "'[data-testid=\"stStatusWidget\"] [data-testid=\"stStatusWidgetRunningIcon\"]')")
UPLOADER = ".st-key-import_file input[type=file]"


def wait_for_app(page):
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE, timeout=120_000)


def import_file(page, path):
    page.locator(UPLOADER).set_input_files(str(path))
    page.locator(".st-key-import_file").get_by_text(path.name).wait_for(timeout=30_000)
    wait_for_app(page)
    page.locator(".st-key-import_go button").click()
    wait_for_app(page)


def test_import_a_keras_file_and_see_it_among_the_runs(app_server, page, tmp_path):
    url, _home = app_server
    good = save(plain_keras_model(), tmp_path / "teammate.keras")
    config, weights, _ = parts(good)
    hostile = copy.deepcopy(config)
    hostile["config"]["layers"][5]["config"]["activation"] = function_object("os", "system")
    hostile_path = assemble(tmp_path / "hostile.keras", hostile, weights)

    page.goto(f"{url}/test")
    page.get_by_role("heading", name="Test").wait_for(timeout=60_000)
    wait_for_app(page)
    if not page.locator(".st-key-import_dataset").is_visible():  # closed once the page has runs
        page.get_by_text("Import a .keras model").click()
    page.locator(UPLOADER).wait_for(state="attached", timeout=30_000)
    wait_for_app(page)
    mnist = page.get_by_role("option", name="MNIST", exact=True)
    for _attempt in range(4):  # a click while the expander still opens may not open the list
        page.locator(".st-key-import_dataset").click()
        try:
            mnist.wait_for(timeout=5_000)
            break
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError: open the list again
            page.keyboard.press("Escape")
    mnist.click()
    wait_for_app(page)
    page.locator(".st-key-import_name input").fill("e2e teammate")
    page.locator(".st-key-import_name input").press("Enter")
    wait_for_app(page)

    import_file(page, hostile_path)
    page.get_by_text("names 'os.system'").wait_for(timeout=60_000)
    screenshot(page, "import-refused")

    import_file(page, good)
    page.get_by_text("Imported e2e teammate as run").wait_for(timeout=120_000)
    wait_for_app(page)
    screenshot(page, "import-done", top=True)
    # The Model picker now offers it, with its test figures, as it offers any run.
    picker = page.get_by_role("combobox", name="Model")
    picker.wait_for(timeout=60_000)
    chosen = picker.input_value()
    assert chosen.startswith("e2e teammate · MNIST") and "test accuracy" in chosen
