"""`python -m pipelines import`: the new run's id on stdout, or one error line, exit 1, nothing stored."""
import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.io.keras_files import assemble, parts, plain_keras_model, save

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, home: Path, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines", *args, "--home", str(home), "--data-dir", str(data)],
                          cwd=REPO, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_import_prints_the_run_id_and_refuses_a_hostile_file_with_one_line(tmp_path, shared_datasets):
    home = tmp_path / "home"
    good = save(plain_keras_model(), tmp_path / "teammate.keras")
    done = cli("import", str(good), "--dataset", "mnist", "--name", "Teammate", home=home, data=shared_datasets)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    shown = json.loads(cli("show", run_id, "--json", home=home, data=shared_datasets).stdout)
    assert shown["status"] == "COMPLETED" and shown["name"] == "Teammate"
    assert shown["metrics"]["test_accuracy"] is not None

    config, weights, _ = parts(good)
    config["config"]["layers"][1]["config"]["name"] = "../../x"
    hostile = assemble(tmp_path / "hostile.keras", config, weights)
    refused = cli("import", str(hostile), "--dataset", "mnist", home=home, data=shared_datasets)
    assert refused.returncode == 1 and refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Refused:") and "plain identifier" in lines[0]
    with SQLiteRunStore(home) as store:
        assert [run.id for run in store.list_runs()] == [run_id]
