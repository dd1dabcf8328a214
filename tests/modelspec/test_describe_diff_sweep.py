"""Telling specs apart: the one-line description, the diff between two specs, and sweep expansion."""
import pytest

from pipelines.errors import SpecError
from pipelines.modelspec import edit
from pipelines.modelspec.describe import architecture, rate_text, run_title
from pipelines.modelspec.diff import differing_settings, layer_changes
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.sweep import TUTORIAL_SWEEPS, Axis, default_position, expand, parse_axis, sweepable_settings

LENET = get_preset("lenet").spec
MLP = get_preset("mlp-128x2").spec


def test_architecture_and_title():
    assert architecture(LENET) == "Conv6-Pool-Conv16-Pool-D120-D84-D10"
    assert architecture(MLP) == "D128-D128-D10"
    assert run_title(MLP) == "D128-D128-D10 · adam 1e-3"
    assert [rate_text(r) for r in (0.001, 3e-4, 0.01, 1.0)] == ["1e-3", "3e-4", "1e-2", "1e0"]


def test_layer_changes_name_added_removed_and_changed_params():
    wider = edit.set_param(MLP, 1, "units", 512)
    assert [c.text() for c in layer_changes(MLP, wider)] == ["layer 2 Dense: units 128 -> 512"]
    with_dropout, _ = edit.insert_layer(MLP, "Dropout", 2)
    changes = layer_changes(MLP, with_dropout)
    assert [(c.kind, c.index, c.layer_type) for c in changes] == [("added", 3, "Dropout")]
    assert [c.text() for c in layer_changes(with_dropout, MLP)] == ["layer 3 Dropout removed"]
    assert layer_changes(MLP, MLP) == []


def test_only_differing_settings_are_listed():
    faster = MLP.with_compile(learning_rate=0.01)
    assert differing_settings([MLP, faster, MLP]) == {"learning_rate": [0.001, 0.01, 0.001]}
    assert differing_settings([MLP, MLP]) == {}


def test_expand_one_to_three_settings_with_seeds():
    runs = expand(MLP, [Axis("lr", (1e-4, 1e-3)), Axis("units@2", (64, 128)), Axis("seed", (0, 1))])
    assert len(runs) == 8
    settings, spec = runs[-1]
    assert settings == {"lr": 1e-3, "units@2": 128, "seed": 1}
    assert (spec.compile.learning_rate, spec.layers[1].params["units"], spec.fit.seed) == (1e-3, 128, 1)


def test_bad_sweeps_are_refused_with_a_reason():
    with pytest.raises(SpecError, match="layer 1 must be a Dense"):
        expand(MLP, [Axis("units@1", (10,))])
    with pytest.raises(SpecError, match="Unknown sweep setting 'depth'"):
        expand(MLP, [Axis("depth", (1,))])
    with pytest.raises(SpecError, match="1 to 3 settings"):
        expand(MLP, [Axis(f"seed", (1,))] * 4)
    with pytest.raises(SpecError, match="learning_rate"):
        expand(MLP, [Axis("lr", (-1.0,))])
    with pytest.raises(SpecError, match="makes 121 runs; the limit is 100"):
        expand(MLP, [Axis("seed", tuple(range(11))), Axis("lr", tuple(1e-3 * (i + 1) for i in range(11)))])


def test_parse_axis_refuses_too_long_or_too_many_values_before_parsing():
    with pytest.raises(SpecError, match="2,000 are allowed"):
        parse_axis("lr=" + "1" * 5_000_000)
    with pytest.raises(SpecError, match="more than 100 values"):
        parse_axis("seed=" + ",".join(str(i) for i in range(101)))
    assert len(parse_axis("seed=" + ",".join(str(i) for i in range(100))).values) == 100


def test_parse_axis_and_tutorial_sweeps():
    assert parse_axis("lr=1e-4,1e-3,1e-2") == Axis("lr", (1e-4, 1e-3, 1e-2))
    assert parse_axis("optimizer=adam,sgd") == Axis("optimizer", ("adam", "sgd"))
    with pytest.raises(SpecError, match="SETTING=V1,V2"):
        parse_axis("lr")
    setting, values = TUTORIAL_SWEEPS["inner size"]
    position = default_position(MLP, setting)
    assert position == 2  # the first hidden Dense, never the output layer
    assert len(expand(MLP, [Axis(f"{setting}@{position}", values)])) == 3
    assert default_position(MLP, "rate") is None


def test_settings_offered_are_the_models_own():
    options = sweepable_settings(get_preset("mlp-128x2").spec)
    assert options[:5] == ["lr", "optimizer", "batch_size", "epochs", "seed"]
    assert "units@2" in options and "units@3" in options and "units@4" not in options  # not the output layer
