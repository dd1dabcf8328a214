"""One local Ray cluster for every Ray test of the session (starting one takes seconds)."""
import logging

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    """A 2-CPU Ray cluster on this machine, joined by this process with Layerlab's code shipped to
    its workers; yields its address. Skips where Ray is not installed (requirements-ray.txt)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-ray.txt")
    from pipelines.execution.ray_backend import RUNTIME_ENV

    ray.init(num_cpus=2, include_dashboard=False, runtime_env=RUNTIME_ENV, namespace="layerlab",
             _node_ip_address="127.0.0.1", log_to_driver=False, logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
