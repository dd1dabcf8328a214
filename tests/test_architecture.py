"""House rules that keep pipelines/ layered: written as data, checked by pure functions of a repo root.

Each check returns readable violations. It runs on this repo (expecting none) and on a planted tree
(expecting each planted offence), so a rule that silently stopped matching anything would be noticed.
"""
import ast
import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Files directly in pipelines/ -> layer. 0 is the base; the entry point sits above everything.
BASE_MODULES = {"__init__": 0, "errors": 0, "paths": 0, "__main__": 7}
# Subpackages of pipelines/ -> layer. A module imports its own layer or lower ones, never a higher one.
LAYERS = {"data": 1, "modelspec": 2, "runs": 3, "inference": 4, "io": 4, "execution": 5, "cli": 6}
# Only these files may import HEAVY_PACKAGES at module top level; `import tensorflow` alone costs seconds.
HEAVY = {"pipelines/data/inputs.py", "pipelines/modelspec/keras_build.py", "pipelines/inference/predict.py",
         "pipelines/inference/evaluate.py", "pipelines/execution/training.py", "pipelines/execution/callbacks.py",
         "pipelines/execution/feature_cache.py",
         "pipelines/modelspec/keras_blocks.py", "pipelines/io/*"}
HEAVY_PACKAGES = {"tensorflow", "keras"}
# Never imported below pipelines/, at any depth, lazily or not: the core runs without the UI.
UI_PACKAGES = {"streamlit", "components", "dashboard"}


def core_files(root: Path) -> list[Path]:
    return sorted((root / "pipelines").rglob("*.py"))


def rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(root: Path, name: str) -> bool:
    base = root.joinpath(*name.split("."))
    return base.is_dir() or base.with_suffix(".py").is_file()


def file_layer(root: Path, path: Path) -> int | None:
    parts = path.relative_to(root / "pipelines").parts
    return BASE_MODULES.get(path.stem) if len(parts) == 1 else LAYERS.get(parts[0])


def layer_of(root: Path, name: str) -> int | None:
    """Layer of a dotted `pipelines...` name; a package directory wins over a same-named flat module."""
    parts = name.split(".")[1:] or ["__init__"]
    if len(parts) > 1 or (root / "pipelines" / parts[0]).is_dir():
        return LAYERS.get(parts[0])
    return BASE_MODULES.get(parts[0], None if is_module(root, name) else LAYERS.get(parts[0]))


def imports(root: Path, path: Path, top_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, module) for every module an import statement loads, relative ones resolved.

    `from a import b` yields `a.b` when b is a submodule, else `a`. With top_level_only, function bodies
    (lazy imports) and `if TYPE_CHECKING:` blocks are skipped: only what runs at import time counts.
    """
    own = module_name(root, path)
    package = own.split(".") if path.name == "__init__.py" else own.split(".")[:-1]
    found = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if top_level_only and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(ast.Module(body=child.orelse, type_ignores=[]))
                continue
            if isinstance(child, ast.Import):
                found.extend((child.lineno, alias.name) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package[:len(package) - child.level + 1]
                    base = ".".join(anchor + ([child.module] if child.module else []))
                subs = [f"{base}.{a.name}" for a in child.names if is_module(root, f"{base}.{a.name}")]
                found.extend((child.lineno, name) for name in subs or [base])
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def unplaced_files(root: Path) -> list[str]:
    """Rule 1: every file has a layer, so a new folder cannot slip past the import rules."""
    out = []
    for path in core_files(root):
        parts = path.relative_to(root / "pipelines").parts
        if len(parts) == 1 and path.stem not in BASE_MODULES:
            out.append(f"{rel(root, path)}: flat module outside the base layer; move it into a subpackage")
        elif len(parts) > 1 and parts[0] not in LAYERS:
            out.append(f"{rel(root, path)}: folder pipelines/{parts[0]}/ has no layer; add it to LAYERS")
    return out


def upward_imports(root: Path) -> list[str]:
    """Rule 2: imports point down or sideways, lazy ones too, so the layers can never form a cycle."""
    out = []
    for path in core_files(root):
        own = file_layer(root, path)
        if own is None:
            continue  # unplaced_files reports it
        for line, name in imports(root, path):
            if name.split(".")[0] != "pipelines":
                continue
            layer = layer_of(root, name)
            if layer is None or not is_module(root, name):
                why = "does not exist" if not is_module(root, name) else "has no layer"
                out.append(f"{rel(root, path)}:{line}: imports {name}, which {why}")
            elif layer > own:
                out.append(f"{rel(root, path)}:{line}: imports {name} (layer {layer}) from layer {own}")
    return out


def ui_imports(root: Path) -> list[str]:
    """Rule 3: the CLI and the workers run without Streamlit; the UI depends on the core, not back."""
    return [f"{rel(root, path)}:{line}: imports {name}; the core must not depend on the UI"
            for path in core_files(root) for line, name in imports(root, path)
            if name.split(".")[0] in UI_PACKAGES]


def is_heavy(root: Path, path: Path) -> bool:
    return any(fnmatch.fnmatch(rel(root, path), pattern) for pattern in HEAVY)


def light_modules_reaching_heavy(root: Path) -> list[str]:
    """Rule 4: pages import light modules to draw themselves, so none may load TensorFlow at import time,
    directly or through the top-level imports of other pipelines modules (parent packages included)."""
    files = {module_name(root, p): p for p in core_files(root)}
    edges = {name: [imp for _, imp in imports(root, path, top_level_only=True)] for name, path in files.items()}

    def loaded(name):  # importing a.b.c runs a, a.b, then a.b.c
        parts = name.split(".")
        return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]

    out = []
    for name, path in sorted(files.items()):
        if is_heavy(root, path) or path.stem == "__main__":
            continue
        parent = dict.fromkeys(loaded(name))
        queue = list(parent)
        while queue:
            current = queue.pop(0)
            if current.split(".")[0] in HEAVY_PACKAGES:
                chain = [current]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                out.append(f"{rel(root, path)}: reaches {' -> '.join(reversed(chain))} at import time")
                break
            for dep in (d for imp in edges.get(current, ()) for d in loaded(imp)):
                if dep not in parent:
                    parent[dep] = current
                    queue.append(dep)
    return out


CHECKS = [unplaced_files, upward_imports, ui_imports, light_modules_reaching_heavy]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_repo_keeps_the_rule(check):
    violations = check(REPO)
    assert not violations, "\n" + "\n".join(violations)


def test_each_rule_catches_what_it_should(tmp_path):
    """A rule that matches nothing proves nothing: plant one offence per rule, and some look-alikes that are fine."""
    planted = {
        "pipelines/__init__.py": "", "pipelines/errors.py": "", "pipelines/paths.py": "",
        "pipelines/__main__.py": "from pipelines.cli import main\n",
        "pipelines/data/__init__.py": "",
        "pipelines/data/bad.py": "from pipelines.execution import scheduler\n",
        "pipelines/data/lazy.py": "def f():\n    from ..cli import main\n",
        "pipelines/modelspec/__init__.py": "",
        "pipelines/modelspec/light.py": "import keras\n",
        "pipelines/modelspec/keras_build.py": "import tensorflow as tf\nfrom .. import errors\n",
        "pipelines/runs/__init__.py": "",
        "pipelines/runs/ui.py": "def draw():\n    import streamlit\n",
        "pipelines/runs/store.py": "from ..modelspec import light\n",
        "pipelines/inference/preprocess.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import keras\n"
                                              "def load():\n    import tensorflow\n"),
        "pipelines/io/images.py": "import keras\n",
        "pipelines/execution/scheduler.py": ("from pipelines import data, errors\nfrom pipelines.runs import ui\n"
                                             "from pipelines.run_store import Run\n"),
        "pipelines/cli/main.py": "from pipelines.execution import scheduler\nfrom pipelines.modelspec import keras_build\n",
        "pipelines/newpkg/x.py": "",
        "pipelines/datasets.py": "import dashboard.app\n",
    }
    for name, text in planted.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    assert unplaced_files(tmp_path) == [
        "pipelines/datasets.py: flat module outside the base layer; move it into a subpackage",
        "pipelines/newpkg/x.py: folder pipelines/newpkg/ has no layer; add it to LAYERS"]
    assert upward_imports(tmp_path) == [
        "pipelines/data/bad.py:1: imports pipelines.execution.scheduler (layer 5) from layer 1",
        "pipelines/data/lazy.py:2: imports pipelines.cli.main (layer 6) from layer 1",
        "pipelines/execution/scheduler.py:3: imports pipelines.run_store, which does not exist"]
    assert ui_imports(tmp_path) == [
        "pipelines/datasets.py:1: imports dashboard.app; the core must not depend on the UI",
        "pipelines/runs/ui.py:2: imports streamlit; the core must not depend on the UI"]
    assert light_modules_reaching_heavy(tmp_path) == [
        "pipelines/cli/main.py: reaches pipelines.cli.main -> pipelines.modelspec.keras_build -> tensorflow"
        " at import time",
        "pipelines/modelspec/light.py: reaches pipelines.modelspec.light -> keras at import time",
        "pipelines/runs/store.py: reaches pipelines.runs.store -> pipelines.modelspec.light -> keras at import time"]


def test_importing_every_light_module_loads_no_streamlit_and_no_tensorflow(tmp_path):
    """The static checks cannot see into third-party packages; a real import can."""
    modules = sorted({module_name(REPO, p) for p in core_files(REPO) if not is_heavy(REPO, p) and p.stem != "__main__"})
    code = ("import importlib, json, sys\nculprits, errors = {}, {}\n"
            f"for m in {modules!r}:\n"
            "    try:\n        importlib.import_module(m)\n"
            "    except Exception as e:\n        errors[m] = repr(e)\n"
            "    for w in ('streamlit', 'tensorflow', 'keras'):\n"
            "        if w in sys.modules and w not in culprits:\n            culprits[w] = m\n"
            "print(json.dumps({'loaded by': culprits, 'failed': errors}))")
    env = {**os.environ, "LAYERLAB_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"loaded by": {}, "failed": {}}, json.dumps(outcome, indent=1)


# Stub out worker start-up wherever the scheduler lives (flat module, or execution/ with a Scheduler class).
_STUB_WORKERS = """
import importlib
stubbed = []
for name in ("pipelines.execution.scheduler", "pipelines.scheduler"):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:  # "no scheduler here" is fine; a scheduler with a broken import is not
        if not f"{name}.".startswith(f"{e.name}."):
            raise
        continue
    for owner in (module, getattr(module, "Scheduler", None)):
        if hasattr(owner, "ensure_workers"):
            owner.ensure_workers = lambda *a, **k: []
            stubbed.append(owner)
assert stubbed, "found no ensure_workers to stub"
"""


@pytest.mark.parametrize("view", ["views/data.py", "views/train.py", "views/test.py", "views/compare.py"])
def test_pages_that_build_no_model_do_not_import_tensorflow(view, tmp_path):
    """Only Build (which validates with Keras) and Test, once a model is picked, may load it."""
    code = ("import sys\nfrom streamlit.testing.v1 import AppTest\n" + _STUB_WORKERS +
            f"at = AppTest.from_file({str(REPO / 'dashboard' / 'app.py')!r}, default_timeout=60)\n"
            f"at.switch_page({view!r}).run()\n"
            "assert not at.exception, at.exception\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    env = {**os.environ, "LAYERLAB_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
