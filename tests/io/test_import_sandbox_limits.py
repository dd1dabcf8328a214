"""The import sandbox's share of the server: a bounded number of checks at once (a further one
waits its turn a bounded time, then is refused as busy), and a child that sees only the
environment it needs."""
from __future__ import annotations

import os
import subprocess
import threading

import pytest

from pipelines.errors import ModelImportError
from pipelines.io import keras_import
from pipelines.io.keras_import import CONCURRENT_CHECKS, ImportLimits, child_env, import_model
from tests.io.keras_files import assemble, parts, plain_keras_model, save


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    return save(plain_keras_model(16), tmp_path_factory.mktemp("limits") / "good.keras")


def test_a_further_check_waits_then_is_refused_as_busy_and_the_slots_come_back(store, good_file, monkeypatch):
    started, release, calls = threading.Semaphore(0), threading.Event(), []

    def slow_check(source, out, dataset, limits, data_dir):
        calls.append(source)
        started.release()
        release.wait(120)
        raise ModelImportError("Refused: the fake check is done.")

    monkeypatch.setattr(keras_import, "_sandbox", slow_check)
    errors: list[Exception] = []

    def run_import():
        try:
            import_model(store, good_file, "mnist")
        except ModelImportError as error:
            errors.append(error)

    threads = [threading.Thread(target=run_import) for _ in range(CONCURRENT_CHECKS)]
    for thread in threads:
        thread.start()
    try:
        for _ in threads:
            assert started.acquire(timeout=60)  # every slot is taken
        with pytest.raises(ModelImportError, match=r"busy checking other .keras files .*try again"):
            import_model(store, good_file, "mnist", limits=ImportLimits(wait_seconds=1))
        assert len(calls) == CONCURRENT_CHECKS  # the busy one never started a check
    finally:
        release.set()
        for thread in threads:
            thread.join(60)
    assert [str(error) for error in errors] == ["Refused: the fake check is done."] * CONCURRENT_CHECKS
    with pytest.raises(ModelImportError, match="fake check"):  # the slots are free again
        import_model(store, good_file, "mnist", limits=ImportLimits(wait_seconds=1))
    assert store.list_runs() == [] and not list((store.home / "imports").iterdir())


def test_the_child_sees_only_what_it_needs_of_the_environment(store, good_file, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-the-child")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test")
    monkeypatch.setenv("LAYERLAB_MAX_PARAMETERS", "3000000")
    env = child_env("/data/here")
    assert "AWS_SECRET_ACCESS_KEY" not in env and "HTTPS_PROXY" not in env
    assert env["LAYERLAB_MAX_PARAMETERS"] == "3000000" and env["LAYERLAB_DATA_DIR"] == "/data/here"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(keras_import.REPO_ROOT) and env["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert set(env) <= {*keras_import.CHILD_ENV_KEYS, "PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL"} | {
        key for key in env if key.startswith("LAYERLAB_")}

    seen = []
    real_run = subprocess.run
    monkeypatch.setattr(keras_import.subprocess, "run", lambda *a, **k: seen.append(k["env"]) or real_run(*a, **k))
    _, weights, _ = parts(good_file)
    with pytest.raises(ModelImportError, match="not valid JSON"):  # a real child, refusing quickly
        import_model(store, assemble(tmp_path / "bad.keras", b"{", weights), "mnist")
    (given,) = seen
    assert "AWS_SECRET_ACCESS_KEY" not in given and given["LAYERLAB_MAX_PARAMETERS"] == "3000000"
