"""House rules that keep the layers apart: no UI below pipelines/, no TensorFlow on a page's load path."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_pipelines_never_imports_streamlit():
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "pipelines").rglob("*.py")
                 if "streamlit" in imported_modules(p)]
    assert offenders == []


def test_importing_every_pipelines_module_loads_no_streamlit():
    modules = [f"pipelines.{p.stem}" for p in (REPO / "pipelines").glob("*.py") if p.stem != "__main__"]
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint('streamlit' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_light_modules_do_not_import_tensorflow():
    """Pages import these to draw themselves; `import tensorflow` alone costs seconds."""
    code = ("import sys\nimport pipelines.datasets, pipelines.layers, pipelines.spec, pipelines.presets, "
            "pipelines.run_store, pipelines.scheduler, pipelines.paths\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("view", ["views/data.py", "views/train.py", "views/test.py", "views/compare.py"])
def test_pages_that_build_no_model_do_not_import_tensorflow(view, tmp_path):
    """Only Build (which validates with Keras) and Test, once a model is picked, may load it."""
    code = ("import sys\nfrom streamlit.testing.v1 import AppTest\nfrom pipelines import scheduler\n"
            "scheduler.ensure_workers = lambda *a, **k: []\n"
            f"at = AppTest.from_file({str(REPO / 'dashboard' / 'app.py')!r}, default_timeout=60)\n"
            f"at.switch_page({view!r}).run()\n"
            "assert not at.exception, at.exception\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    env = {**os.environ, "LAYERLAB_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
