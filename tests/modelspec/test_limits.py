"""Hostile specs: each is refused with one short message before anything large is parsed or allocated."""
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.errors import SpecError
from pipelines.modelspec.limits import SpecLimits, brief, load_spec_json, nesting_depth
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.spec import ModelSpec
from pipelines.modelspec.validation import MESSAGE_LINES, validate

REPO = Path(__file__).resolve().parents[2]
DENSE_65536 = {"type": "Dense", "params": {"units": 65536}}
HUGE_SPEC = {"layers": [{"type": "Flatten"}, DENSE_65536, DENSE_65536,
                        {"type": "Dense", "params": {"units": 10, "activation": "softmax"}}]}


def cli(*args: str, home: Path, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines", *args, "--home", str(home)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, preexec_fn=preexec,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


TF_LOG_PREFIXES = ("WARNING: All log messages before absl", "I0000 ", "W0000 ", "E0000 ")


def assert_one_short_message(result: subprocess.CompletedProcess, *expected: str) -> None:
    """Exit 1 and at most three lines of ours (TensorFlow's own start-up log lines aside)."""
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "File \"" not in result.stderr
    ours = [line for line in result.stderr.strip().splitlines() if not line.startswith(TF_LOG_PREFIXES)]
    assert len(ours) <= 3, result.stderr[:500]
    for text in expected:
        assert text in result.stderr


def test_deep_nesting_is_refused_without_recursion():
    text = '{"layers": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert nesting_depth(text) == 100_001
    with pytest.raises(SpecError, match=r"nests objects and lists 100,001 deep; the limit is 12"):
        ModelSpec.from_json(text)


def test_nesting_inside_strings_does_not_count():
    assert nesting_depth('{"name": "[[[[{{{{", "layers": []}') == 2
    assert nesting_depth('{"name": "a\\"[[[", "layers": [[]]}') == 3


def test_a_5001_digit_number_is_refused():
    text = '{"layers": [{"type": "Dense", "params": {"units": ' + "9" * 5001 + "}}]}"
    with pytest.raises(SpecError, match=r"a number of 5,001 characters .* the limit is 20"):
        ModelSpec.from_json(text)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_in_json(constant):
    text = '{"layers": [{"type": "LeakyReLU", "params": {"negative_slope": ' + constant + "}}]}"
    with pytest.raises(SpecError, match="finite number"):
        ModelSpec.from_json(text)


@pytest.mark.parametrize("layer, param", [("LeakyReLU", "negative_slope"), ("BatchNormalization", "momentum")])
def test_nan_params_are_problems_even_when_built_in_code(layer, param):
    spec = ModelSpec.from_dict({"layers": [{"type": "Flatten"}, {"type": layer, "params": {param: math.nan}},
                                           {"type": "Dense", "params": {"units": 10, "activation": "softmax"}}]})
    result = validate(spec, "mnist")
    assert not result.ok and f"Received: {param}=nan" in result.message()


def test_ten_thousand_layers_are_refused_by_size_or_by_count():
    layers = [{"type": "Dense", "name": f"dense_{i}", "params": {"units": 10}} for i in range(10_000)]
    text = json.dumps({"layers": layers})
    started = time.perf_counter()
    with pytest.raises(SpecError, match=r"bytes; the limit is 262,144"):
        ModelSpec.from_json(text)
    assert time.perf_counter() - started < 5
    with pytest.raises(SpecError, match=r"10,000 layers; the limit is 200"):
        ModelSpec.from_dict({"layers": layers})


def test_a_50_mb_spec_is_refused_before_parsing():
    text = '{"layers": [{"type": "Dense", "params": {' + ", ".join(f'"p{i}": 1' for i in range(2_500_000)) + "}}]}"
    started = time.perf_counter()
    with pytest.raises(SpecError) as caught:
        ModelSpec.from_json(text)
    assert time.perf_counter() - started < 5
    assert "the limit is 262,144" in str(caught.value) and len(str(caught.value)) < 200


def test_too_many_params_in_one_layer_are_one_message(monkeypatch):
    monkeypatch.setenv("LAYERLAB_MAX_SPEC_BYTES", str(50 * 2**20))
    params = {f"p{i}": 1 for i in range(1000)}
    with pytest.raises(SpecError, match=r"`params` holds 1,000 entries; the limit is 32"):
        ModelSpec.from_dict({"layers": [{"type": "Dense", "params": params}]})


def test_unknown_keys_in_a_layer_are_refused():
    with pytest.raises(SpecError, match=r"Layer 1 \(Dense\): unknown setting 'units'. Expected some of: name, params"):
        ModelSpec.from_dict({"layers": [{"type": "Dense", "units": 10}]})


def test_limits_are_settings(monkeypatch):
    monkeypatch.setenv("LAYERLAB_MAX_SPEC_LAYERS", "2")
    with pytest.raises(SpecError, match="3 layers; the limit is 2"):
        ModelSpec.from_dict({"layers": [{"type": "Flatten"}] * 3})
    monkeypatch.setenv("LAYERLAB_MAX_SPEC_LAYERS", "many")
    with pytest.raises(SpecError, match="LAYERLAB_MAX_SPEC_LAYERS must be a positive integer"):
        SpecLimits.from_env()


def test_echoes_are_short():
    assert brief(list(range(10**6))) == "<a list of 1,000,000 items>"
    assert len(brief("x" * 10**6)) == 80
    assert load_spec_json(b'{"a": 1}') == {"a": 1}


def test_parameter_cap_is_checked_without_allocating_the_weights():
    """4.3 billion parameters (17 GB of float32) are counted and refused; nothing is allocated, and
    nothing is left for Keras to initialise later, Dropout's seed generator included."""
    validate(get_preset("cifar-cnn").spec, "cifar10")  # has Dropout: its seed generator's state too
    result = validate(ModelSpec.from_dict(HUGE_SPEC), "mnist")
    assert result.total_params == 4_347_133_962
    assert "over the cap of 50,000,000" in result.message()
    from keras.src.backend.common import global_state
    assert not global_state.get_global_attribute("uninitialized_variables")  # nothing left to leak


def test_validation_message_is_bounded():
    layers = [{"type": "Bogus", "name": f"b{i}"} for i in range(150)]
    message = validate(ModelSpec.from_dict({"layers": layers}), "mnist").message()
    assert len(message.splitlines()) == MESSAGE_LINES + 1 and "and 130 more problems" in message


@pytest.mark.slow
def test_cli_validates_the_huge_spec_in_bounded_memory(tmp_path):
    """The spec that took `validate` past 6 GB: the child's peak RSS stays near TensorFlow's own."""
    spec_file = tmp_path / "huge.json"
    spec_file.write_text(json.dumps(HUGE_SPEC))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = cli("validate", "--spec", str(spec_file), "--dataset", "mnist", home=tmp_path / "home")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert_one_short_message(result, "over the cap of 50,000,000")
    assert peak_mb < 2000 or before / 1024 >= 2000, f"peak RSS {peak_mb:.0f} MB"


@pytest.mark.parametrize("make_text, expected", [
    (lambda: '{"layers": ' + "[" * 100_000 + "]" * 100_000 + "}", "deep"),
    (lambda: '{"layers": [{"type": "Dense", "params": {"units": ' + "9" * 5001 + "}}]}", "characters"),
])
def test_cli_refuses_hostile_spec_files_in_one_line(tmp_path, make_text, expected):
    spec_file = tmp_path / "hostile.json"
    spec_file.write_text(make_text())
    assert_one_short_message(cli("validate", "--spec", str(spec_file), home=tmp_path / "home"), expected)
