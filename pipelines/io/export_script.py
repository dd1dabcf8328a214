"""A run as a standalone Keras script: the same data, scaling, layers, compile and fit, no Layerlab.

The script reads like the Keras tutorials, so a learner can take a model out of the app and keep
going. Layers are written from the registry (each type's `keras_class` and params), the way
`keras_build.build_model` builds them, so a new layer type mostly just works; `export.check_parity`
builds the script's model and compares it with the app's. Every value written into the code is a
Python literal checked by `ast.literal_eval`, so no name or setting can become code.
"""
from __future__ import annotations

import ast
from string import Template

from pipelines.data.catalog import DatasetInfo
from pipelines.data.folders import FITS, IMAGE_SUFFIXES
from pipelines.errors import SpecError
from pipelines.modelspec.layers import get_layer_type
from pipelines.io.export_blocks import SCRIPT_LAYERS, UNEXPORTABLE
from pipelines.io.export_folder import LOAD_FOLDER
from pipelines.modelspec.spec import LOSSES, OPTIMIZERS, LayerSpec, ModelSpec, output_activation

# The datasets `keras.datasets` can download; any other dataset is read from an image folder.
KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10")

_HEADER = Template('''\
"""Train $title again with plain Keras: exported by Layerlab.

The same data, pixel scaling, layers, optimizer, loss, seed and validation split as the run.
$data_help

    python $file_name $example--epochs 5

Batches are shuffled by Keras here and by Layerlab's input pipeline in the app, so the curves
differ a little from the run's; the model is the same, and so is the accuracy it reaches, give or
take the noise of a different batch order.
"""
$imports

import keras
import numpy as np

DATASET = $dataset
CLASS_NAMES = $class_names
INPUT_SHAPE = $input_shape  # height, width, colour channels
SEED = $seed
EPOCHS = $epochs
BATCH_SIZE = $batch_size
VALIDATION_SPLIT = $validation_split
''')

_LOAD_KERAS = Template('''

def load_data(path=None):
    """(x_train, y_train), (x_test, y_test): uint8 images of INPUT_SHAPE and integer labels."""
    if path is None:
        # Downloads once, then reads Keras' cache (~/.keras/datasets).
        (x_train, y_train), (x_test, y_test) = keras.datasets.$dataset_name.load_data()
    else:
        (x_train, y_train), (x_test, y_test) = read_files(path)
    # Keras gives (N, 28, 28) for greyscale images; layers want a channel axis: (N, 28, 28, 1).
    x_train, x_test = x_train.reshape(-1, *INPUT_SHAPE), x_test.reshape(-1, *INPUT_SHAPE)
    return (x_train, y_train.reshape(-1)), (x_test, y_test.reshape(-1))
''')

_READERS = {
    "mnist": '''

def read_files(path):
    """Keras' own mnist.npz file."""
    with np.load(path, allow_pickle=False) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
''',
    "fashion_mnist": '''

def read_idx(path, header_bytes):
    """One gzipped IDX file: a small header, then one unsigned byte per pixel or label."""
    with gzip.open(path, "rb") as stream:
        return np.frombuffer(stream.read(), dtype=np.uint8, offset=header_bytes)


def read_files(folder):
    """The folder of the four official Fashion-MNIST files (train-images-idx3-ubyte.gz, ...)."""
    folder = pathlib.Path(folder)
    splits = []
    for prefix in ("train", "t10k"):
        images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
        labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 8)
        splits.append((images, labels))
    return tuple(splits)
''',
    "cifar10": '''

def read_batch(stream):
    """One CIFAR-10 batch: a pickle (open only files you trust) of 3072 bytes per image."""
    batch = pickle.load(stream, encoding="bytes")
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch[b"labels"])


def read_files(path):
    """The cifar-10-batches-py folder, or the cifar-10-python.tar.gz file that holds it."""
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if pathlib.Path(path).is_dir():
        batches = {}
        for name in names:
            with open(pathlib.Path(path) / name, "rb") as stream:
                batches[name] = read_batch(stream)
    else:
        with tarfile.open(path) as tar:
            batches = {pathlib.PurePath(m.name).name: read_batch(tar.extractfile(m))
                       for m in tar.getmembers() if pathlib.PurePath(m.name).name in names}
    train = [batches[name] for name in names[:-1]]
    x_train = np.concatenate([images for images, _ in train])
    y_train = np.concatenate([labels for _, labels in train])
    return (x_train, y_train), batches["test_batch"]
''',
}
_READER_IMPORTS = {"mnist": (), "fashion_mnist": ("gzip", "pathlib"), "cifar10": ("pathlib", "pickle", "tarfile")}
# What --data points at in the script's usage line.
_EXAMPLE_PATHS = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist/", "cifar10": "cifar-10-batches-py/"}


_LABELS = {
    "sparse": "    # The loss takes the class number itself (sparse labels): nothing to change.\n",
    "one_hot": "    # The loss wants one-hot labels: class 3 of 10 becomes [0, 0, 0, 1, 0, 0, 0, 0, 0, 0].\n"
               "    y = keras.utils.to_categorical(y, len(CLASS_NAMES))\n",
    "binary": "    # Binary cross-entropy wants each label as one float, 0.0 or 1.0.\n"
              "    y = y.astype(\"float32\").reshape(-1, 1)\n",
}

_PREPARE = Template('''

def prepare(x, y):
    """Pixels from 0..255 to floats in 0..1, exactly as Layerlab scales them (x / 255)."""
    x = x.astype("float32") / 255.0
$labels    return x, y


def split_validation(x, y):
    """The same held-out examples as the run: a seeded shuffle, and its last VALIDATION_SPLIT."""
    order = np.random.default_rng(SEED).permutation(len(x))
    n_val = int(round(len(x) * VALIDATION_SPLIT))
    train, val = np.sort(order[: len(x) - n_val]), np.sort(order[len(x) - n_val :])
    return (x[train], y[train]), (x[val], y[val])


def build_model():
    """The run's layers, each with its settings written out, compiled as the run was."""
    model = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
$layers        ]
    )
    model.compile(
        optimizer=keras.optimizers.$optimizer,
        # $logits_comment
        loss=keras.losses.$loss,
        metrics=$metrics,
    )
    return model
''')

_MAIN = Template('''

def main():
    parser = argparse.ArgumentParser(description="Train the exported model and print its test accuracy.")
    parser.add_argument("--data", metavar="PATH", help=$data_arg_help)
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"default: {EPOCHS}")
    parser.add_argument("--save", metavar="FILE.keras", help="also save the trained model there")
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = load_data(args.data)
$validation
    x_train, y_train = prepare(x_train, y_train)
    x_test, y_test = prepare(x_test, y_test)

    # One seed for Python, NumPy and TensorFlow: the same starting weights as the run.
    keras.utils.set_random_seed(SEED)
    model = build_model()
    model.summary()
    callbacks = []$early_stopping
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=args.epochs, validation_data=validation,
              callbacks=callbacks)
    if args.save:
        model.save(args.save)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=BATCH_SIZE, verbose=0)
    print(f"test loss: {loss:.4f}")
    print(f"test accuracy: {accuracy:.4f}")


if __name__ == "__main__":
    main()
''')

_EARLY_STOPPING = '''
    # Stop when the validation loss (else the training loss) has not improved for $patience epochs, as the run did.
    monitor = "val_loss" if validation is not None else "loss"
    callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=$patience))'''

_SPLIT_VALIDATION = '''    validation = None
    if VALIDATION_SPLIT:
        (x_train, y_train), (x_val, y_val) = split_validation(x_train, y_train)
        validation = prepare(x_val, y_val)'''

_GIVEN_VALIDATION = '''    validation = read_validation(args.data)
    if validation is not None:  # the folder's own validation/, as in Layerlab: all of train/ trains
        validation = prepare(*validation)
    elif VALIDATION_SPLIT:
        (x_train, y_train), (x_val, y_val) = split_validation(x_train, y_train)
        validation = prepare(x_val, y_val)'''


def literal(value: object) -> str:
    """`value` as Python source, refused unless it reads back as the same plain value."""
    text = repr(tuple(value) if isinstance(value, list) else value)
    try:
        same = ast.literal_eval(text) == (tuple(value) if isinstance(value, list) else value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        same = False
    if not same:
        raise SpecError(f"Cannot write {type(value).__name__} value {text[:80]} into a script: "
                        "only numbers, strings, booleans, None and lists of them")
    return text


def _call(name: str, kwargs: dict[str, object]) -> str:
    for key in kwargs:
        if not key.isidentifier():
            raise SpecError(f"Cannot write the setting {key!r} into a script: it is not a Python name")
    return f"{name}({', '.join(f'{key}={literal(value)}' for key, value in kwargs.items())})"


def layer_code(layer: LayerSpec) -> str:
    """One `keras.layers.X(...)` call with every registry param spelled out, as build_model passes them."""
    layer_type = get_layer_type(layer.type)
    if layer_type is None:
        raise SpecError(f"Cannot export the layer {layer.name!r}: its type {layer.type!r} is not in the registry")
    if layer_type.keras_class in UNEXPORTABLE:
        raise SpecError(f"Cannot export the layer {layer.name!r} as code: {UNEXPORTABLE[layer_type.keras_class]}")
    kwargs = {p.key: p.to_keras(layer.params.get(p.name, p.default)) for p in layer_type.params}
    # Arguments Layerlab sets itself (e.g. RandomContrast's value_range), when the registry has them.
    kwargs.update(dict(getattr(layer_type, "fixed", ())))
    where = "" if layer_type.keras_class in SCRIPT_LAYERS else "keras.layers."
    return _call(f"{where}{layer_type.keras_class}", {**kwargs, "name": layer.name})


def _compile_parts(spec: ModelSpec) -> dict[str, str]:
    entry = OPTIMIZERS[spec.compile.optimizer]
    optimizer_kwargs: dict[str, object] = {"learning_rate": spec.compile.learning_rate}
    optimizer_kwargs.update({name: getattr(spec.compile, name) for name in entry["params"]})
    loss_class = LOSSES[spec.compile.loss]["class"]
    activation = output_activation(spec)
    if loss_class == "MeanSquaredError":
        loss, comment = f"{loss_class}()", "Mean squared error between the outputs and the one-hot labels."
    elif activation in ("softmax", "sigmoid"):
        loss, comment = f"{loss_class}(from_logits=False)", f"from_logits=False: the last layer's {activation} already gives probabilities."
    else:
        loss, comment = f"{loss_class}(from_logits=True)", "from_logits=True: the last layer gives raw scores, the loss applies softmax itself."
    return {"optimizer": _call(entry["class"], optimizer_kwargs), "loss": loss, "logits_comment": comment,
            "metrics": "[" + ", ".join(literal(metric) for metric in spec.compile.metrics) + "]"}


def _data_parts(info: DatasetInfo, fit: str) -> dict[str, str]:
    if info.name in KERAS_DATASETS:
        return {"imports": _imports(*_READER_IMPORTS[info.name]),
                "loaders": _LOAD_KERAS.substitute(dataset_name=info.name) + _READERS[info.name],
                "data_help": "It downloads the data through keras.datasets; offline, pass --data with the "
                             "file or folder\nLayerlab read:",
                "example": f"--data {_EXAMPLE_PATHS[info.name]} ",
                "data_arg_help": literal(f"read {info.local_files} instead of downloading")}
    suffixes = literal(sorted(IMAGE_SUFFIXES))
    return {"imports": _imports("pathlib") + "\n\nfrom PIL import Image, ImageOps",
            "loaders": LOAD_FOLDER.substitute(fit=literal(fit), suffixes=suffixes),
            "data_help": "Pass --data with the folder Layerlab read (train/ and test/ or validation/, one "
                         "subfolder per class):",
            "example": "--data FOLDER ",
            "data_arg_help": literal("a folder with train/ and test/ (or validation/), one subfolder per class")}


def export_script(spec: ModelSpec, info: DatasetInfo, *, title: str = "the run",
                  file_name: str = "train.py", fit: str = "stretch") -> str:
    """The standalone script for `spec` trained on `info`'s dataset. `title` and `file_name` only
    appear in its docstring (made safe for it); `fit` is how an image-folder dataset's photos were
    fitted to the square (its manifest's "fit"), which the script's reader repeats."""
    if fit not in FITS:
        raise SpecError(f"`fit` must be one of: {', '.join(FITS)}. Received: fit={fit!r}")
    input_shape = tuple(spec.input_shape or info.input_shape)
    data = _data_parts(info, fit)
    safe = lambda text: "".join(ch for ch in text if ch.isalnum() or ch in " _-.()").strip()  # noqa: E731
    header = _HEADER.substitute(
        title=safe(title) or "the run", file_name=safe(file_name).replace(" ", "_") or "train.py",
        example=data["example"], data_help=data["data_help"], imports=data["imports"],
        dataset=literal(info.name), class_names=literal(list(info.class_names)),
        input_shape=literal(list(input_shape)), seed=literal(spec.fit.seed), epochs=literal(spec.fit.epochs),
        batch_size=literal(spec.fit.batch_size), validation_split=literal(spec.fit.validation_split))
    layers = "".join(_wrapped(layer_code(layer), "            ") for layer in spec.layers)
    body = _PREPARE.substitute(labels=_LABELS[spec.compile.label_mode], layers=layers, **_compile_parts(spec))
    early = ""
    if spec.fit.early_stopping_patience:
        early = Template(_EARLY_STOPPING).substitute(patience=spec.fit.early_stopping_patience)
    validation = _SPLIT_VALIDATION if info.name in KERAS_DATASETS else _GIVEN_VALIDATION
    main = _MAIN.substitute(data_arg_help=data["data_arg_help"], early_stopping=early, validation=validation)
    blocks = "".join(SCRIPT_LAYERS[name] for name in sorted({_keras_class(layer) for layer in spec.layers})
                     if name in SCRIPT_LAYERS)
    return header + data["loaders"] + blocks + body + main


def _keras_class(layer: LayerSpec) -> str | None:
    layer_type = get_layer_type(layer.type)
    return layer_type.keras_class if layer_type else None


def _wrapped(call: str, indent: str) -> str:
    """One list item; a call too long for a line gets one argument per line, as black writes it."""
    if len(indent) + len(call) < 100:
        return f"{indent}{call},\n"
    name = call.split("(", 1)[0]
    parts = ast.parse(call).body[0].value.keywords
    lines = "".join(f"{indent}    {ast.unparse(part)},\n" for part in parts)
    return f"{indent}{name}(\n{lines}{indent}),\n"


def _imports(*modules: str) -> str:
    return "\n".join(f"import {name}" for name in sorted({"argparse", *modules}))
