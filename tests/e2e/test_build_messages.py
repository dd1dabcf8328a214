"""Build in a real browser: a pasted run name over the limit reaches the page, which says so beside
the field and keeps the text (Streamlit's own `max_chars` dropped such a paste without a word)."""
import pytest
from playwright.sync_api import expect

from pipelines.runs.drafts import MAX_RUN_NAME
from tests.e2e.test_build_layout import open_build
from tests.e2e.waiting import act_and_settle

pytestmark = [pytest.mark.e2e]


def test_a_pasted_run_name_over_the_limit_is_kept_and_said_so(app_server, page):
    url, _ = app_server
    open_build(page, url)
    field = page.get_by_role("textbox", name="Run name")
    long_name = "a clothing CNN " * 20  # 300 characters, as pasted from elsewhere
    field.fill(long_name)
    act_and_settle(page, lambda: field.press("Control+Enter"))  # a text area sends its value on Ctrl+Enter
    said = page.get_by_text(f"Run names can be at most {MAX_RUN_NAME} characters; this one has 299.")
    said.wait_for()
    assert field.input_value() == long_name
    expect(page.get_by_role("button", name="Train this model")).to_be_disabled()
    field.fill("my clothing CNN")
    act_and_settle(page, lambda: field.press("Control+Enter"))
    said.wait_for(state="detached")
    expect(page.get_by_role("button", name="Train this model")).to_be_enabled()
