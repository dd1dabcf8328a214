"""Tests for pipelines.datasets: the catalog, offline-first loading, and the input pipeline.

Everything runs offline: real MNIST / Fashion-MNIST come from the shared folder, CIFAR-10 and the
Keras-cache layouts are written into tmp folders, and the download is monkeypatched.
"""
import gzip
import io
import pickle
import struct
import tarfile
import time

import numpy as np
import pytest

from pipelines.data.catalog import CATALOG, Dataset, DatasetInfo, class_counts, get_info
from pipelines.data.inputs import make_inputs, scale_images
from pipelines.data.locate import clear_cache, load, locate, looked_in
from pipelines.errors import DatasetError


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test may see the real ~/.keras cache, a LAYERLAB_DATA_DIR, or another test's loads."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(home / ".keras"))
    monkeypatch.delenv("LAYERLAB_DATA_DIR", raising=False)
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def keras_cache(tmp_path):
    path = tmp_path / "home" / ".keras" / "datasets"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def no_network(monkeypatch):
    """Make every keras.datasets download fail at once, as it does offline; record the attempts."""
    import keras

    attempts = []

    def fail():
        attempts.append(True)
        raise Exception("no network")

    for name in CATALOG:
        monkeypatch.setattr(getattr(keras.datasets, name), "load_data", fail)
    return attempts


# --- Writers for small files in the real formats -------------------------------------------


def write_mnist_npz(path, n_train=30, n_test=10, fill=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=np.full((n_train, 28, 28), fill, np.uint8),
        y_train=rng.integers(0, 10, n_train).astype(np.uint8),
        x_test=np.full((n_test, 28, 28), fill, np.uint8),
        y_test=rng.integers(0, 10, n_test).astype(np.uint8),
    )
    return path


def idx_bytes(array, magic=None):
    array = np.asarray(array, np.uint8)
    magic = (0x08 << 8) | array.ndim if magic is None else magic
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + array.tobytes()


def write_fashion_folder(folder, n_train=12, n_test=6):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return folder


CIFAR_PER_BATCH = 20


def cifar_batches():
    """Six batches in the real pickle layout; image 0 of every batch is pure red."""
    rng = np.random.default_rng(2)
    batches = {}
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        data = rng.integers(0, 256, (CIFAR_PER_BATCH, 3072), dtype=np.uint8)
        data[0, :1024], data[0, 1024:] = 255, 0  # rows are R plane, G plane, B plane
        batches[name] = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, CIFAR_PER_BATCH).tolist(),
            b"data": data,
            b"filenames": [f"img{i}.png".encode() for i in range(CIFAR_PER_BATCH)],
        }
    return batches


def write_cifar_folder(folder):
    folder.mkdir(parents=True)
    for name, batch in cifar_batches().items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def write_cifar_tarball(path):
    with tarfile.open(path, "w:gz") as tar:
        for name, batch in cifar_batches().items():
            payload = pickle.dumps(batch, protocol=5)
            member = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
    return path


# --- Catalog --------------------------------------------------------------------------------


def test_catalog_describes_the_three_datasets():
    assert list(CATALOG) == ["mnist", "fashion_mnist", "cifar10"]
    fashion = get_info("fashion_mnist")
    assert fashion.title == "Fashion-MNIST"
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[-1] == "Ankle boot"
    assert get_info("mnist").class_names == tuple("0123456789")
    cifar = get_info("cifar10")
    assert cifar.input_shape == (32, 32, 3) and cifar.class_names[-1] == "truck"
    assert all(info.num_classes == 10 for info in CATALOG.values())
    assert get_info("mnist").licence == "CC BY-SA 3.0"


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(DatasetError, match="Unknown dataset 'mnsit'. Expected one of: mnist, fashion_mnist, cifar10"):
        get_info("mnsit")
    with pytest.raises(DatasetError, match="Expected one of"):
        load("imagenet")


# --- Loading the real offline data ----------------------------------------------------------


def test_loads_mnist_from_a_data_dir_holding_mnist_npz(shared_datasets):
    ds = load("mnist", shared_datasets / "mnist-sample", download=False)
    assert ds.x_train.shape == (5000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.x_train.dtype == np.uint8
    assert ds.y_train.shape == (5000,) and ds.y_train.dtype == np.int64
    assert set(np.unique(ds.y_train)) == set(range(10))
    assert ds.origin == str((shared_datasets / "mnist-sample" / "mnist.npz").resolve())
    for array in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        assert not array.flags.writeable
    with pytest.raises(ValueError):
        ds.x_train[0, 0, 0, 0] = 1
    assert class_counts(ds) == [500] * 10
    assert sum(class_counts(ds, "test")) == 10000


def test_loads_fashion_mnist_idx_files(shared_datasets):
    ds = load("fashion_mnist", shared_datasets, download=False)
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.x_train.dtype == np.uint8 and ds.y_test.dtype == np.int64
    assert ds.y_train.min() == 0 and ds.y_train.max() == 9
    assert class_counts(ds) == [6000] * 10
    assert load("fashion_mnist", shared_datasets, download=False) is ds  # cached


def test_class_counts_rejects_unknown_split(shared_datasets):
    ds = load("mnist", shared_datasets / "mnist-sample", download=False)
    with pytest.raises(DatasetError, match="split='val'"):
        class_counts(ds, "val")


# --- CIFAR-10 ---------------------------------------------------------------------------------


def check_cifar(ds):
    assert ds.x_train.shape == (5 * CIFAR_PER_BATCH, 32, 32, 3)
    assert ds.x_test.shape == (CIFAR_PER_BATCH, 32, 32, 3)
    assert ds.y_train.shape == (5 * CIFAR_PER_BATCH,) and ds.y_train.dtype == np.int64
    for first in (ds.x_train[0], ds.x_train[CIFAR_PER_BATCH], ds.x_test[0]):
        assert (first[:, :, 0] == 255).all() and (first[:, :, 1:] == 0).all()
    expected = cifar_batches()["data_batch_2"][b"data"][1].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(ds.x_train[CIFAR_PER_BATCH + 1], expected)


def test_loads_cifar10_from_the_batches_folder(tmp_path):
    write_cifar_folder(tmp_path / "data" / "cifar-10-batches-py")
    ds = load("cifar10", tmp_path / "data", download=False)
    check_cifar(ds)
    assert ds.origin.endswith("cifar-10-batches-py")


def test_loads_cifar10_from_the_tarball_without_extracting(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_cifar_tarball(data_dir / "cifar-10-python.tar.gz")
    ds = load("cifar10", data_dir, download=False)
    check_cifar(ds)
    assert ds.origin.endswith("cifar-10-python.tar.gz")
    assert sorted(p.name for p in data_dir.iterdir()) == ["cifar-10-python.tar.gz"]


def test_cifar_pickle_cannot_run_code(tmp_path):
    folder = write_cifar_folder(tmp_path / "data" / "cifar-10-batches-py")

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    with pytest.raises(DatasetError, match="test_batch.*builtins.print"):
        load("cifar10", tmp_path / "data", download=False)


# --- Lookup order ----------------------------------------------------------------------------


def test_data_dir_wins_over_keras_cache(tmp_path, keras_cache):
    write_mnist_npz(keras_cache / "mnist.npz", n_train=30)
    write_mnist_npz(tmp_path / "data" / "mnist.npz", n_train=40)
    ds = load("mnist", tmp_path / "data", download=False)
    assert len(ds.x_train) == 40
    assert ds.origin == str((tmp_path / "data" / "mnist.npz").resolve())


def test_env_var_names_the_data_dir(tmp_path, monkeypatch):
    write_mnist_npz(tmp_path / "data" / "mnist.npz", n_train=40)
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(tmp_path / "data"))
    assert len(load("mnist", download=False).x_train) == 40
    assert locate("mnist") == str((tmp_path / "data" / "mnist.npz").resolve())


def test_keras_cache_is_used_without_a_data_dir(keras_cache):
    write_mnist_npz(keras_cache / "mnist.npz", n_train=30)
    write_fashion_folder(keras_cache / "fashion-mnist")
    write_cifar_folder(keras_cache / "cifar-10-batches-py-target" / "cifar-10-batches-py")
    assert len(load("mnist", download=False).x_train) == 30
    assert load("fashion_mnist", download=False).x_train.shape == (12, 28, 28, 1)
    check_cifar(load("cifar10", download=False))
    assert locate("fashion_mnist") == str(keras_cache / "fashion-mnist")


def test_locate_and_looked_in(tmp_path, keras_cache):
    data_dir = tmp_path / "data"
    assert locate("mnist", data_dir) is None
    assert looked_in("mnist", data_dir) == [
        str(data_dir.resolve() / "mnist.npz"),
        str(data_dir.resolve() / "mnist" / "mnist.npz"),
        str(data_dir.resolve() / "mnist-sample" / "mnist.npz"),
        str(keras_cache / "mnist.npz"),
    ]
    assert looked_in("cifar10", data_dir)[:2] == [
        str(data_dir.resolve() / "cifar-10-batches-py"),
        str(data_dir.resolve() / "cifar-10-python.tar.gz"),
    ]
    (keras_cache / "fashion-mnist").mkdir()
    assert locate("fashion_mnist", data_dir) is None  # an empty folder is not a copy


def test_download_is_last_and_its_failure_is_explained(tmp_path, keras_cache, no_network):
    data_dir = tmp_path / "empty"
    start = time.perf_counter()
    with pytest.raises(DatasetError) as caught:
        load("mnist", data_dir)
    assert time.perf_counter() - start < 30  # it gave up rather than hanging (no_network refuses at once)
    assert no_network == [True]
    message = str(caught.value)
    assert "MNIST" in message and "(mnist)" in message
    for path in looked_in("mnist", data_dir):
        assert path in message
    assert "mnist.npz (Keras' layout" in message
    assert "LAYERLAB_DATA_DIR" in message and "--data-dir" in message
    assert "download" in message and "no network" in message


def test_a_successful_download_is_normalised(monkeypatch):
    import keras

    def fake_load_data():
        x = np.zeros((8, 28, 28), np.uint8)
        y = np.arange(8, dtype=np.uint8)
        return (x, y), (x[:4], y[:4])

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fake_load_data)
    ds = load("mnist")
    assert ds.x_train.shape == (8, 28, 28, 1) and ds.y_train.dtype == np.int64
    assert ds.origin == "downloaded through keras.datasets.mnist"


def test_without_download_the_message_says_so(tmp_path, no_network):
    with pytest.raises(DatasetError, match=r"(?s)fashion-mnist/ with the four official IDX.*download=False"):
        load("fashion_mnist", tmp_path, download=False)
    assert no_network == []


# --- Corrupt files ---------------------------------------------------------------------------


def test_truncated_gz_names_the_file(tmp_path, no_network):
    folder = write_fashion_folder(tmp_path / "fashion-mnist")
    broken = folder / "train-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:200])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz is not a readable gzip file"):
        load("fashion_mnist", tmp_path)
    assert no_network == []  # a broken file in the data dir is not papered over by a download


def test_wrong_magic_names_the_file(tmp_path):
    folder = write_fashion_folder(tmp_path / "fashion-mnist")
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(6), magic=0x0803)))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte.gz is not an IDX file.*0x00000803"):
        load("fashion_mnist", tmp_path, download=False)


def test_idx_size_mismatch_names_the_file(tmp_path):
    folder = write_fashion_folder(tmp_path / "fashion-mnist")
    images = folder / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(idx_bytes(np.zeros((6, 28, 28)))[:-5]))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz holds 4699 bytes"):
        load("fashion_mnist", tmp_path, download=False)


def test_corrupt_npz_names_the_file(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(DatasetError, match=r"mnist.npz is not a readable .npz file"):
        load("mnist", tmp_path, download=False)


def test_incomplete_folder_names_the_missing_files(tmp_path):
    folder = write_fashion_folder(tmp_path / "fashion-mnist")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="fashion-mnist lacks t10k-labels-idx1-ubyte.gz"):
        load("fashion_mnist", tmp_path, download=False)


def test_a_corrupt_data_dir_file_falls_back_to_the_keras_cache(tmp_path, keras_cache):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist.npz").write_bytes(b"garbage")
    write_mnist_npz(keras_cache / "mnist.npz", n_train=30)
    assert load("mnist", tmp_path / "data", download=False).origin == str(keras_cache / "mnist.npz")


# --- The input pipeline ----------------------------------------------------------------------


@pytest.fixture
def mnist(shared_datasets):
    return load("mnist", shared_datasets / "mnist-sample", download=False)


def test_validation_comes_from_the_training_set(mnist):
    inputs = make_inputs(mnist, batch_size=64, validation_split=0.2)
    assert (inputs.n_train, inputs.n_val, inputs.n_test) == (4000, 1000, 10000)
    assert inputs.n_train + inputs.n_val == len(mnist.x_train)
    assert inputs.steps_per_epoch == 62  # 4000 // 64: the last, partial batch is left out of training
    assert sum(1 for _ in inputs.train) == 62 and sum(len(y) for _, y in inputs.val) == 1000
    assert sum(int(y.shape[0]) for _, y in inputs.val) == 1000
    assert sum(int(y.shape[0]) for _, y in inputs.test) == 10000
    assert sum(int(y.shape[0]) for _, y in inputs.train) == 62 * 64


def test_batches_are_scaled_floats_with_sparse_labels(mnist):
    inputs = make_inputs(mnist, batch_size=32, validation_split=0.0, shuffle=False)
    assert inputs.val is None and inputs.n_val == 0
    x, y = next(iter(inputs.train))
    assert x.shape == (32, 28, 28, 1) and x.dtype.name == "float32"
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0
    assert y.shape == (32,) and y.dtype.is_integer
    np.testing.assert_array_equal(x.numpy(), scale_images(mnist.x_train[:32]))
    np.testing.assert_array_equal(y.numpy(), mnist.y_train[:32])


def test_every_pipeline_runs_without_the_autotuner(mnist):
    """Its background tuning took cores from the training step in bursts (pipelines/data/inputs.py)."""
    inputs = make_inputs(mnist, batch_size=32)
    for pipeline in (inputs.train, inputs.val, inputs.test):
        assert pipeline.options().autotune.enabled is False


def test_one_hot_labels(mnist):
    inputs = make_inputs(mnist, batch_size=16, label_mode="one_hot")
    x, y = next(iter(inputs.test))
    assert y.shape == (16, 10) and y.dtype.name == "float32"
    np.testing.assert_array_equal(y.numpy().argmax(axis=1), mnist.y_test[:16])
    np.testing.assert_array_equal(y.numpy().sum(axis=1), np.ones(16))


def test_binary_labels_need_two_classes(mnist):
    with pytest.raises(DatasetError, match="2 classes"):
        make_inputs(mnist, batch_size=16, label_mode="binary")
    two_class = DatasetInfo(
        "digits01", "0 vs 1", ("0", "1"), (28, 28, 1), "test", "test", "test"
    )
    keep_train, keep_test = mnist.y_train < 2, mnist.y_test < 2
    subset = Dataset(
        two_class, mnist.x_train[keep_train], mnist.y_train[keep_train],
        mnist.x_test[keep_test], mnist.y_test[keep_test], "test",
    )
    _, y = next(iter(make_inputs(subset, batch_size=8, label_mode="binary").train))
    assert y.shape == (8, 1) and y.dtype.name == "float32"


def test_bad_settings_name_the_argument(mnist):
    with pytest.raises(DatasetError, match=r"`validation_split`.*validation_split=0.7"):
        make_inputs(mnist, batch_size=32, validation_split=0.7)
    with pytest.raises(DatasetError, match="Expected one of: sparse, one_hot, binary"):
        make_inputs(mnist, batch_size=32, label_mode="categorical")
    with pytest.raises(DatasetError, match="batch_size=0"):
        make_inputs(mnist, batch_size=0)


def test_same_seed_same_split(mnist):
    def val_labels(seed):
        inputs = make_inputs(mnist, batch_size=500, validation_split=0.1, seed=seed)
        return np.concatenate([y.numpy() for _, y in inputs.val])

    np.testing.assert_array_equal(val_labels(3), val_labels(3))
    assert not np.array_equal(val_labels(3), val_labels(4))


def test_training_order_is_reshuffled_each_epoch(mnist):
    inputs = make_inputs(mnist, batch_size=5000, validation_split=0.0, seed=1)
    first, second = (next(iter(inputs.train))[1].numpy() for _ in range(2))
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)


def test_scale_images_refuses_floats():
    assert scale_images(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]
    with pytest.raises(DatasetError, match="dtype=float32"):
        scale_images(np.zeros(3, np.float32))
