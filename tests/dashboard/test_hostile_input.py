"""User text with Markdown in it (run names, layer names, dataset and file names, URL values, and
messages that echo them) is shown as written on every page, never as an image, a link, styled text
or HTML. Through Streamlit's AppTest on a temp store; the browser's view is tests/e2e/test_hostile_input.py."""
import dataclasses
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import resources, run_list
from components.text import plain
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.dashboard.rendered import HOSTILE, assert_shown_escaped, markdown_strings, shown

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def store(tmp_path, monkeypatch, shared_datasets):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers", lambda *a, **k: [])
    resources.store.clear()
    resources.scheduler.clear()
    with SQLiteRunStore(tmp_path / "home") as store:
        yield store
    resources.store.clear()
    resources.scheduler.clear()


def failed_run(store, name: str, dataset: str = "fashion_mnist", error: str = "failed"):
    run = store.create_run(name, dataset, get_preset("mlp-128x2").spec.to_dict(), total_epochs=3)
    assert store.claim_next_run(os.getpid(), 10).id == run.id
    return store.finish_run(run.id, RunStatus.FAILED, error=error)


def open_page(page: str, run_id: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(page)
    if run_id is not None:
        at.query_params["run"] = run_id
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("text", HOSTILE)
def test_run_name_dataset_and_error_are_shown_escaped_on_the_train_page(store, text):
    run = failed_run(store, text, dataset=f"data {text}", error=f"The worker said: {text}")
    at = open_page("views/train.py", run.id)
    assert at.subheader[0].value == plain(text)
    for shown_text in (text, f"data {text}", f"The worker said: {text}"):
        assert_shown_escaped(at, shown_text)
    assert list(at.dataframe[0].value["Name"]) == [text]  # a table cell is plain text already


@pytest.mark.parametrize("value", ["[x](http://127.0.0.1:9/)", "![x](http://127.0.0.1:9/t)", ":red[x]",
                                   "<img src=x>", "a" * 5000])
def test_a_url_value_that_is_no_run_id_is_never_echoed(store, value):
    failed_run(store, "a run")
    at = open_page("views/train.py", value)
    assert all(value not in shown(markdown) and value[:20] not in markdown for _, markdown in markdown_strings(at))
    assert [w.value for w in at.warning] == [run_list.MALFORMED_RUN_LINK]


@pytest.mark.parametrize("text", HOSTILE[1:] + ["dense :smile: www.x.org a@b.org"])
def test_layer_names_are_shown_escaped_on_their_cards_and_in_problems(store, text):
    spec = get_preset("mlp-128x2").spec
    layers = (dataclasses.replace(spec.layers[0], name=text), *spec.layers[1:])
    at = open_page("views/build.py", build_state_spec=dataclasses.replace(spec, layers=layers))
    assert_shown_escaped(at, text)


def test_a_layer_name_keras_refuses_is_echoed_escaped_in_its_problem(store):
    text = HOSTILE[0]  # a '/' is not allowed in a Keras layer name
    spec = get_preset("mlp-128x2").spec
    layers = (dataclasses.replace(spec.layers[0], name=text), *spec.layers[1:])
    at = open_page("views/build.py", build_state_spec=dataclasses.replace(spec, layers=layers))
    assert_shown_escaped(at, text)
    assert any(text in shown(e.value) for e in at.error)


@pytest.mark.parametrize("file_name", [f"{text}.json" for text in HOSTILE])
def test_a_spec_file_name_is_shown_escaped_in_its_refusal(store, file_name):
    at = open_page("views/build.py")
    at.file_uploader(key="build_load").set_value((file_name, b"{not json", "application/json")).run()
    assert not at.exception, at.exception
    assert_shown_escaped(at, file_name)
    assert any(shown(error.value).startswith(f"Could not load {file_name}: ") for error in at.error)
