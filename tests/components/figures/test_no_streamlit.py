"""components/figures/ holds pure figure builders: nothing there may import Streamlit, directly or
through another module, so they stay testable (and usable) without a Streamlit runtime."""
import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
FIGURES = REPO / "components" / "figures"
MODULES = sorted(FIGURES.glob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_the_package_has_its_modules():
    assert {p.stem for p in MODULES} >= {"__init__", "curves", "confusion", "stack", "probabilities",
                                         "activations", "class_balance"}


def test_no_figure_module_imports_streamlit_or_a_ui_module():
    offenders = {p.name: sorted(n for n in imported(p) if n.split(".")[0] in ("streamlit", "dashboard")
                                or (n.startswith("components.") and not n.startswith("components.figures")))
                 for p in MODULES}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_importing_every_figure_module_loads_no_streamlit():
    names = [f"components.figures.{p.stem}" for p in MODULES if p.stem != "__init__"]
    code = f"import importlib, sys\nfor m in {names!r}: importlib.import_module(m)\nprint('streamlit' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
