"""The child process that checks a `.keras` file and rebuilds its model, under memory and time limits.

Keras' SECURITY.md: no method reliably detects a malicious model, so the parsing runs apart from
the server. `python -m pipelines.io.import_sandbox FILE OUT DATASET` first caps its own address
space (RLIMIT_AS) and CPU time, then reads the archive with `GuardedZip`, checks config.json
(`keras_config_check`), rebuilds the model from a spec (`import_spec`, `keras_weights`) and loads
only the checked weights. It saves the rebuilt model and its spec into OUT, evaluates it on the
dataset's test set, and writes OUT/result.json: {"ok": true, "spec": ..., "metrics": ..., "notes": [...],
"trained_steps": N or null} or {"ok": false, "reason": ...}. A crash, a kill or a timeout leaves no
result, and the parent refuses the file.
"""
from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

from pipelines.errors import LayerlabError, SpecError
from pipelines.io.archives import GuardedZip
from pipelines.io.import_spec import import_notes, spec_from_config
from pipelines.io.keras_config_check import CONFIG_MAX_BYTES, check_config, parse_config, refuse
from pipelines.data.catalog import get_info
from pipelines.modelspec.spec import ModelSpec

RESULT_FILE = "result.json"
REQUIRED_ENTRIES = ("config.json", "model.weights.h5")
ALLOWED_ENTRIES = {*REQUIRED_ENTRIES, "metadata.json"}
REFUSED_EXIT = 3


def limit_resources(memory_bytes: int, cpu_seconds: int) -> None:
    """Cap this process's address space and CPU time (soft limits: lifted again for evaluating)."""
    for kind, value in ((resource.RLIMIT_AS, memory_bytes), (resource.RLIMIT_CPU, cpu_seconds)):
        _, hard = resource.getrlimit(kind)
        resource.setrlimit(kind, (value if hard == resource.RLIM_INFINITY else min(value, hard), hard))


def lift_memory_limit() -> None:
    """The model is Layerlab's own from here on: evaluating it may use the memory training may."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def _checked_spec(archive: GuardedZip, dataset: str):
    names = {info.filename for info in archive.files()}
    extra = sorted(names - ALLOWED_ENTRIES)
    if extra:
        raise refuse(f"the file holds {extra[0]!r}; a .keras file of registry layers holds only "
                     f"{', '.join(sorted(ALLOWED_ENTRIES))}")
    missing = [name for name in REQUIRED_ENTRIES if name not in names]
    if missing:
        raise refuse(f"the file has no {missing[0]}; it is not a Keras 3 .keras file")
    checked = check_config(parse_config(archive.read("config.json", CONFIG_MAX_BYTES)))
    spec = spec_from_config(checked)
    info = get_info(dataset)
    if tuple(spec.input_shape) != tuple(info.input_shape):
        raise refuse(f"the model takes input {'x'.join(map(str, spec.input_shape))}, but {info.title} images are "
                     f"{'x'.join(map(str, info.input_shape))}; pick the dataset it was trained on")
    from pipelines.modelspec.validation import ensure_valid  # Keras from here on: the config passed
    try:
        ensure_valid(spec, info)
    except SpecError as error:
        raise refuse(f"the model does not fit {info.title}: {error}") from None
    return checked, spec


def rebuild_from_file(source: Path, dataset: str, out: Path) -> tuple[ModelSpec, tuple[str, ...], int | None]:
    """Check `source` and save the rebuilt model and its spec into `out`; ModelImportError if refused.
    Also what the import changed on the way in (`import_notes`), and the training steps the file's
    optimizer had taken (`keras_weights.optimizer_steps`)."""
    scratch = out / "scratch"
    scratch.mkdir()
    with GuardedZip(source, "The .keras file") as archive:
        checked, spec = _checked_spec(archive, dataset)
        from pipelines.io.keras_weights import load_weights, max_weight_bytes, rebuild  # TF once the config passed
        from pipelines.runs.artifacts import MODEL_FILE, SPEC_FILE
        model = rebuild(spec, checked)
        weights = next(info for info in archive.files() if info.filename == "model.weights.h5")
        if weights.file_size > max_weight_bytes():
            raise refuse(f"model.weights.h5 is {weights.file_size:,} bytes; at most {max_weight_bytes():,} "
                         "are allowed")
        archive.extract_to(scratch / "weights", members=[weights])
    steps = load_weights(model, scratch / "weights" / "model.weights.h5", scratch)
    model.save(out / MODEL_FILE)
    (out / SPEC_FILE).write_text(spec.to_json())
    return spec, import_notes(checked), steps


def evaluate_on_test_set(out: Path, dataset: str) -> dict[str, float]:
    """The rebuilt model's test accuracy and loss, named as a trained run's (results schema)."""
    from pipelines.data.locate import load
    from pipelines.inference.evaluate import evaluate
    from pipelines.inference.predict import load_run_model
    from pipelines.runs.results import test_results

    data = load(dataset, download=False)
    result = evaluate(load_run_model(out, dataset), data.x_test, data.y_test)
    return test_results({"accuracy": result.accuracy, "loss": result.loss})


def _failure_reason(error: Exception) -> str:
    """A MemoryError, or a library that could not map its memory, is the memory cap speaking."""
    text = str(error)
    if isinstance(error, MemoryError) or "map segment" in text or "Cannot allocate memory" in text:
        return "Refused: checking the file needed more memory than the cap (LAYERLAB_IMPORT_MEMORY_MB)."
    return f"Refused: the file could not be read: {text[:300]}."


def main(argv: list[str]) -> int:
    source, out, dataset = Path(argv[0]), Path(argv[1]), argv[2]
    limit_resources(int(argv[3]), int(argv[4]))
    result: dict
    try:
        spec, notes, steps = rebuild_from_file(source, dataset, out)
        lift_memory_limit()
        try:
            metrics = evaluate_on_test_set(out, dataset)
        except LayerlabError:
            metrics = {}  # the dataset is not here: the run is compared without test figures
        result = {"ok": True, "spec": spec.to_dict(), "metrics": metrics, "notes": list(notes),
                  "trained_steps": steps}
    except LayerlabError as error:
        result = {"ok": False, "reason": str(error)}
    except Exception as error:  # h5py and Keras fail on a damaged file in many ways; none is a crash here
        result = {"ok": False, "reason": _failure_reason(error)}
    (out / RESULT_FILE).write_text(json.dumps(result))
    return 0 if result["ok"] else REFUSED_EXIT


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main(sys.argv[1:]))
