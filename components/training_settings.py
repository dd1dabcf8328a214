"""Compile and fit settings: optimizer, learning rate (log scale), loss, epochs, batch size, ...

Each control carries the learner's question it answers (components.explain) as its help text.
The settings sit below the layers, far from Train, so Train shows them in one line
(`settings_summary`) with a link to `SETTINGS_ANCHOR`, the settings' heading.
"""
from __future__ import annotations

import streamlit as st

from components import state
from components.explain import WHY
from components.text import plain
from components.user_words import user_words
from pipelines.data import added
from pipelines.errors import DatasetError, SpecError
from pipelines.modelspec.describe import rate_text
from pipelines.modelspec.spec import EPOCHS_MAX, LOSSES, OPTIMIZERS, PATIENCE_MAX, VALIDATION_SPLIT_MAX, ModelSpec
from pipelines.modelspec.validation import Validation

# A 1-2-5 grid from 1e-5 to 1: a log scale a slider can step along.
LEARNING_RATES = tuple(m * 10.0 ** e for e in range(-5, 0) for m in (1, 2, 5)) + (1.0,)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024)
SETTINGS_ANCHOR = "#training-settings"
LABEL_WORDS = {"sparse": "integer labels (0, 1, 2 ...) as they are",
               "one_hot": "labels turned into one-hot vectors", "binary": "0/1 labels"}
OWN_VALIDATION = "validates on the dataset's validation/ folder"


def _changed_spec(section: str, name: str, value) -> ModelSpec:
    spec = state.spec()
    return spec.with_compile(**{name: value}) if section == "compile" else spec.with_fit(**{name: value})


def _update(section: str, name: str, widget_key: str, convert=lambda v: v) -> None:
    if state.stale_build_widget(widget_key):
        return  # a setting of the model a preset, an undo or a fix replaced
    try:
        new = _changed_spec(section, name, convert(state.widget_value(widget_key)))
    except SpecError as exc:  # the controls' own bounds and options keep to the spec's, so rarely seen
        state.push_notice(user_words(exc))
        return
    state.set_spec(new)


def _changed(section: str, name: str, widget_key: str, convert=lambda v: v) -> dict:
    return {"key": widget_key, "on_change": _update, "args": (section, name, widget_key, convert)}


def own_validation(dataset: str) -> bool:
    """Whether the dataset brings its own validation split (an added folder's validation/), which
    then validates instead of a share of the training images."""
    if dataset not in added.added_infos():
        return False
    try:
        return sum(added.read_manifest(dataset).get("counts", {}).get("validation", ())) > 0
    except (DatasetError, TypeError):
        return False


def _lr_label(value: float) -> str:
    return f"{value:.0e}".replace("e-0", "e-").replace("e+00", "")


def settings_summary(spec: ModelSpec, dataset: str) -> str:
    """The training settings in a line: "adam · lr 1e-3 · 5 epochs of 32 · 10% validation" (or "validates
    on the dataset's validation/ folder", which then replaces the split)."""
    fit = spec.fit
    epochs = "1 epoch" if fit.epochs == 1 else f"{fit.epochs} epochs"
    validation = OWN_VALIDATION if own_validation(dataset) else f"{fit.validation_split:.0%} validation"
    parts = [OPTIMIZERS[spec.compile.optimizer]["title"].lower(), f"lr {rate_text(spec.compile.learning_rate)}",
             f"{epochs} of {fit.batch_size}", validation]
    if fit.early_stopping_patience:
        parts.append(f"early stopping after {fit.early_stopping_patience}")
    return " · ".join(parts)


def settings_heading() -> None:
    """The heading Train's "change" link jumps to."""
    st.subheader("Training settings", anchor=SETTINGS_ANCHOR.lstrip("#"))


def loss_reason(result: Validation, loss: str) -> str:
    """What the loss makes of the last layer's outputs, and the labels it is fed, as shown under
    the loss picker. Only softmax and sigmoid give probabilities; a linear layer gives raw scores
    (logits), which the loss squashes itself; any other activation gives neither."""
    activation, labels = result.output_activation, LABEL_WORDS[result.label_mode]
    squash = "a sigmoid" if loss == "binary_crossentropy" else "softmax"
    if loss == "mse":
        head = (f"Mean squared error compares the last layer's outputs ({activation}) with the labels as they "
                "are: it reads neither probabilities nor raw scores.")
    elif not result.from_logits:
        head = (f"The last layer's {activation} turns its outputs into probabilities, so the loss reads them as "
                "they are (from_logits=False).")
    elif activation == "linear":
        head = (f"The last layer is linear, so its outputs are raw scores (logits): the loss applies {squash} to "
                "them itself (from_logits=True).")
    else:
        head = (f"The last layer's activation is {activation}, so its outputs are not probabilities: the loss "
                f"takes them as raw scores and applies {squash} itself (from_logits=True), but {activation} "
                "bends those scores. A classifier's last layer is usually softmax, or linear for raw scores.")
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
    st.caption(loss_reason(result, compile_spec.loss))
    st.caption("Metric: accuracy. " + WHY["metrics"].split("? ", 1)[1])


def _patience(value) -> int | None:
    return int(value) or None


def fit_settings(dataset: str) -> None:
    fit = state.spec().fit
    st.number_input("Epochs", min_value=1, max_value=EPOCHS_MAX, value=fit.epochs, step=1, help=WHY["epoch"],
                    **_changed("fit", "epochs", state.build_key("epochs"), int))
    sizes = sorted(set(BATCH_SIZES) | {fit.batch_size})
    st.select_slider("Batch size", sizes, value=fit.batch_size, help=WHY["batch_size"],
                     **_changed("fit", "batch_size", state.build_key("batch_size"), int))
    own = own_validation(dataset)
    st.slider("Validation split", 0.0, VALIDATION_SPLIT_MAX, value=float(fit.validation_split), step=0.05,
              help=WHY["validation_split"], disabled=own,
              **_changed("fit", "validation_split", state.build_key("validation_split"), float))
    if own:
        st.caption(f"Not used: {plain(dataset)} has a validation/ folder of its own, which validates instead; "
                   "all its training images train.")
    st.number_input("Early stopping patience (0 = off)", min_value=0, max_value=PATIENCE_MAX,
                    value=fit.early_stopping_patience or 0, step=1, help=WHY["early_stopping"],
                    **_changed("fit", "early_stopping_patience", state.build_key("patience"), _patience))
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
