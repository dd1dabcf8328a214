"""The Build page's logic through Streamlit's AppTest: editing the stack, presets, problems, settings."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import resources
from tests.dashboard.rendered import shown

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


def layer_names(at) -> list[str]:
    """The names on the layer cards, in order (each card's head reads "**N · Type**", then its name)."""
    return [shown(m.value.split("  \n")[1]) for m in at.markdown if m.value.count("  \n") == 1 and " · " in m.value]


def button(at, key: str):
    return at.button(key=key)


def click(at, key: str):
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def test_starts_with_a_working_model_and_its_counts(app):
    assert layer_names(app) == ["flatten_1", "dense_1", "dense_2", "dense_3"]
    assert app.metric[0].value == "118,282"
    frame = app.dataframe[0].value
    assert list(frame["Output shape"]) == ["(None, 784)", "(None, 128)", "(None, 128)", "(None, 10)"]


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
    assert "(None, 32, 32, 32)" in app.dataframe[0].value["Output shape"].tolist()
    click(app, "build_preset_mlp-512")
    assert layer_names(app) == ["flatten_1", "dense_1", "dense_2"]
    assert app.metric[0].value == "407,050"


def test_dense_after_conv_shows_on_its_card_and_one_click_fixes_it(app):
    click(app, "build_clear")
    click(app, "build_add_Conv2D")
    click(app, "build_add_Dense")
    [problem] = [shown(e.value) for e in app.error]
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
    from components import model_builder

    said, loaded = [], []
    monkeypatch.setattr(model_builder.state, "widget_value", lambda key: FakeUpload(name, data))
    monkeypatch.setattr(model_builder.state, "push_notice", said.append)
    monkeypatch.setattr(model_builder.state, "set_spec", lambda *a, **k: loaded.append(a))
    model_builder._import_spec("build_load")
    assert loaded == []
    assert said[0].startswith(f"Could not load {name}: ") and expected in said[0]


def test_a_saved_spec_loads_back(monkeypatch, app):
    from components import model_builder

    spec = app.session_state["build_state_spec"]
    loaded = []
    monkeypatch.setattr(model_builder.state, "widget_value", lambda key: FakeUpload("m.json", spec.to_json().encode()))
    monkeypatch.setattr(model_builder.state, "push_notice", lambda text: None)
    monkeypatch.setattr(model_builder.state, "set_spec", lambda new, **k: loaded.append(new))
    model_builder._import_spec("build_load")
    assert loaded == [spec]
