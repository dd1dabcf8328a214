"""Export of a real run: the .keras predicts as the app does in a fresh process, the zip holds every
file, and the CLI writes what it is asked for or says in one line why not."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pipelines.execution.tensorboard_logs import can_write_logs
from pipelines.io.export import CHECKED_TEXT, EXPORT_RECORD_FILE, bundle, parity_for, run_script, script_file_name

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

# Loads the exported model with nothing but Keras and NumPy, as a teammate would.
OUTSIDE = """
import sys
import keras
import numpy as np
with np.load(sys.argv[2], allow_pickle=False) as data:
    images = data["x_test"][:100]
model = keras.models.load_model(sys.argv[1])
outputs = model.predict(images.reshape(-1, 28, 28, 1).astype("float32") / 255.0, verbose=0)
np.save(sys.argv[3], outputs)
"""


def cli(home, command, *args):
    """`python -m pipelines COMMAND --home HOME ARGS...` from the repo, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pipelines", command, "--home", str(home), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_the_exported_keras_predicts_as_the_app_in_a_fresh_process(trained_run, shared_datasets, tmp_path):
    from pipelines.data.locate import load
    from pipelines.inference.predict import load_run_model, predict_proba

    store, run = trained_run
    result = cli(store.home, "export", run.id, "--keras", str(tmp_path / "out.keras"))
    assert result.returncode == 0, result.stderr
    npz = shared_datasets / "mnist-sample" / "mnist.npz"
    images = load("mnist", str(shared_datasets / "mnist-sample")).x_test[:100]  # as the app reads them
    app = predict_proba(load_run_model(store.run_dir(run.id), "mnist"), images)
    outside = subprocess.run([sys.executable, "-c", OUTSIDE, str(tmp_path / "out.keras"), str(npz),
                              str(tmp_path / "outputs.npy")], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, env={**os.environ, "PYTHONPATH": ""})
    assert outside.returncode == 0, outside.stderr[-2000:]
    theirs = np.load(tmp_path / "outputs.npy")
    assert theirs.shape == app.shape == (100, 10)
    assert np.abs(theirs - app).max() <= 1e-5
    assert (theirs.argmax(1) == app.argmax(1)).all()


def test_the_zip_holds_the_model_spec_history_script_and_the_parity_check(trained_run):
    import io

    store, run = trained_run
    run_dir = store.run_dir(run.id)
    script = run_script(run)
    parity = parity_for(run, run_dir, script)
    assert parity.ok and parity.text == CHECKED_TEXT
    assert json.loads((run_dir / EXPORT_RECORD_FILE).read_text())["script_sha256"] == parity.script_sha256
    with zipfile.ZipFile(io.BytesIO(bundle(run, run_dir, script, parity))) as archive:
        logs = sorted(name for name in archive.namelist() if name.startswith("tensorboard/"))
        assert sorted(set(archive.namelist()) - set(logs)) == sorted(["model.keras", "spec.json", "history.csv",
                                                                      "parity.json", script_file_name(run)])
        if can_write_logs():  # the run's event files, where `tensorboard --logdir tensorboard` finds them
            assert [name.split("/")[1] for name in logs] == ["train", "validation"]
        assert archive.read("model.keras") == (run_dir / "model.keras").read_bytes()
        assert json.loads(archive.read("spec.json")) == json.loads((run_dir / "spec.json").read_text())
        assert archive.read(script_file_name(run)).decode() == script
        assert json.loads(archive.read("parity.json"))["ok"] is True
    assert script_file_name(run) == f"train_digits_quoted_next_line_{run.id}.py"
    # No verdict given (a zip downloaded before any check): the zip checks, and holds parity.json all the same.
    (run_dir / EXPORT_RECORD_FILE).unlink()
    with zipfile.ZipFile(io.BytesIO(bundle(run, run_dir, script))) as archive:
        assert json.loads(archive.read("parity.json"))["text"] == CHECKED_TEXT


def test_the_cli_writes_each_file_and_the_verdict(trained_run, tmp_path):
    store, run = trained_run
    home = store.home
    out = {name: tmp_path / f"out.{name}" for name in ("py", "zip", "keras", "json", "csv")}
    result = cli(home, "export", run.id[:6], "--script", str(out["py"]), "--zip", str(out["zip"]),
                 "--keras", str(out["keras"]), "--spec", str(out["json"]), "--history", str(out["csv"]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == CHECKED_TEXT
    assert all(path.is_file() and path.stat().st_size for path in out.values())
    assert out["py"].read_text() == run_script(run)
    assert out["csv"].read_text() == (store.run_dir(run.id) / "history.csv").read_text()


@pytest.mark.parametrize("args, message", [
    ((), "Nothing to export: give at least one of --script"),
    (("--spec", "/no/such/folder/spec.json"), "Cannot write '/no/such/folder/spec.json'"),
])
def test_the_cli_refuses_in_one_line(trained_run, args, message):
    store, run = trained_run
    result = cli(store.home, "export", run.id, *args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message}"), result.stderr


def test_the_cli_says_when_a_run_has_no_model(trained_run, tmp_path):
    store, _ = trained_run
    queued = store.create_run("queued", "mnist", run_spec(), total_epochs=1)
    result = cli(store.home, "export", queued.id, "--keras", str(tmp_path / "x.keras"))
    assert result.returncode == 1 and "has no model.keras: it is queued" in result.stderr
    assert not (tmp_path / "x.keras").exists()


def run_spec():
    from pipelines.modelspec.presets import get_preset

    return get_preset("mlp-128x2").spec.to_dict()
