"""The worker registry: a database of its own beside the run store, shared by every process."""
import time

import pytest

from pipelines.errors import LayerlabError
from pipelines.execution.registry import WorkerInfo, WorkerRegistry
from pipelines.runs.sqlite_store import SQLiteRunStore


@pytest.fixture
def registry(tmp_path):
    registry = WorkerRegistry(tmp_path)
    yield registry
    registry.close()


def test_worker_registry(registry, tmp_path):
    run = SQLiteRunStore(tmp_path).create_run("r", "mnist", {})
    info = registry.register(4242)
    assert isinstance(info, WorkerInfo)
    assert (info.pid, info.state, info.run_id) == (4242, "starting", None)
    registry.register(4343, state="idle")
    registry.set_state(4242, "busy", run_id=run.id)
    time.sleep(0.01)
    assert registry.heartbeat(4343)
    workers = {w.pid: w for w in registry.list()}
    assert (workers[4242].state, workers[4242].run_id) == ("busy", run.id)
    assert workers[4343].heartbeat_at > workers[4343].started_at
    registry.set_state(4242, "idle")
    assert registry.list()[0].run_id is None
    with pytest.raises(LayerlabError, match="Received: state='sleeping'"):
        registry.set_state(4242, "sleeping")
    assert not registry.heartbeat(9999)
    registry.remove(4242)
    registry.remove(4242)
    assert [w.pid for w in registry.list()] == [4343]
    registry.set_state(4242, "idle")  # a worker the pool forgot registers itself again
    assert {w.pid: w.state for w in registry.list()} == {4242: "idle", 4343: "idle"}
    registry.remove(4242)
    assert registry.register(4343, "starting").state == "starting"
    assert len(registry.list()) == 1


def test_a_reopened_registry_sees_the_same_workers(tmp_path):
    WorkerRegistry(tmp_path).register(7)
    assert [w.pid for w in WorkerRegistry(tmp_path).list()] == [7]
    assert (tmp_path / "workers.db").exists()
