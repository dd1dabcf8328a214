"""A run's model handed to Build by a link: "Edit in Build" and the doctor's one-click fixes.

The Train page draws its run in a fragment that refreshes on a timer. A button there that switched
pages would ask for an app rerun from inside that fragment, and an app rerun racing a fragment's
redraw is what leaves Streamlit's front end with a stale element tree and a blank page. So Train
shows links (`/build?from_run=ID&fix=K`), and Build, on its own page run, opens what they name.
"""
from __future__ import annotations

from components import live_chart, state
from pipelines.errors import LayerlabError, SpecError
from pipelines.runs.doctor import apply_remedy
from pipelines.runs.store import RunStore


def open_handed_run(store: RunStore) -> None:
    """Put the run a link names (with its fix made) on Build, with a notice saying what happened;
    a link that names no run, or a fix the run no longer has, says so instead."""
    request = state.take_build_handoff()
    if request is None:
        return
    run_id, fix = request
    try:
        if run_id is None:
            raise LayerlabError("This link's `from_run` value is not a run id (10 lowercase hexadecimal characters).")
        run = store.get_run(run_id)
        spec = run.model_spec
    except (LayerlabError, SpecError) as exc:
        state.push_notice(f"Could not open that run in Build: {exc}")
        return
    if fix is None:
        _open(spec, run.dataset, f"Run {run.name} ({run.id}) is open in Build with its exact "
                                               "settings: change what you like and train it as a new run.")
        return
    findings = live_chart.curves(store, run).findings
    finding = findings[fix] if fix < len(findings) else None
    if finding is None or finding.remedy is None:
        state.push_notice(f"Run {run.name} ({run.id}) has no such fix any more; Build shows your draft as it was.")
        return
    try:
        fixed = apply_remedy(spec, finding.remedy)
    except SpecError as exc:
        state.push_notice(f"Could not make that fix: {exc}")
        return
    _open(fixed, run.dataset, f"{finding.remedy.label}: run {run.name} ({run.id}) {finding.verdict}, "
                                            "and this is its model with that change. Train it as a new run to compare.")


def _open(spec, dataset: str, notice: str) -> None:
    try:
        state.open_in_build(spec, dataset, notice)
    except ValueError:  # a dataset Build cannot pick (removed since, say)
        state.push_notice(f"Could not open that run in Build: its dataset '{dataset}' is not one Build offers.")
