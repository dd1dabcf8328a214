"""The export panel on the Train and Compare pages, through Streamlit's AppTest, on a run whose
files are real: the script, the parity check, and the downloads."""
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from pipelines.io.export import CHECKED_TEXT, EXPORT_RECORD_FILE
from pipelines.modelspec.presets import get_preset
from pipelines.runs import artifacts
from pipelines.runs.entities import RunStatus
from tests.dashboard.test_train_page import store  # noqa: F401  (the fixture: a temp store, no workers)

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")


def finished(store, name):
    spec = get_preset("mlp-128x2").spec.with_fit(epochs=1)
    run = store.create_run(name, "mnist", spec.to_dict(), total_epochs=1)
    run_dir = store.ensure_run_dir(run.id)
    (run_dir / artifacts.SPEC_FILE).write_text(spec.to_json())
    (run_dir / artifacts.HISTORY_FILE).write_text("epoch,loss\n1,0.5\n")
    (run_dir / "tensorboard").mkdir()
    return store.finish_run(run.id, RunStatus.COMPLETED)


def open_page(view: str, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(view)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def badges(at) -> list[str]:
    """The texts of the green badges (st.badge is Markdown: `:green-badge[...]`)."""
    return [text for m in at.markdown for text in re.findall(r":green-badge\[(?::material/\w+: )?([^\]]*)\]", m.value)]


def test_train_page_offers_the_script_spec_and_zip_and_checks_the_script(store):
    """The Train page needs no model: it offers the check rather than load TensorFlow to draw."""
    run = finished(store, "mlp <b>bold</b>")
    at = open_page("views/train.py", run=run.id)
    labels = [b.label for b in at.download_button]
    assert {"Download script (.py)", "Download spec (.json)", "Download all (.zip)"} <= set(labels)
    assert labels.count("Download history (.csv)") == 1  # the page's own button; the panel adds none
    assert any(f"tensorboard --logdir {store.run_dir(run.id) / 'tensorboard'}" in c.value for c in at.code)
    assert CHECKED_TEXT not in badges(at)
    next(b for b in at.button if b.key == "train_export_check").click().run()
    assert not at.exception, at.exception
    assert CHECKED_TEXT in badges(at)
    assert (store.run_dir(run.id) / EXPORT_RECORD_FILE).is_file()
    # Kept: the next visit shows the badge without a button, and without building anything.
    again = open_page("views/train.py", run=run.id)
    assert not [b for b in again.button if b.key == "train_export_check"]
    assert CHECKED_TEXT in badges(again)


def test_compare_checks_the_script_once_its_export_expander_is_opened(store):
    run = finished(store, "compared")
    at = open_page("views/compare.py", runs=run.id)
    assert CHECKED_TEXT not in badges(at)  # closed: nothing built on the page's load
    assert not (store.run_dir(run.id) / EXPORT_RECORD_FILE).exists()
    at.session_state["compare_export_open"] = True  # the user opens the expander
    at.run()
    assert not at.exception, at.exception
    assert CHECKED_TEXT in badges(at)
    assert not [b for b in at.button if b.key == "compare_export_check"]
    assert (store.run_dir(run.id) / EXPORT_RECORD_FILE).is_file()


def test_a_failed_check_is_shown_at_once_and_a_rerun_does_not_check_again(store, monkeypatch):
    from pipelines.io import export

    checks = []
    real_check = export.check_parity

    def counted(*args):
        checks.append(args)
        found = real_check(*args)  # a failing verdict is not kept in the run's folder: only the cache stops a redo
        return export.Parity(found.script_sha256, found.app_parameters, found.script_parameters + 1, ("made up",))

    monkeypatch.setattr(export, "check_parity", counted)
    run = finished(store, "failing")
    at = open_page("views/compare.py", runs=run.id)
    at.session_state["compare_export_open"] = True
    at.run()
    assert any("made up" in e.value and "parity check failed" in e.value for e in at.error), at.error
    at.run()
    assert not at.exception, at.exception
    assert len(checks) == 1
