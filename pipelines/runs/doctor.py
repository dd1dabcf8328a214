"""The training doctor: reads a run's curves and says, in words, what went wrong and what to try.

Pure functions over the metric points a run recorded (no Keras, no UI), so the Train page can draw
each finding on the chart, the CLI can print it, and tests can feed it recorded curves. Each
finding covers a stretch of the epoch axis (x = epoch + fraction done, as the live chart places
points) and may carry a remedy: a change to the run's spec that the Build page applies in one click.
Which change, and why, is `remedies.py`'s: it depends on the optimizer and on what was seen.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipelines.data import added
from pipelines.data.catalog import BUILTIN, CATALOG
from pipelines.errors import DatasetError, SpecError
from pipelines.modelspec.edit import set_param
from pipelines.modelspec.spec import ModelSpec
from pipelines.runs.entities import MetricPoint, Run
from pipelines.runs.feed import batch_values
from pipelines.runs.remedies import Remedy, after_divergence, rate_remedy, when_not_learning, when_one_class

__all__ = ["Finding", "Remedy", "apply_remedy", "diagnose", "diagnose_run"]

DIVERGENCE_FACTOR = 10.0  # a loss this many times its start has diverged
CHANCE_MARGIN = 1.5  # accuracy under this many times chance is "near chance"
NOT_LEARNING_EPOCHS = 1  # judged only after this many finished epochs
OVERFIT_RISE = 0.05  # validation loss this share above its best, for OVERFIT_EPOCHS epochs in a row
OVERFIT_EPOCHS = 2
PLATEAU_EPOCHS = 3  # epochs without PLATEAU_GAIN relative improvement of the monitored loss
PLATEAU_GAIN = 0.01
UNDERFIT_ACCURACY = 0.8  # below this at the end, with losses still falling by UNDERFIT_GAIN an epoch
UNDERFIT_GAIN = 0.02
# Accuracy this near the largest class's share (plus a random split's sampling error, two standard
# errors) for ONE_CLASS_EPOCHS epochs at the end: the model gives (nearly) every image that class.
ONE_CLASS_TOLERANCE = 0.015
ONE_CLASS_EPOCHS = 2
CROSS_ENTROPIES = ("sparse_categorical_crossentropy", "categorical_crossentropy")

KIND_TITLES = {"diverged": "Diverged", "one_class": "One class", "not_learning": "Not learning",
               "overfitting": "Overfitting", "plateau": "Plateau", "underfitting": "Underfitting"}
# What the run did, to follow "Completed, but ...".
KIND_VERDICTS = {"diverged": "diverged", "one_class": "predicts one class", "not_learning": "did not learn",
                 "overfitting": "overfitted", "plateau": "stalled", "underfitting": "underfitted"}


@dataclass(frozen=True)
class Finding:
    """One diagnosis, over the stretch [start, end] of the epoch axis."""

    kind: str  # "diverged", "one_class", "not_learning", "overfitting", "plateau", "underfitting"
    severity: str  # "error" (the run is not usable as it is) or "warning"
    start: float
    end: float
    message: str
    remedy: Remedy | None = None

    @property
    def title(self) -> str:
        """One or two words for a label on the chart: "Diverged", "Overfitting"."""
        return KIND_TITLES.get(self.kind, self.kind)

    @property
    def verdict(self) -> str:
        """What the run did, to follow "Completed, but": "diverged", "overfitted"."""
        return KIND_VERDICTS.get(self.kind, self.kind)

    @property
    def detail(self) -> str:
        """The message without its heading: what happened and what to try."""
        return self.message.split(": ", 1)[-1]

    def to_dict(self) -> dict:
        """The finding as plain JSON data (the CLI's `show --json` prints a list of these)."""
        remedy = None if self.remedy is None else {
            "label": self.remedy.label, "changes": {setting: value for setting, value in self.remedy.changes}}
        return {"kind": self.kind, "severity": self.severity, "start": round(self.start, 3),
                "end": round(self.end, 3), "message": self.message, "remedy": remedy}


def _series(points: Sequence[MetricPoint], kind: str, name: str) -> list[MetricPoint]:
    return [p for p in points if p.kind == kind and p.name == name]


def _x(point: MetricPoint, steps_per_epoch: int) -> float:
    if point.kind == "epoch":
        return point.epoch + 1.0
    return point.epoch + (point.step / steps_per_epoch if steps_per_epoch > 0 else 1.0)


def _starting_loss(losses: Sequence[MetricPoint], num_classes: int) -> float:
    """Where the loss started: a fresh classifier's cross-entropy is about ln(classes), or the first
    batch's loss when it was higher. Only a first point of one batch tells the first batch's loss:
    when Keras runs several batches per call (or only epochs are recorded), the first point is a
    mean that may already hold the divergence."""
    chance = math.log(max(num_classes, 2))
    first = losses[0] if losses else None
    if first is not None and first.kind == "batch" and first.step == 1:
        return max(first.value, chance)
    return chance


def _diverged(points, steps, num_classes, spec, error) -> Finding | None:
    """A batch's loss an order of magnitude over where it started (or over chance's), or a NaN.

    The batch losses are per-batch values (`batch_values`), not Keras' running means: a running
    mean dilutes a jump of the loss over the batches before it, and restarts every epoch.
    """
    losses = [p for p in (batch_values(_series(points, "batch", "loss")) or _series(points, "epoch", "loss"))
              if math.isfinite(p.value)]
    failed_nan = bool(error) and ("NaN" in error or " inf " in f" {error} ")
    if not losses and not failed_nan:
        return None
    start = _starting_loss(losses, num_classes)
    over = next((p for p in losses if p.value > DIVERGENCE_FACTOR * start), None)
    if over is None and not failed_nan:
        return None
    first_x = _x(over, steps) if over is not None else (_x(losses[-1], steps) if losses else 0.0)
    end_x = max((_x(p, steps) for p in points), default=first_x)
    if over is None:
        what = f"the loss became {'NaN' if 'NaN' in error else 'infinite'}"
    else:
        peak = max(p.value for p in losses)
        what = f"the loss jumped from {start:.3g} to {peak:.3g}"
    marker = over or (losses[-1] if losses else None)
    epoch = marker.epoch + 1 if marker is not None else 1
    advice = after_divergence(spec) if spec is not None else None
    return Finding("diverged", "error", first_x, end_x,
                   f"Diverged in epoch {epoch}: {what}. The steps are too big: lower the learning rate."
                   + (f" {advice.text}" if advice else ""), advice.remedy if advice else None)


def _not_learning(points, num_classes, spec) -> Finding | None:
    """Training accuracy still near chance after NOT_LEARNING_EPOCHS finished epochs."""
    accuracy = _series(points, "epoch", "accuracy")
    if len(accuracy) < NOT_LEARNING_EPOCHS or num_classes < 2:
        return None
    chance = 1.0 / num_classes
    if max(p.value for p in accuracy) > CHANCE_MARGIN * chance:
        return None
    advice = when_not_learning(spec, len(accuracy)) if spec is not None else None
    return Finding("not_learning", "error", 0.0, accuracy[-1].epoch + 1.0,
                   f"Not learning: accuracy stays near chance ({chance:.1%}) after {len(accuracy)} epoch(s). "
                   + (advice.text if advice else "The learning rate may be too low or too high, or the loss may "
                      "not fit the last activation."), advice.remedy if advice else None)


def _one_class(points, counts, class_names, spec, finished) -> Finding | None:
    """Accuracy pinned at the largest class's share: the model gives (nearly) every image that class.

    Judged on validation accuracy, against the validation images' counts when the dataset brings its
    own (exact), else against the training counts (a random split holds about those shares); without
    validation, on training accuracy. `counts` are the images per class by split; a dataset whose
    largest class is no larger than chance is left to `_not_learning`.
    """
    val = _series(points, "epoch", "val_accuracy")
    series, split = (val, "validation") if val else (_series(points, "epoch", "accuracy"), "training")
    if not counts or "train" not in counts or not series or (len(series) < ONE_CLASS_EPOCHS and not finished):
        return None
    own = "validation" in counts
    shares = counts["validation"] if val and own else counts["train"]
    held_out = spec.fit.validation_split if spec is not None else 0.1
    exact = own or not held_out  # the very images the accuracy is over are counted, else a random share of them
    sampled = 0 if exact else max(1, round(sum(counts["train"]) * (held_out if val else 1 - held_out)))
    total, top = sum(shares), max(range(len(shares)), key=shares.__getitem__)
    share = shares[top] / max(total, 1)
    tolerance = ONE_CLASS_TOLERANCE + (2 * math.sqrt(share * (1 - share) / sampled) if sampled else 0.0)
    if share - 1 / len(shares) <= tolerance:
        return None
    pinned = []
    for point in reversed(series):
        if abs(point.value - share) > tolerance:
            break
        pinned.append(point)
    if len(pinned) < min(ONE_CLASS_EPOCHS, len(series)):
        return None
    name = class_names[top] if top < len(class_names) else f"class {top}"
    whose = (f"the share of {name!r} in the {split} images ({shares[top]:,} of {total:,})" if exact
             else f"about the share of {name!r} in the training images ({share:.1%})")
    stays = f"has stayed at {pinned[0].value:.1%} for {len(pinned)} epochs" if len(pinned) > 1 \
        else f"is {pinned[0].value:.1%}"
    advice = None
    if spec is not None:
        shares_loss = _entropy(counts["train"]) if spec.compile.loss in CROSS_ENTROPIES else None
        advice = when_one_class(spec, [p.value for p in _series(points, "epoch", "loss")], shares_loss)
    return Finding("one_class", "error", float(pinned[-1].epoch), pinned[0].epoch + 1.0,
                   f"Predicts one class: {split} accuracy {stays}, {whose}: the model gives nearly every image "
                   "that class." + (f" {advice.text}" if advice else ""), advice.remedy if advice else None)


def _entropy(counts: Sequence[int]) -> float:
    """The cross-entropy of a model that knows only how common each class is."""
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts if c)


def _overfitting(points, spec) -> Finding | None:
    """Validation loss rising above its best for OVERFIT_EPOCHS epochs while training loss keeps falling."""
    val = _series(points, "epoch", "val_loss")
    train = {p.epoch: p.value for p in _series(points, "epoch", "loss")}
    if len(val) < OVERFIT_EPOCHS + 1:
        return None
    best = min(val, key=lambda p: p.value)
    after = [p for p in val if p.epoch > best.epoch]
    rising = [p for p in after if p.value > best.value * (1 + OVERFIT_RISE)]
    if len(rising) < OVERFIT_EPOCHS or best.epoch not in train or after[-1].epoch not in train:
        return None
    if train[after[-1].epoch] >= train[best.epoch]:
        return None  # both rising: not overfitting (divergence or noise)
    remedy = None
    if spec is not None:
        remedy = (Remedy("Stop early (patience 2)", (("early_stopping_patience", 2),))
                  if spec.fit.early_stopping_patience is None
                  else Remedy(f"Train {best.epoch + 1} epoch(s)", (("epochs", best.epoch + 1),)))
    return Finding("overfitting", "warning", best.epoch + 1.0, val[-1].epoch + 1.0,
                   f"Overfitting from epoch {best.epoch + 1}: validation loss rose from {best.value:.3f} to "
                   f"{val[-1].value:.3f} while training loss kept falling. Add Dropout, use early stopping, "
                   f"or train fewer epochs; epoch {best.epoch + 1} is kept as the best model.", remedy)


def _plateau(points, spec) -> Finding | None:
    """The monitored loss did not improve by PLATEAU_GAIN for PLATEAU_EPOCHS epochs in a row at the end."""
    monitored = _series(points, "epoch", "val_loss") or _series(points, "epoch", "loss")
    if len(monitored) < PLATEAU_EPOCHS + 1:
        return None
    values = [p.value for p in monitored]
    best_before = min(values[:-PLATEAU_EPOCHS])
    if min(values[-PLATEAU_EPOCHS:]) < best_before * (1 - PLATEAU_GAIN):
        return None
    start = monitored[-PLATEAU_EPOCHS - 1].epoch + 1.0
    return Finding("plateau", "warning", start, monitored[-1].epoch + 1.0,
                   f"Plateau: no improvement for the last {PLATEAU_EPOCHS} epochs. Lower the learning rate, "
                   "or stop here.", rate_remedy(spec, spec.compile.learning_rate / 10) if spec else None)


def _underfitting(points, spec) -> Finding | None:
    """Both losses still falling at the end, and accuracy still low: more to learn."""
    train = _series(points, "epoch", "loss")
    accuracy = _series(points, "epoch", "accuracy")
    if len(train) < 2 or not accuracy or accuracy[-1].value >= UNDERFIT_ACCURACY:
        return None
    series = [train] + ([val] if (val := _series(points, "epoch", "val_loss")) and len(val) >= 2 else [])
    if not all(s[-1].value < s[-2].value * (1 - UNDERFIT_GAIN) for s in series):
        return None
    remedy = None
    if spec is not None and spec.fit.epochs * 2 <= 1000:
        remedy = Remedy(f"Train {spec.fit.epochs * 2} epochs", (("epochs", spec.fit.epochs * 2),))
    return Finding("underfitting", "warning", train[-2].epoch + 1.0, train[-1].epoch + 1.0,
                   f"Underfitting: accuracy is {accuracy[-1].value:.1%} and both losses were still falling at "
                   "the end. Train longer, or make the model bigger.", remedy)


def diagnose(points: Sequence[MetricPoint], *, num_classes: int, spec: ModelSpec | None = None,
             error: str | None = None, steps_per_epoch: int = 0, finished: bool = True,
             class_counts: Mapping[str, Sequence[int]] | None = None, class_names: Sequence[str] = ()) -> list[Finding]:
    """Every finding for one run's points (in store order), worst first; [] for a healthy run.

    A diverged run is only reported as diverged: what follows a divergence says nothing more. So is
    a run that gives every image one class (`class_counts`: images per class by split, as an added
    dataset's manifest has them): calling it a plateau, or underfitted, would send the learner the
    wrong way. Underfitting ("still falling at the end") waits until the run has `finished`.
    """
    diverged = _diverged(points, steps_per_epoch, num_classes, spec, error)
    if diverged is not None:
        return [diverged]
    one_class = _one_class(points, class_counts, class_names, spec, finished)
    if one_class is not None:
        return [one_class]
    findings = [_not_learning(points, num_classes, spec)]
    if findings[0] is None:
        overfitting = _overfitting(points, spec)
        findings += [overfitting, None if overfitting else _plateau(points, spec),
                     _underfitting(points, spec) if finished else None]
    return [f for f in findings if f is not None]


def diagnose_run(run: Run, points: Sequence[MetricPoint]) -> list[Finding]:
    """`diagnose` for a run as the store holds it: its dataset's classes, its spec (None when the
    stored spec no longer reads), its error, and whether it has ended."""
    try:
        spec = run.model_spec
    except SpecError:
        spec = None
    info = CATALOG.get(run.dataset)
    steps = run.progress.steps_per_epoch or max((p.step for p in points if p.kind == "epoch"), default=0)
    return diagnose(points, num_classes=info.num_classes if info else 0, spec=spec, error=run.error,
                    steps_per_epoch=steps, finished=run.status.is_terminal,
                    class_counts=class_counts(run.dataset, info.num_classes) if info else None,
                    class_names=info.class_names if info else ())


def class_counts(dataset: str, num_classes: int) -> dict[str, list[int]] | None:
    """An added dataset's images per class by split ("train", "validation", "test"), from its
    manifest. None for a built-in: balanced near enough that one class alone scores about chance,
    which "not learning" tells. A manifest's counts that do not fit its classes are not used."""
    if dataset in BUILTIN:
        return None
    try:
        counts = added.read_manifest(dataset).get("counts")
    except DatasetError:
        return None
    usable = {split: list(values) for split, values in (counts.items() if isinstance(counts, dict) else ())
              if isinstance(values, list) and len(values) == num_classes
              and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)}
    return usable or None


COMPILE_SETTINGS = ("learning_rate",)
FIT_SETTINGS = ("epochs", "early_stopping_patience")


def apply_remedy(spec: ModelSpec, remedy: Remedy) -> ModelSpec:
    """The spec with a remedy's changes made: compile and fit settings by name, and a layer's param
    as "<layer name>.<param>" (by name, not position: names are unique in a valid spec)."""
    names = [layer.name for layer in spec.layers]
    for setting, value in remedy.changes:
        layer_name, _, param = setting.rpartition(".")
        if setting in COMPILE_SETTINGS:
            spec = spec.with_compile(**{setting: value})
        elif setting in FIT_SETTINGS:
            spec = spec.with_fit(**{setting: value})
        elif layer_name in names and param:
            spec = set_param(spec, names.index(layer_name), param, value)
        else:
            raise SpecError(f"Unknown remedy setting {setting!r}. Expected one of: "
                            f"{', '.join(COMPILE_SETTINGS + FIT_SETTINGS)}, or <layer name>.<param> for a layer "
                            "of this model")
    return spec
