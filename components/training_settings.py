"""Compile and fit settings: optimizer, learning rate (log scale), loss, epochs, batch size, ...

Each control carries the learner's question it answers (components.explain) as its help text.
The settings sit below the layers, far from Train, so Train shows them in one line
(`settings_summary`) with a link to `SETTINGS_ANCHOR`, the settings' heading.
"""
from __future__ import annotations

import streamlit as st

from components import state
from components.explain import WHY
from pipelines.errors import SpecError
from pipelines.modelspec.describe import rate_text
from pipelines.modelspec.spec import EPOCHS_MAX, LOSSES, OPTIMIZERS, PATIENCE_MAX, VALIDATION_SPLIT_MAX, ModelSpec
from pipelines.modelspec.validation import Validation

# A 1-2-5 grid from 1e-5 to 1: a log scale a slider can step along.
LEARNING_RATES = tuple(m * 10.0 ** e for e in range(-5, 0) for m in (1, 2, 5)) + (1.0,)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024)
SETTINGS_ANCHOR = "#training-settings"
LABEL_WORDS = {"sparse": "integer labels (0, 1, 2 ...) as they are",
               "one_hot": "labels turned into one-hot vectors", "binary": "0/1 labels"}


def _update(section: str, name: str, widget_key: str, convert=lambda v: v) -> None:
    if state.stale_build_widget(widget_key):
        return  # a setting of the model a preset, an undo or a fix replaced
    value = convert(state.widget_value(widget_key))
    try:
        new = state.spec().with_compile(**{name: value}) if section == "compile" else \
            state.spec().with_fit(**{name: value})
    except SpecError as exc:
        state.push_notice(str(exc))
        return
    state.set_spec(new)


def _changed(section: str, name: str, widget_key: str, convert=lambda v: v) -> dict:
    return {"key": widget_key, "on_change": _update, "args": (section, name, widget_key, convert)}


def _lr_label(value: float) -> str:
    return f"{value:.0e}".replace("e-0", "e-").replace("e+00", "")


def settings_summary(spec: ModelSpec) -> str:
    """The training settings in a line: "adam · lr 1e-3 · 5 epochs of 32 · 10% validation"."""
    fit = spec.fit
    epochs = "1 epoch" if fit.epochs == 1 else f"{fit.epochs} epochs"
    parts = [OPTIMIZERS[spec.compile.optimizer]["title"].lower(), f"lr {rate_text(spec.compile.learning_rate)}",
             f"{epochs} of {fit.batch_size}", f"{fit.validation_split:.0%} validation"]
    if fit.early_stopping_patience:
        parts.append(f"early stopping after {fit.early_stopping_patience}")
    return " · ".join(parts)


def settings_heading() -> None:
    """The heading Train's "change" link jumps to."""
    st.subheader("Training settings", anchor=SETTINGS_ANCHOR.lstrip("#"))


def loss_reason(result: Validation) -> str:
    """Why the labels and the loss fit, in a sentence, as shown under the loss picker."""
    labels = LABEL_WORDS[result.label_mode]
    if result.from_logits:
        head = (f"The last layer outputs raw scores ('{result.output_activation}'), so the loss applies "
                "softmax itself (from_logits=True).")
    else:
        head = f"The last layer ends in {result.output_activation}, so the loss reads probabilities (from_logits=False)."
    return f"{head} Training feeds {labels}."


def compile_settings(result: Validation) -> None:
    spec = state.spec()
    compile_spec = spec.compile
    keys = list(OPTIMIZERS)
    st.selectbox("Optimizer", keys, index=keys.index(compile_spec.optimizer),
                 format_func=lambda k: OPTIMIZERS[k]["title"], help=WHY["optimizer"],
                 **_changed("compile", "optimizer", state.build_key("optimizer")))
    rates = sorted(set(LEARNING_RATES) | {compile_spec.learning_rate})
    st.select_slider("Learning rate (log scale)", rates, value=compile_spec.learning_rate, format_func=_lr_label,
                     help=WHY["learning_rate"], **_changed("compile", "learning_rate", state.build_key("lr")))
    if "momentum" in OPTIMIZERS[compile_spec.optimizer]["params"]:
        st.number_input("Momentum", min_value=0.0, max_value=0.999, value=compile_spec.momentum, step=0.1,
                        help="Keeps part of the previous step, which smooths and speeds descent (0.9 is usual).",
                        **_changed("compile", "momentum", state.build_key("momentum")))
    if "nesterov" in OPTIMIZERS[compile_spec.optimizer]["params"]:
        st.checkbox("Nesterov momentum", value=compile_spec.nesterov,
                    help="Looks one step ahead before correcting: often a little faster than plain momentum.",
                    **_changed("compile", "nesterov", state.build_key("nesterov")))
    losses = list(LOSSES)
    st.selectbox("Loss", losses, index=losses.index(compile_spec.loss), format_func=lambda k: LOSSES[k]["title"],
                 help=WHY["loss"], **_changed("compile", "loss", state.build_key("loss")))
    st.caption(loss_reason(result))
    st.caption("Metric: accuracy. " + WHY["metrics"].split("? ", 1)[1])


def fit_settings() -> None:
    fit = state.spec().fit
    st.number_input("Epochs", min_value=1, max_value=EPOCHS_MAX, value=fit.epochs, step=1, help=WHY["epoch"],
                    **_changed("fit", "epochs", state.build_key("epochs"), int))
    sizes = sorted(set(BATCH_SIZES) | {fit.batch_size})
    st.select_slider("Batch size", sizes, value=fit.batch_size, help=WHY["batch_size"],
                     **_changed("fit", "batch_size", state.build_key("batch_size"), int))
    st.slider("Validation split", 0.0, VALIDATION_SPLIT_MAX, value=float(fit.validation_split), step=0.05,
              help=WHY["validation_split"],
              **_changed("fit", "validation_split", state.build_key("validation_split"), float))
    st.number_input("Early stopping patience (0 = off)", min_value=0, max_value=PATIENCE_MAX,
                    value=fit.early_stopping_patience or 0, step=1, help=WHY["early_stopping"],
                    **_changed("fit", "early_stopping_patience", state.build_key("patience"), lambda v: int(v) or None))
    st.checkbox("Keep the best epoch", value=fit.keep_best, help=WHY["keep_best"],
                **_changed("fit", "keep_best", state.build_key("keep_best")))


def learner_questions(*topics: str) -> None:
    """The tutorials' questions for this part of the screen, answered in a sentence or two."""
    with st.expander("Questions a learner asks here"):
        for topic in topics:
            question, _, answer = WHY[topic].partition("? ")
            if answer:
                st.markdown(f"**{question}?** {answer}")
            else:
                st.markdown(WHY[topic])
