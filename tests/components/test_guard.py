"""components.guard: the last guard at each edge of the UI, and every fragment wearing it."""
import ast
import logging
from pathlib import Path

import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

from components import guard

REPO = Path(__file__).resolve().parents[2]
UI_FILES = sorted([*REPO.joinpath("components").rglob("*.py"), *REPO.joinpath("dashboard").rglob("*.py")])


def decorator_name(node: ast.expr) -> str:
    return ast.unparse(node.func if isinstance(node, ast.Call) else node)


def unguarded_fragments(path: Path) -> list[str]:
    """Functions decorated with st.fragment whose next decorator is not components.guard's `guard`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        names = [decorator_name(d) for d in node.decorator_list]
        if "st.fragment" in names:
            below = names[names.index("st.fragment") + 1:]
            if not below or below[0] != "guard":
                found.append(f"{path.name}:{node.lineno} {node.name}")
    return found


def test_every_fragment_wears_the_guard_right_under_st_fragment():
    assert [f for path in UI_FILES for f in unguarded_fragments(path)] == []


def test_the_fragment_check_sees_an_unguarded_fragment(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("import streamlit as st\n@st.fragment(run_every=1)\ndef tick():\n    pass\n"
                       "@guard('x')\n@st.fragment\ndef outside():\n    pass\n"
                       "@st.fragment\n@guard('x')\ndef fine():\n    pass\n")
    assert unguarded_fragments(planted) == ["planted.py:3 tick", "planted.py:7 outside"]


def test_control_flow_of_streamlit_passes_through_untouched():
    with pytest.raises(StopException):
        with guard.guarded("a page"):
            raise StopException()
    with pytest.raises(RerunException):
        with guard.guarded("a page"):
            raise RerunException(RerunData())


def test_an_unexpected_error_is_logged_with_its_traceback_and_shown_without_details(monkeypatch, caplog):
    shown = []
    monkeypatch.setattr(guard.st, "error", lambda text, **kwargs: shown.append(text))

    @guard.guard("the part")
    def part():
        raise RuntimeError("boom /secret/path")

    with caplog.at_level(logging.ERROR, logger="layerlab.dashboard"):
        assert part() is None
    (message,) = shown
    assert "the part" in message and "/secret" not in message and "boom" not in message
    (record,) = [r for r in caplog.records if r.name == "layerlab.dashboard"]
    assert record.exc_info[0] is RuntimeError and "boom /secret/path" in caplog.text
    assert "Traceback" in caplog.text
    incident = record.args[1]
    assert incident in message.replace("\\", "")
