"""components.upload_view without a model: files are decoded one at a time, and only small copies
of each are kept."""
import gc
import io
import weakref
from types import SimpleNamespace

import numpy as np
from PIL import Image, ImageDraw

from components import upload_view

MNIST = (28, 28, 1)


def picture(size=(1600, 1200), fmt="PNG") -> bytes:
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).line([(size[0] // 3, size[1] // 4), (size[0] // 2, 3 * size[1] // 4)], fill=0, width=40)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def test_uploads_are_decoded_one_at_a_time_and_only_small_copies_are_kept(monkeypatch):
    opened: list[weakref.ref] = []
    alive_at_each_open = []
    real_open = upload_view.open_upload

    def open_upload(data, name, **kwargs):
        gc.collect()
        alive_at_each_open.append(sum(ref() is not None for ref in opened))
        image = real_open(data, name, **kwargs)
        opened.append(weakref.ref(image))
        return image

    monkeypatch.setattr(upload_view, "open_upload", open_upload)
    monkeypatch.setattr(upload_view.model_cache, "predict", lambda loaded, batch: np.full((len(batch), 10), 0.1))
    loaded = SimpleNamespace(input_shape=MNIST, class_names=tuple("0123456789"))
    files = [(f"photo-{i}.png", picture()) for i in range(4)] + [("broken.png", b"\x89PNG\r\n\x1a\n not really")]
    results = upload_view.classify_files(loaded, files, center_digit=True)
    assert alive_at_each_open == [0, 0, 0, 0, 0]
    assert [r.error is None for r in results] == [True, True, True, True, False]
    assert all(max(r.original.size) <= upload_view.THUMBNAIL_PIXELS for r in results[:4])
    assert all(r.prepared.array.shape == MNIST for r in results[:4])


def test_the_thumbnail_is_upright_and_in_a_mode_browsers_show():
    sixteen_bit = Image.fromarray(np.full((900, 600), 40_000, np.uint16))
    copy = upload_view._display_copy(sixteen_bit)
    assert copy.mode == "L" and copy.size == (112, 168)
    assert np.asarray(copy).min() == round(40_000 / 257)  # scaled to 8 bits, not clipped to white


def test_a_file_over_the_cap_is_refused_with_both_sizes():
    (result,) = upload_view.classify_files(SimpleNamespace(input_shape=MNIST, class_names=()),
                                           [("big.png", bytes(3 * 2**20))], center_digit=True, max_bytes=2 * 2**20)
    assert result.error == "big.png is 3 MB; the limit is 2 MB"


class _BigUpload:
    """An UploadedFile's face: a name, a size known without reading, and bytes that must not be read."""

    name, size = "big.png", 30 * 2**20

    def getvalue(self):
        raise AssertionError("an upload over the cap was read")


def test_an_uploaded_file_over_the_cap_is_refused_by_its_size_before_a_byte_is_read():
    (result,) = upload_view.classify_files(SimpleNamespace(input_shape=MNIST, class_names=()),
                                           [("big.png", _BigUpload())], center_digit=True, max_bytes=25 * 2**20)
    assert result.error == "big.png is 30 MB; the limit is 25 MB"
