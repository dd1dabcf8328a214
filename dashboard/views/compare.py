"""Compare: every run in a table, and for the runs picked there (2 to 20), their curves overlaid,
a baseline, what differs, which setting mattered, run-to-run noise, and two runs prediction by
prediction. The selection lives in the URL (`/compare?runs=ID,ID`), so a comparison can be shared."""
import streamlit as st

from components import compare_view, export_view, import_view, resources, state, sweep_panel
from components.text import plain

st.title("Compare")
if notice := state.pop_notice():
    st.info(plain(notice, keep_code=True))
store = resources.store()
if sweep_id := state.compare_sweep():
    sweep_panel.compare_status(sweep_id)
import_view.import_panel(store)
table = compare_view.runs_table(store)
if table.empty:
    st.info("No runs yet. Train a model on the Build page, or start a sweep there, then compare here.")
    st.stop()
selected = compare_view.selectable_table(compare_view.filtered(table), table)
if selected:
    compare_view.manage(store, table, selected)
    export_view.compare_exports(store, selected)
if len(selected) < 2:
    st.caption("Select two or more runs in the table (up to 20) to compare them.")
    st.stop()

st.subheader(f"{len(selected)} runs")
curves_tab, differs_tab, settings_tab, predictions_tab = st.tabs(
    ["Curves", "Baseline and what differs", "Which setting mattered", "Two runs' predictions"])
points = compare_view.epoch_points(store, selected)
with curves_tab:
    metric = compare_view.curves(points, table, selected)
with differs_tab:
    compare_view.baseline_and_differences(store, table, selected)
with settings_tab:
    compare_view.settings_effects(points, table, selected, metric)
with predictions_tab:
    runs = {run_id: store.get_run(run_id) for run_id in selected}
    names = compare_view.shown_names(table, selected)
    left, right = st.columns(2)
    label = lambda run_id: f"{names[run_id]} ({run_id})"  # noqa: E731
    first = left.selectbox("Run A", selected, format_func=label, key=state.key("compare", "a"))
    second = right.selectbox("Run B", [i for i in selected if i != first], format_func=label,
                             key=state.key("compare", "b"))
    if runs[first].dataset != runs[second].dataset:
        st.info("These two runs trained on different datasets: pick two of the same dataset.")
    elif st.toggle("Compare their predictions on the test set (loads both models)", key=state.key("compare", "predict")):
        compare_view.predictions(store, runs[first], runs[second])
