"""What the training doctor proposes to change after a run went wrong, and why in a sentence.

The learning rate to try depends on the optimizer: a tenth of a rate that diverged is often still
far too big (Adam diverges at 1 and learns nothing at 0.1 either), so a rate above the optimizer's
usual one goes straight back to it, and only a rate already there is divided by ten. The usual
rate is Keras' default for the adaptive optimizers (`OPTIMIZERS`); plain SGD moves by exactly
lr x gradient, so it wants about 0.1, and momentum makes its steps add up to lr / (1 - momentum).
A frozen base with random weights is a cause no learning rate fixes: the remedy is its weights.
Pure functions over a spec (no Keras, no UI), like the doctor that words them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.modelspec.spec import EPOCHS_MAX, OPTIMIZERS, CompileSpec, ModelSpec
from pipelines.modelspec.validation import random_features

SGD_STEP = 0.1  # plain SGD's usual learning rate: its effective step with momentum
FAR_BELOW = 10.0  # a rate under the usual one / FAR_BELOW barely moves the weights in a few epochs
LEARNING_GAIN = 0.05  # a loss this share under what the class shares alone give: learning, if slowly
RATE_RANGE = (1e-7, 10.0)  # what a spec accepts (CompileSpec)


@dataclass(frozen=True)
class Remedy:
    """A one-click change to the run's spec. `changes` are (setting, value) pairs: a compile or fit
    setting by name, or "<layer name>.<param>"; see `doctor.apply_remedy`."""

    label: str
    changes: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Advice:
    """What to try and why, in a sentence or two, and the change that does it (None when no change
    of settings is likely to help)."""

    text: str
    remedy: Remedy | None = None


def usual_rate(settings: CompileSpec) -> float:
    """The learning rate the optimizer learns well at on Layerlab's models."""
    if settings.optimizer == "sgd":
        return float(f"{SGD_STEP * (1 - settings.momentum):.1g}")
    return float(OPTIMIZERS[settings.optimizer]["learning_rate"])


def _optimizer(settings: CompileSpec) -> str:
    title = OPTIMIZERS[settings.optimizer]["title"]
    return f"{title} with momentum {settings.momentum:g}" if settings.momentum and settings.optimizer == "sgd" else title


def rate_remedy(spec: ModelSpec, rate: float) -> Remedy | None:
    """Set the learning rate to `rate` (3 significant digits); None outside what a spec accepts."""
    rate = float(f"{rate:.3g}")
    if not RATE_RANGE[0] <= rate <= RATE_RANGE[1] or rate == spec.compile.learning_rate:
        return None
    verb = "Lower" if rate < spec.compile.learning_rate else "Raise"
    return Remedy(f"{verb} the learning rate to {rate:g}", (("learning_rate", rate),))


def _back_to_usual(spec: ModelSpec) -> Advice | None:
    """For a rate above the usual one: straight back to it, saying why not a tenth."""
    rate, usual, name = spec.compile.learning_rate, usual_rate(spec.compile), _optimizer(spec.compile)
    if rate <= usual:
        return None
    tenth = rate / 10
    why = (f"; a tenth of {rate:g} would still be {tenth / usual:.3g} times that, so the fix goes straight to "
           f"{usual:g}" if tenth > usual else f", so the fix goes back to {usual:g}")
    return Advice(f"{name} learns well near {usual:g}{why}.", rate_remedy(spec, usual))


def _random_base(spec: ModelSpec) -> Advice | None:
    """A frozen pretrained base with random weights: its features say nothing about the images."""
    for index, layer in enumerate(spec.layers):
        if random_features(index, layer) is not None:
            return Advice(
                f"Its frozen {layer.params.get('base', 'base')} has random weights (weights none): its features say "
                "nothing about the images, so the top can learn little more than how common each class is. Use "
                "ImageNet weights, or unfreeze the base (unfreeze_last), which is far slower.",
                Remedy("Use ImageNet weights", ((f"{layer.name}.weights", "imagenet"),)))
    return None


def after_divergence(spec: ModelSpec) -> Advice:
    """The rate to try after the loss blew up: the optimizer's usual one, or a tenth of a usual one."""
    advice = _back_to_usual(spec)
    if advice is not None:
        return advice
    rate, usual, name = spec.compile.learning_rate, usual_rate(spec.compile), _optimizer(spec.compile)
    return Advice(f"{rate:g} is no higher than {name}'s usual {usual:g}, so the fix takes a tenth of it; if that "
                  "diverges too, check that the last activation fits the loss.", rate_remedy(spec, rate / 10))


def when_not_learning(spec: ModelSpec, epochs: int) -> Advice:
    """Accuracy at chance: random features, a rate far from the usual one, or (none of those) not the rate."""
    advice = _random_base(spec)
    if advice is not None:
        return advice
    if (back := _back_to_usual(spec)) is not None:
        return Advice(f"Steps that big can silence every ReLU or saturate the output, and then nothing moves. {back.text}",
                      back.remedy)
    rate, usual, name = spec.compile.learning_rate, usual_rate(spec.compile), _optimizer(spec.compile)
    if rate < usual / FAR_BELOW:
        return Advice(f"{rate:g} is far below {name}'s usual {usual:g}: in {epochs} epoch(s) the weights barely move, "
                      f"so the fix goes to {usual:g}.", rate_remedy(spec, usual))
    return Advice(f"The learning rate {rate:g} is about {name}'s usual one, so it is likely not the cause: check that "
                  "the loss fits the last activation, and that the images and labels match.")


def when_one_class(spec: ModelSpec, losses: Sequence[float], shares_loss: float | None) -> Advice:
    """Every image given the largest class. `losses` are the training losses by epoch; `shares_loss`
    is what a model that knows only how common each class is scores (None when the loss is no
    cross-entropy): a loss well under it, still falling, is a model that learns, slowly."""
    advice = _random_base(spec) or _back_to_usual(spec)
    if advice is not None:
        return advice
    learning = (shares_loss is not None and len(losses) >= 2 and losses[-1] < losses[-2]
                and losses[-1] < shares_loss * (1 - LEARNING_GAIN))
    if learning and spec.fit.epochs * 2 <= EPOCHS_MAX:
        return Advice(f"Its training loss ({losses[-1]:.3g}) is under what the class shares alone give "
                      f"({shares_loss:.3g}) and still falling: it is learning, and has not yet outgrown the "
                      f"commonest class. Train longer.", Remedy(f"Train {spec.fit.epochs * 2} epochs",
                                                                (("epochs", spec.fit.epochs * 2),)))
    rate = spec.compile.learning_rate
    return Advice("It has learned only how common each class is: try smaller steps, and check the data (each "
                  "class's images in its own folder, and enough of the rarer classes).", rate_remedy(spec, rate / 10))
