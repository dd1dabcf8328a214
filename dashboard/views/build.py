"""Build: stack layers by clicking, see every layer's shape and parameter count, then train.

What is built is a draft kept on disk and named in the URL (`?draft=ID`), so a refresh, a new tab
or a server restart brings it back with its undo history.
"""
import streamlit as st

from components import model_builder, resources, run_handoff, run_list, state, sweep_panel
from components.figures.stack import stack_diagram
from components.layer_editor import insertion_marker, layer_card, palette, problem_row
from components.model_summary import styled, summary_frame
from components.text import plain
from components.training_settings import compile_settings, fit_settings, learner_questions, settings_heading
from pipelines.data.catalog import CATALOG

st.title("Build")
run_handoff.open_handed_run(resources.store())  # "Edit in Build" and the doctor's fixes, linked from Train
state.keep_draft_in_url()
if notice := state.pop_notice():
    st.warning(plain(notice, keep_code=True))

model_builder.toolbar()
spec = state.spec()
dataset = state.dataset()
result = model_builder.validation(spec, dataset)
model_builder.train_panel(spec, result)
sweep_panel.build_panel(spec, dataset, model_builder.blocking_reason(dataset, result), state.run_name())

# Side by side where both fit, else the summary under the stack: at 1024 px a 2:3 split left it 210 px.
stack, summary = (grid := st.grid(2, min_column_width=300, gap="medium")).cell(), grid.cell()
with stack:
    st.subheader("Layers")
    st.caption(f"Input: {model_builder.input_text(result)} from {CATALOG[dataset].title}. "
               "Images are scaled to 0-1 float32 on the way in.")
    if not spec.layers:
        st.info("No layers yet: add some below, or load a tutorial model above.")
    insert_after = state.selected_layer()
    for index, layer in enumerate(spec.layers):
        row = result.rows[index] if index < len(result.rows) else None
        layer_card(index, layer, row, result.problems_for(index), len(spec.layers))
        if index == insert_after or (insert_after is None and index == len(spec.layers) - 1):
            insertion_marker()
    palette()
    learner_questions("dense", "activation", "two_layers", "reshape")

with summary:
    st.subheader("Model")
    st.metric("Parameters", f"{result.total_params:,}", help="All weights; trainable ones are learned by the optimizer.")
    st.caption(f"Trainable: {result.trainable_params:,} · non-trainable: "
               f"{result.total_params - result.trainable_params:,}")
    st.table(styled(summary_frame(result)), hide_index=True)
    st.plotly_chart(stack_diagram(result), key=state.key("build", "diagram"), config={"displayModeBar": False})

settings_heading()
compile_col, fit_col = st.columns(2, gap="large")
with compile_col:
    compile_settings(result)
    for i, problem in enumerate(result.problems_for(None)):
        if problem.param == "loss":
            problem_row(problem, state.build_key("fix", "loss", i))
    learner_questions("optimizer", "learning_rate", "loss", "metrics")
with fit_col:
    fit_settings(dataset)
    learner_questions("epoch", "batch_size", "validation_split", "scaling", "dtype")

run_list.keep_workers_on_a_timer()
