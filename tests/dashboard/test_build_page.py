"""The Build page's logic through Streamlit's AppTest: editing the stack, presets, problems, settings,
the draft that outlives the session, the run name, and what keeps Train off."""
import dataclasses
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import resources, state
from pipelines.errors import DatasetError
from pipelines.modelspec.presets import get_preset
from tests.dashboard.rendered import markdown_strings, shown

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def app(tmp_path, monkeypatch, shared_datasets):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers", lambda *a, **k: [])
    resources.store.clear()
    resources.scheduler.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("views/build.py").run()
    assert not at.exception
    return at


CARD_HEAD = re.compile(r"\*\*\d+ · [^*]+\*\* · (.+)")


def layer_names(at) -> list[str]:
    """The names on the layer cards, in order (each card's head reads "**N · Type** · name", then its shape)."""
    heads = (CARD_HEAD.fullmatch(m.value.split("  \n")[0]) for m in at.markdown)
    return [shown(head.group(1)) for head in heads if head]


def button(at, key: str):
    return at.button(key=key)


def click(at, key: str):
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def test_starts_with_a_working_model_and_its_counts(app):
    assert layer_names(app) == ["flatten_1", "dense_1", "dense_2", "dense_3"]
    assert app.metric[0].value == "118,282"
    frame = app.table[0].value
    assert list(frame["Output"]) == ["784", "128", "128", "10"]
    assert list(frame["Params"]) == ["0", "100,480", "16,512", "1,290"]


def test_clear_then_build_mlp_by_clicks(app):
    click(app, "build_clear")
    assert layer_names(app) == []
    for layer_type in ("Flatten", "Dense", "Dense", "Dense"):
        click(app, f"build_add_{layer_type}")
    assert layer_names(app) == ["flatten_1", "dense_1", "dense_2", "dense_3"]
    # The last Dense still has 128 relu units: the card says what is wrong and offers a fix.
    assert any("the output has 128 units but fashion_mnist has 10 classes" in shown(e.value) for e in app.error)
    assert app.button(key="build_train").disabled
    units = [n for n in app.number_input if n.label == "units"][-1]
    units.set_value(10).run()
    activation = [s for s in app.selectbox if s.label == "activation"][-1]
    activation.set_value("softmax").run()
    assert not app.error
    assert app.metric[0].value == "118,282"
    assert not app.button(key="build_train").disabled


def test_add_goes_after_the_selected_layer(app):
    click(app, "build_sel_flatten_1")
    click(app, "build_add_Dropout")
    assert layer_names(app) == ["flatten_1", "dropout_1", "dense_1", "dense_2", "dense_3"]


def test_move_duplicate_delete_and_undo(app):
    click(app, "build_down_dense_1")
    assert layer_names(app) == ["flatten_1", "dense_2", "dense_1", "dense_3"]
    click(app, "build_up_dense_1")
    assert layer_names(app) == ["flatten_1", "dense_1", "dense_2", "dense_3"]
    click(app, "build_dup_dense_2")
    assert layer_names(app) == ["flatten_1", "dense_1", "dense_2", "dense_4", "dense_3"]
    click(app, "build_del_dense_4")
    click(app, "build_del_dense_1")
    assert layer_names(app) == ["flatten_1", "dense_2", "dense_3"]
    click(app, "build_undo")
    assert layer_names(app) == ["flatten_1", "dense_1", "dense_2", "dense_3"]


def test_presets_load_with_one_click_and_switch_the_dataset(app):
    click(app, "build_preset_cifar-cnn")
    assert len(layer_names(app)) == 18
    assert "CIFAR-10" in shown(app.warning[0].value)
    assert app.selectbox(key="build_dataset_cifar10").value == "cifar10"
    assert "32×32×32" in app.table[0].value["Output"].tolist()
    click(app, "build_preset_mlp-512")
    assert layer_names(app) == ["flatten_1", "dense_1", "dense_2"]
    assert app.metric[0].value == "407,050"


def test_dense_after_conv_shows_on_its_card_and_one_click_fixes_it(app):
    click(app, "build_clear")
    click(app, "build_add_Conv2D")
    click(app, "build_add_Dense")
    [problem] = [shown(e.value) for e in app.error if "Train is off" not in e.value]
    assert "Layer 2 (Dense) gets a 3-D tensor (None, 26, 26, 32)" in problem and "insert Flatten" in problem
    fix = [b for b in app.button if b.label == "Insert Flatten"]
    fix[0].click().run()
    assert layer_names(app) == ["conv2d_1", "flatten_1", "dense_1"]
    assert not any("3-D tensor" in shown(e.value) for e in app.error)


def test_compile_options_change_the_spec(app):
    optimizer = [s for s in app.selectbox if s.label == "Optimizer"][0]
    optimizer.set_value("sgd").run()
    assert any(c.label == "Nesterov momentum" for c in app.checkbox)
    rate = [s for s in app.select_slider if s.label == "Learning rate (log scale)"][0]
    rate.set_value(0.01).run()
    loss = [s for s in app.selectbox if s.label == "Loss"][0]
    loss.set_value("categorical_crossentropy").run()
    assert any("labels turned into one-hot vectors" in c.value for c in app.caption)
    epochs = [n for n in app.number_input if n.label == "Epochs"][0]
    epochs.set_value(2).run()
    assert not app.exception
    saved = app.session_state["build_state_spec"]
    assert (saved.compile.optimizer, saved.compile.learning_rate, saved.compile.loss, saved.fit.epochs) == \
        ("sgd", 0.01, "categorical_crossentropy", 2)


def test_learner_questions_are_answered(app):
    texts = " ".join(m.value for m in app.markdown)
    for question in ("What does an activation do?", "Why dense layers?", "Are two layers enough?",
                     "What is the optimizer?", "What is the loss?", "What are the metrics?",
                     "Why scale inputs to 0-1?", "Why reshape images?", "Why convert the dtype?",
                     "What is an epoch?", "What is a batch?"):
        assert f"**{question}**" in texts, question



def session(query: dict[str, str] | None = None) -> AppTest:
    """Build in a new browser session, as after a refresh, in a new tab or after a server restart."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("views/build.py")
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    return at


def epochs_field(at):
    return [n for n in at.number_input if n.label == "Epochs"][0]


def test_the_draft_survives_a_refresh_with_its_undo_history_settings_and_dataset(app):
    click(app, "build_clear")
    click(app, "build_add_Flatten")
    click(app, "build_add_Dense")
    epochs_field(app).set_value(2).run()
    app.selectbox(key="build_dataset_fashion_mnist").set_value("mnist").run()
    draft = app.query_params["draft"]
    assert re.fullmatch(r"[0-9a-f]{12}", str(draft))

    again = session({"draft": draft})
    assert layer_names(again) == ["flatten_1", "dense_1"]
    assert epochs_field(again).value == 2
    assert again.selectbox(key="build_dataset_mnist").value == "mnist"
    click(again, "build_undo")  # the epochs
    assert epochs_field(again).value == 5
    click(again, "build_undo")  # the Dense
    assert layer_names(again) == ["flatten_1"]


def test_a_new_tab_resumes_the_newest_draft_under_an_id_of_its_own(app):
    click(app, "build_del_dense_3")
    first = app.query_params["draft"]
    tab = session()
    assert layer_names(tab) == ["flatten_1", "dense_1", "dense_2"]
    assert tab.query_params["draft"] != first
    click(tab, "build_del_dense_2")  # the first tab's draft is not overwritten by the second's
    assert layer_names(session({"draft": first})) == ["flatten_1", "dense_1", "dense_2"]


def test_a_spec_opened_in_build_from_another_page_is_kept_as_the_newest_draft_and_undoable(app):
    def another_page():
        from components import state
        from pipelines.modelspec.presets import get_preset

        state.open_in_build(get_preset("lenet").spec, "mnist", "Opened the run in Build.")

    AppTest.from_function(another_page, default_timeout=60).run()
    build = session()
    assert layer_names(build)[:2] == ["conv2d_1", "max_pooling2d_1"]
    assert build.selectbox(key="build_dataset_mnist").value == "mnist"
    click(build, "build_undo")
    assert layer_names(build) == ["flatten_1", "dense_1", "dense_2", "dense_3"]

@pytest.mark.parametrize("value", ["![x](http://127.0.0.1:9/t)", "../../runs", "a" * 300])
def test_a_draft_link_that_is_no_draft_id_is_never_echoed(app, value):
    at = session({"draft": value})
    assert [shown(w.value) for w in at.warning] == [state.MALFORMED_DRAFT_LINK]
    assert all(value[:12] not in markdown for _, markdown in markdown_strings(at))
    assert re.fullmatch(r"[0-9a-f]{12}", str(at.query_params["draft"]))
    assert layer_names(at) == ["flatten_1", "dense_1", "dense_2", "dense_3"]


def run_name_field(at):
    return [t for t in at.text_area if t.label == "Run name"][0]


def test_the_run_name_follows_the_model_until_the_user_types_one_and_names_the_run(app, monkeypatch):
    assert run_name_field(app).value == "D128-D128-D10 · adam 1e-3"
    [n for n in app.number_input if n.label == "units"][0].set_value(64).run()
    assert run_name_field(app).value == "D64-D128-D10 · adam 1e-3"
    run_name_field(app).set_value("my  baseline ").run()
    [n for n in app.number_input if n.label == "units"][1].set_value(32).run()
    assert run_name_field(app).value == "my baseline"
    assert run_name_field(session({"draft": app.query_params["draft"]})).value == "my baseline"

    opened = []
    monkeypatch.setattr("streamlit.switch_page", lambda page, **kw: opened.append((page, kw)))
    click(app, "build_train")
    [run] = resources.store().list_runs()
    assert run.name == "my baseline" and opened[0][0] == "views/train.py"
    app.run()
    assert run_name_field(app).value == "D64-D32-D10 · adam 1e-3"  # the next run gets a name of its own


def test_the_default_run_name_of_a_deep_model_fits_a_run_name():
    from components.model_builder import default_run_name
    from pipelines.runs.drafts import MAX_RUN_NAME

    spec = get_preset("mlp-128x2").spec
    deep = dataclasses.replace(spec, layers=spec.layers[:1] + tuple(
        dataclasses.replace(spec.layers[1], name=f"dense_{i}") for i in range(80)) + spec.layers[-1:])
    assert len(default_run_name(deep)) == MAX_RUN_NAME and default_run_name(deep).endswith("…")
    assert default_run_name(spec) == "D128-D128-D10 · adam 1e-3"


def test_a_dataset_not_on_this_machine_is_marked_and_keeps_train_off_saying_why(app, monkeypatch):
    monkeypatch.setattr("components.model_builder.locate", lambda name, *a: None if name == "cifar10" else "/here")
    app.run()
    picker = app.selectbox(key="build_dataset_fashion_mnist")
    assert "CIFAR-10 (not on this machine)" in picker.options and "MNIST" in picker.options
    assert {b.label for b in app.button} >= {"cifar-cnn (needs a download)", "mlp-512"}
    picker.set_value("cifar10").run()
    assert app.button(key="build_train").disabled
    [warning] = [shown(w.value) for w in app.warning]
    assert warning.startswith("**Train is off: CIFAR-10 is not on this machine.** Download it on the Data page")
    assert app.get("page_link")[0].proto.label == "Open the Data page"


def test_problems_that_keep_train_off_are_listed_beside_it(app):
    click(app, "build_clear")
    click(app, "build_add_Conv2D")
    click(app, "build_add_Dense")
    assert app.button(key="build_train").disabled
    [listed] = [shown(e.value) for e in app.error if "Train is off" in e.value]
    assert listed.startswith("**Train is off: fix 1 problem first.** Most have a one-click fix on their card.")
    assert "Layer 2 (Dense) gets a 3-D tensor" in listed


def test_the_training_settings_show_in_a_line_beside_train_with_a_link_to_them(app):
    line = "adam · lr 1e-3 · 5 epochs of 32 · 10% validation · [change](#training-settings)"
    assert any(line in m.value for m in app.markdown)
    epochs_field(app).set_value(1).run()
    assert any("adam · lr 1e-3 · 1 epoch of 32 · 10% validation" in m.value for m in app.markdown)
    assert any(h.proto.anchor == "training-settings" for h in app.subheader)


def test_the_palette_says_where_and_a_one_click_fix_leaves_the_insertion_point_in_place(app):
    click(app, "build_clear")
    click(app, "build_add_Conv2D")
    click(app, "build_add_Dense")
    assert any("adds at the end" in shown(m.value) for m in app.markdown)
    click(app, "build_sel_dense_1")
    assert any("adds after layer 2 (dense_1)" in shown(m.value) for m in app.markdown)
    [b for b in app.button if b.label == "Insert Flatten"][0].click().run()
    assert layer_names(app) == ["conv2d_1", "flatten_1", "dense_1"]
    assert any("adds after layer 3 (dense_1)" in shown(m.value) for m in app.markdown)
    assert any("go here, after layer 3 (dense_1)" in shown(c.value) for c in app.caption)
    click(app, "build_add_Dropout")
    assert layer_names(app) == ["conv2d_1", "flatten_1", "dense_1", "dropout_1"]
    click(app, "build_add_at_end")
    assert any("adds at the end" in shown(m.value) for m in app.markdown)


def test_every_button_on_build_has_words_for_a_screen_reader(app):
    click(app, "build_clear")
    click(app, "build_add_Conv2D")
    click(app, "build_add_Dense")
    assert all(re.search("[A-Za-z]{2}", b.label) for b in app.button), [b.label for b in app.button]


def test_a_refused_run_leads_with_what_to_do_and_keeps_the_detail_in_an_expander(app, monkeypatch):
    def refuse(*args, **kwargs):
        raise DatasetError("Could not load the Fashion-MNIST dataset (fashion_mnist).\nLooked in:\n  - /data/x")

    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.submit", refuse)
    click(app, "build_train")
    [error] = [shown(e.value) for e in app.error]
    assert error.startswith("Fashion-MNIST could not be loaded, so the run was not started. The Data page")
    [details] = [e for e in app.expander if e.label == "Details"]
    assert "Looked in:" in details.code[0].value


class FakeUpload:
    """What st.file_uploader hands over: a name and the bytes."""

    def __init__(self, name: str, data: bytes):
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


@pytest.mark.parametrize("name, data, expected", [
    ("broken.json", b"{not json", "is not valid JSON"),
    ("typo.json", b'{"layers": [{"type": "Dens"}]}', "unknown layer type 'Dens'. Expected one of: Activation"),
    ("twice.json", b'{"layers": [{"type": "Flatten", "name": "a"}, {"type": "Dense", "name": "a"}]}',
     "the layer name 'a' is used more than once"),
])
def test_loading_a_bad_spec_file_says_why_and_keeps_the_model(monkeypatch, name, data, expected):
    """The reason is shown under the uploader (tests/dashboard/test_build_messages.py), not as a notice."""
    from components import model_builder

    said, loaded = [], []
    monkeypatch.setattr(model_builder.state, "widget_value", lambda key: FakeUpload(name, data))
    monkeypatch.setattr(model_builder.state, "push_notice", said.append)
    monkeypatch.setattr(model_builder.state, "set_spec", lambda *a, **k: loaded.append(a))
    model_builder._import_spec("build_load")
    assert loaded == [] and said == []
    assert expected.lower() in model_builder._spec_problem(data).lower()


def test_a_saved_spec_loads_back(monkeypatch, app):
    from components import model_builder

    spec = app.session_state["build_state_spec"]
    loaded = []
    monkeypatch.setattr(model_builder.state, "widget_value", lambda key: FakeUpload("m.json", spec.to_json().encode()))
    monkeypatch.setattr(model_builder.state, "push_notice", lambda text: None)
    monkeypatch.setattr(model_builder.state, "set_spec", lambda new, **k: loaded.append(new))
    model_builder._import_spec("build_load")
    assert loaded == [spec]



def test_a_widget_of_a_replaced_model_changes_nothing(app):
    """A browser that sends a change before drawing a preset's model still holds the old cards,
    and Streamlit can fire their callbacks with the old values: they must not touch the new model."""
    def stale_callbacks():
        import streamlit as st

        from components import layer_editor, model_builder, state, training_settings
        from pipelines.modelspec.layers import LAYER_TYPES

        old_dataset_key = state.key("build", "dataset", state.dataset())  # fashion_mnist, mlp-128x2
        old_activation_key = state.build_key("param", "dense_2", "activation")
        old_epochs_key = state.build_key("epochs")
        model_builder._load_preset("mlp-512")  # MNIST; dense_2 is now the softmax output
        st.session_state[old_dataset_key] = "fashion_mnist"
        st.session_state[old_activation_key] = "relu"
        st.session_state[old_epochs_key] = 9
        model_builder._pick_dataset(old_dataset_key)
        layer_editor._set_param(2, LAYER_TYPES["Dense"].param("activation"), old_activation_key)
        training_settings._update("fit", "epochs", old_epochs_key, int)
        fresh_epochs_key = state.build_key("epochs")
        st.session_state[fresh_epochs_key] = 1
        training_settings._update("fit", "epochs", fresh_epochs_key, int)  # the current widget still works
        spec = state.spec()
        st.session_state["outcome"] = (state.dataset(), spec.layers[2].params["activation"], spec.fit.epochs)

    at = AppTest.from_function(stale_callbacks, default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.session_state["outcome"] == ("mnist", "softmax", 1)
