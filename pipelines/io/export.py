"""A run's files taken out of Layerlab: the standalone script, model.keras, spec, history, one zip.

The script is checked for parity before a page calls it "checked": the model its `build_model()`
builds must have the app's layer configs, parameter count, optimizer and loss. The result is kept
in the run's folder (`export.json`, with the SHA-256 of the script it was checked for), so a page
shows it without loading TensorFlow again.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
import tempfile
import uuid
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import ModuleType

from pipelines.data.added import read_manifest
from pipelines.data.catalog import BUILTIN, get_info
from pipelines.errors import LayerlabError, RunStateError
from pipelines.io.export_blocks import OFFLINE_PARAMS
from pipelines.io.export_script import export_script, literal
from pipelines.modelspec.spec import ModelSpec
from pipelines.runs.artifacts import HISTORY_FILE, MODEL_FILE, SPEC_FILE, TENSORBOARD_DIR, atomic_write_text
from pipelines.runs.entities import Run

EXPORT_RECORD_FILE = "export.json"  # the last parity check, beside the run's other files
PARITY_FILE = "parity.json"  # the same check, inside the zip
CHECKED_TEXT = "checked: same layers, same parameter count"


@dataclass(frozen=True)
class Parity:
    """What the parity check found; `differences` names each mismatch in words."""

    script_sha256: str
    app_parameters: int
    script_parameters: int
    differences: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def text(self) -> str:
        if self.ok:
            return CHECKED_TEXT
        return "parity check failed: " + "; ".join(self.differences)

    def to_dict(self) -> dict:
        return {**asdict(self), "differences": list(self.differences), "ok": self.ok, "text": self.text}


def file_stem(run: Run) -> str:
    """`<run name>-<id>`, safe as a file name and as a Python module name's tail."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", run.name).strip("_") or "run"
    return f"{name[:40]}_{run.id}"


def script_file_name(run: Run) -> str:
    return f"train_{file_stem(run)}.py"


def dataset_fit(name: str) -> str:
    """How an added image-folder dataset fitted its photos, from its manifest (the catalog's
    DatasetInfo does not carry it); "stretch" for the built-in datasets, which are not photos."""
    if name in BUILTIN:
        return "stretch"
    return str(read_manifest(name).get("fit", "stretch"))


def run_script(run: Run) -> str:
    """The run's standalone Keras script (see export_script); its photos are read as the run's were."""
    return export_script(run.model_spec, get_info(run.dataset), title=run.name, file_name=script_file_name(run),
                         fit=dataset_fit(run.dataset))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _layer_configs(model) -> list[tuple[str, dict]]:
    return [(type(layer).__name__, layer.get_config()) for layer in model.layers]


def _unnamed(config: dict) -> dict:
    """A config without its `name`, which Keras numbers per process (adam, adam_1, ...)."""
    return {key: value for key, value in config.items() if key != "name"}


def _differences(app, scripted) -> list[str]:
    """Where the script's compiled model differs from the app's, in words (empty: none)."""
    out = []
    app_layers, script_layers = _layer_configs(app), _layer_configs(scripted)
    if len(app_layers) != len(script_layers):
        out.append(f"the app's model has {len(app_layers)} layers, the script's {len(script_layers)}")
    for index, (mine, theirs) in enumerate(zip(app_layers, script_layers), start=1):
        if mine != theirs:
            keys = sorted(k for k in set(mine[1]) | set(theirs[1]) if mine[1].get(k) != theirs[1].get(k))
            out.append(f"layer {index} ({mine[1].get('name')}) differs in {', '.join(keys) or 'its class'}")
    if app.count_params() != scripted.count_params():
        out.append(f"{app.count_params():,} parameters in the app, {scripted.count_params():,} in the script")
    for what, mine, theirs in (("optimizer", app.optimizer, scripted.optimizer), ("loss", app.loss, scripted.loss)):
        if type(mine) is not type(theirs) or _unnamed(mine.get_config()) != _unnamed(theirs.get_config()):
            out.append(f"the {what} differs ({type(mine).__name__} in the app, {type(theirs).__name__} in the script)")
    return out


def script_module(script: str) -> ModuleType:
    """An exported script imported as a module (its `main()` does not run), from a temp file. Only
    for Layerlab's own output: importing runs the script's top level.

    A script's block classes register under Layerlab's own names (so that plain Keras loads a run's
    model.keras with them): Keras' registry is put back as it was, so the app keeps its classes."""
    import keras
    from keras.src.saving import object_registration  # the class -> name half has no public API

    objects, names = keras.saving.get_custom_objects(), object_registration.GLOBAL_CUSTOM_NAMES
    objects_before = dict(objects)
    module_name = f"layerlab_exported_{uuid.uuid4().hex}"
    try:
        with tempfile.TemporaryDirectory(prefix="layerlab-parity-") as folder:
            path = Path(folder) / "exported.py"
            path.write_text(script)
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
    finally:  # only the script's own entries: another thread may register something meanwhile
        for key, value in list(objects.items()):
            if getattr(value, "__module__", None) == module_name:
                if key in objects_before:
                    objects[key] = objects_before[key]
                else:
                    del objects[key]
        for value in [value for value in names if getattr(value, "__module__", None) == module_name]:
            del names[value]
    return module


def offline(spec: ModelSpec) -> ModelSpec:
    """The spec with every setting that would download weights set to one that does not."""
    layers = tuple(replace(layer, params={**layer.params, **{param: value for (kind, param), value in
                                                             OFFLINE_PARAMS.items() if kind == layer.type}})
                   for layer in spec.layers)
    return replace(spec, layers=layers)


def check_parity(script: str, spec: ModelSpec, input_shape: tuple[int, ...]) -> Parity:
    """Build the model the script builds (its own `build_model()`, imported from a temp file) and
    the app's (`keras_build.build_model`), and compare them. The script is Layerlab's own output.
    Both are built without downloading pretrained weights: the structure is what is compared."""
    from pipelines.modelspec.keras_build import build_model

    sha = sha256(script)
    for layer in spec.layers:  # the same change in the script's layer calls
        for (kind, param), value in OFFLINE_PARAMS.items():
            if layer.type == kind and param in layer.params:
                script = script.replace(f"{param}={literal(layer.params[param])}", f"{param}={literal(value)}")
    spec = offline(spec)
    scripted = script_module(script).build_model()
    app = build_model(spec, input_shape)
    return Parity(sha, app.count_params(), scripted.count_params(), tuple(_differences(app, scripted)))


def recorded_parity(run_dir: Path, script: str) -> Parity | None:
    """The passed parity check kept in the run's folder, if it was made for exactly this script (a
    failed one is checked again: the check itself may have changed since)."""
    try:
        data = json.loads((run_dir / EXPORT_RECORD_FILE).read_text())
        if data.get("script_sha256") != sha256(script) or data.get("differences"):
            return None
        return Parity(data["script_sha256"], int(data["app_parameters"]), int(data["script_parameters"]),
                      tuple(str(d) for d in data["differences"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def parity_for(run: Run, run_dir: Path, script: str | None = None) -> Parity:
    """The run's parity, from its folder's record or checked now (and recorded)."""
    script = script if script is not None else run_script(run)
    found = recorded_parity(run_dir, script)
    if found is None:
        found = check_parity(script, run.model_spec, get_info(run.dataset).input_shape)
        try:
            atomic_write_text(run_dir / EXPORT_RECORD_FILE, json.dumps(found.to_dict(), indent=2))
        except OSError:
            pass  # a read-only or full disk: the check stands, it is only not kept
    return found


def bundle(run: Run, run_dir: Path, script: str, parity: Parity | None = None) -> bytes:
    """A zip of the run's model.keras, spec.json, history.csv and TensorBoard logs (those that
    exist), the script and parity.json: the check given, else the kept one, else checked now (so
    TensorFlow is loaded); one that cannot run says why in parity.json."""
    try:
        parity_record = (parity or parity_for(run, run_dir, script)).to_dict()
    except (LayerlabError, OSError, ImportError, ValueError) as exc:
        parity_record = {"ok": False, "text": f"the parity check could not run: {exc}"}
    buffer = io.BytesIO()
    logs = sorted(path for path in (run_dir / TENSORBOARD_DIR).rglob("events.out.tfevents.*") if path.is_file())
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in (MODEL_FILE, SPEC_FILE, HISTORY_FILE):
            if (run_dir / name).is_file():
                archive.write(run_dir / name, name)
        for path in logs:  # `tensorboard --logdir tensorboard` opens them where the zip is unpacked
            archive.write(path, path.relative_to(run_dir).as_posix())
        archive.writestr(script_file_name(run), script)
        archive.writestr(PARITY_FILE, json.dumps(parity_record, indent=2))
    return buffer.getvalue()


def require_model(run: Run, run_dir: Path) -> Path:
    """The run's model.keras, or an error saying why there is none."""
    path = run_dir / MODEL_FILE
    if not path.is_file():
        raise RunStateError(f"Run {run.id} has no {MODEL_FILE}: it is {run.status.value.lower()}; only a run that "
                            "completed or was stopped keeps a trained model")
    return path
