"""Drawings and uploads become model inputs: MNIST's normalisation, inversion, channels, safe opening."""
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipelines.errors import LayerlabError
from pipelines.inference.preprocess import Prepared, open_upload, preprocess_drawing, preprocess_image
from pipelines.inference.upload_checks import ALLOWED_TEXT
from pipelines.errors import UploadError

MNIST = (28, 28, 1)
REPO = Path(__file__).resolve().parents[2]


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    total = image.sum()
    rows, cols = np.indices(image.shape)
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def bbox_size(image: np.ndarray, threshold: float = 0.0) -> tuple[int, int]:
    rows = np.flatnonzero((image > threshold).any(axis=1))
    cols = np.flatnonzero((image > threshold).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def canvas(draw=None, size=280) -> np.ndarray:
    """A drawing canvas's RGBA output: white strokes on opaque black."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 255))
    if draw:
        draw(ImageDraw.Draw(image))
    return np.asarray(image).copy()


def small_seven_top_left(d: ImageDraw.ImageDraw) -> None:
    d.line([(20, 20), (70, 20), (40, 100)], fill=(255, 255, 255, 255), width=12)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def digit_picture(ink: int, background: int, size=(112, 112), mode="L") -> Image.Image:
    """A '7'-like glyph drawn off-centre."""
    image = Image.new(mode, size, background)
    ImageDraw.Draw(image).line([(15, 15), (60, 15), (35, 80)], fill=ink, width=8)
    return image


# --- Drawings -------------------------------------------------------------------------------


def test_small_off_centre_drawing_is_scaled_to_20_and_centred_by_mass():
    out = preprocess_drawing(canvas(small_seven_top_left), MNIST)
    assert out.shape == MNIST and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0 and out.max() > 0.9
    glyph = out[..., 0]
    row, col = centre_of_mass(glyph)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1
    assert max(bbox_size(glyph)) in (19, 20, 21)


def test_a_thin_tall_stroke_keeps_its_aspect_ratio():
    out = preprocess_drawing(canvas(lambda d: d.rectangle((200, 150, 215, 270), fill="white")), MNIST)[..., 0]
    height, width = bbox_size(out, threshold=0.05)
    assert height in (19, 20, 21)
    assert 2 <= width <= 4  # 16/121 of 20 pixels, plus anti-aliasing


def test_blank_and_nearly_blank_canvases_give_none():
    assert preprocess_drawing(canvas(), MNIST) is None
    faint = canvas()
    faint[100:110, 100:110, :3] = 10  # below the noise threshold
    assert preprocess_drawing(faint, MNIST) is None
    assert preprocess_drawing(canvas(), (32, 32, 3)) is None


def test_transparent_ink_does_not_count():
    drawing = canvas(small_seven_top_left)
    drawing[..., 3] = 0
    assert preprocess_drawing(drawing, MNIST) is None
    drawing[..., 3] = 255
    drawing[150:200, 150:200] = (255, 255, 255, 0)  # a white square nobody can see
    reference = preprocess_drawing(canvas(small_seven_top_left), MNIST)
    np.testing.assert_allclose(preprocess_drawing(drawing, MNIST), reference)


def test_other_input_shapes_get_the_whole_drawing_resized_with_grey_in_every_channel():
    out = preprocess_drawing(canvas(small_seven_top_left), (32, 32, 3))
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert out[:16, :16].sum() > 0 and out[16:, 16:].sum() == 0  # still in the top-left corner


def test_drawing_preprocessing_is_repeatable():
    """How fast: bench/latency.py. Here that the same drawing always gives the same tensor."""
    drawing = canvas(lambda d: d.ellipse((40, 30, 240, 250), outline="white", width=20))
    first = preprocess_drawing(drawing, MNIST)
    for _ in range(5):
        np.testing.assert_array_equal(preprocess_drawing(drawing, MNIST), first)


@pytest.mark.parametrize("bad", [np.zeros((28, 28), np.uint8), np.zeros((28, 28, 4), np.float32)])
def test_drawing_of_the_wrong_kind_is_refused(bad):
    with pytest.raises(ValueError, match="rgba"):
        preprocess_drawing(bad, MNIST)


def test_unusable_input_shapes_are_refused():
    with pytest.raises(ValueError, match="input_shape"):
        preprocess_drawing(canvas(), (28, 28))
    with pytest.raises(ValueError, match="input_shape"):
        preprocess_image(Image.new("L", (8, 8)), (28, 28, 2))


# --- Uploaded pictures ----------------------------------------------------------------------


def test_dark_ink_on_a_light_background_is_inverted():
    prepared = preprocess_image(digit_picture(ink=20, background=235), MNIST)
    assert isinstance(prepared, Prepared)
    assert prepared.inverted
    assert any(note.startswith("inverted: the background was light") for note in prepared.notes)
    glyph = prepared.array[..., 0]
    assert glyph[0].max() == 0 and glyph.max() > 0.9  # light ink on a black field, as in MNIST
    row, col = centre_of_mass(glyph)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1
    assert max(bbox_size(glyph)) in (19, 20, 21)


def test_light_ink_on_a_dark_background_is_not_inverted():
    prepared = preprocess_image(digit_picture(ink=240, background=10), MNIST)
    assert not prepared.inverted
    assert not any(note.startswith("inverted") for note in prepared.notes)
    assert prepared.array[0, :, 0].max() == 0 and prepared.array.max() > 0.9


def test_inversion_can_be_forced_either_way():
    light = digit_picture(ink=20, background=235)
    kept = preprocess_image(light, MNIST, invert=False, center_digit=False)
    assert not kept.inverted and kept.array[0, 0, 0] > 0.9
    forced = preprocess_image(digit_picture(ink=240, background=10), MNIST, invert=True, center_digit=False)
    assert forced.inverted and "inverted, as asked" in forced.notes
    with pytest.raises(ValueError, match="invert"):
        preprocess_image(light, MNIST, invert="yes")


def test_a_photo_of_a_small_digit_on_uneven_paper_is_cut_out_and_centred():
    rng = np.random.default_rng(0)
    rows, cols = np.indices((300, 400))
    paper = 200 + 25 * cols / 400 + rng.normal(0, 4, (300, 400))  # shading and grain
    image = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    ImageDraw.Draw(image).line([(280, 200), (320, 200), (295, 270)], fill=50, width=6)  # small, bottom right
    prepared = preprocess_image(image.convert("RGB"), MNIST)
    glyph = prepared.array[..., 0]
    assert prepared.inverted
    assert (glyph > 0.1).mean() < 0.3  # only the digit, not the whole sheet
    row, col = centre_of_mass(glyph)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1
    assert max(bbox_size(glyph, threshold=0.1)) in (19, 20, 21)


def test_a_bold_digit_filling_most_of_the_picture_is_still_found():
    image = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(image).rectangle((10, 5, 90, 95), fill=0)  # ink on 3/4 of the picture
    prepared = preprocess_image(image, MNIST)
    assert prepared.inverted
    assert max(bbox_size(prepared.array[..., 0], threshold=0.5)) in (19, 20, 21)


def test_a_plain_picture_falls_back_to_resizing():
    prepared = preprocess_image(Image.new("L", (112, 112), 0), MNIST)
    assert prepared.array.shape == MNIST and prepared.array.max() == 0
    assert "resized 112x112 to 28x28" in prepared.notes
    assert any("no digit" in note for note in prepared.notes)


def test_colour_uploads_become_grey_for_grey_models_and_grey_uploads_colour_for_colour_models():
    grey = digit_picture(ink=240, background=10, size=(64, 48))
    colour = grey.convert("RGB")

    for_grey_model = preprocess_image(colour, MNIST, center_digit=False)
    assert for_grey_model.array.shape == MNIST
    assert "converted RGB to grayscale" in for_grey_model.notes
    assert "resized 64x48 to 28x28" in for_grey_model.notes

    for_colour_model = preprocess_image(grey, (32, 32, 3))
    assert for_colour_model.array.shape == (32, 32, 3)
    assert "converted grayscale to RGB" in for_colour_model.notes
    assert not for_colour_model.inverted  # automatic inversion is for grey models only

    # And back again: the grey copied into RGB is the picture a grey model sees.
    np.testing.assert_array_equal(for_colour_model.array[..., 0], for_colour_model.array[..., 2])
    back = preprocess_image(colour, (32, 32, 1), center_digit=False).array[..., 0]
    np.testing.assert_allclose(for_colour_model.array[..., 1], back, atol=1e-6)


def test_transparent_pngs_keep_their_ink_whatever_its_colour():
    dark_ink = Image.new("RGBA", (56, 56), (0, 0, 0, 0))
    ImageDraw.Draw(dark_ink).line([(10, 10), (40, 45)], fill=(0, 0, 0, 255), width=6)
    prepared = preprocess_image(Image.open(io.BytesIO(encode(dark_ink, "PNG"))), MNIST)
    assert any("on white" in note for note in prepared.notes)
    assert prepared.inverted and prepared.array.max() > 0.9 and prepared.array[0].max() == 0

    light_ink = Image.new("LA", (56, 56), (255, 0))
    ImageDraw.Draw(light_ink).line([(10, 10), (40, 45)], fill=(255, 255), width=6)
    prepared = preprocess_image(light_ink, MNIST)
    assert any("on black" in note for note in prepared.notes)
    assert not prepared.inverted and prepared.array.max() > 0.9


def test_sixteen_bit_grey_is_scaled_not_clipped():
    ramp = (np.arange(28 * 28, dtype=np.uint32).reshape(28, 28) * 83).astype(np.uint16)
    image = Image.open(io.BytesIO(encode(Image.fromarray(ramp), "PNG")))
    assert image.mode.startswith("I;16")
    prepared = preprocess_image(image, MNIST, invert=False, center_digit=False)
    np.testing.assert_allclose(prepared.array[..., 0], ramp / 65535, atol=1 / 255)


def test_exif_orientation_is_applied():
    # Stored 60 wide and 30 high with a white top-left corner; Orientation=6 means "rotate 90
    # degrees clockwise to display", which makes it 30 wide and 60 high, white top-right.
    stored = Image.new("L", (60, 30), 0)
    stored.paste(255, (0, 0, 30, 15))
    exif = Image.Exif()
    exif[0x0112] = 6
    upload = open_upload(encode(stored, "JPEG", exif=exif, quality=95), "phone.jpg")
    prepared = preprocess_image(upload, MNIST, invert=False, center_digit=False)
    assert any("EXIF orientation" in note for note in prepared.notes)
    assert "resized 30x60 to 28x28" in prepared.notes
    quadrants = prepared.array[..., 0].reshape(2, 14, 2, 14).mean(axis=(1, 3))
    assert quadrants[0, 1] > 0.8 and quadrants[0, 0] < 0.2 and quadrants[1].max() < 0.2


def test_preprocessing_is_deterministic():
    image = digit_picture(ink=30, background=220)
    first, second = preprocess_image(image, MNIST), preprocess_image(image, MNIST)
    np.testing.assert_array_equal(first.array, second.array)
    assert first.notes == second.notes


# --- Opening uploads safely -----------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header announces width x height 1-bit pixels, with (almost) no data."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def noise_png(size=(64, 64)) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP"])
def test_every_allowed_format_opens_fully_decoded(fmt):
    data = encode(digit_picture(ink=0, background=255, mode="RGB"), fmt)
    image = open_upload(data, f"digit.{fmt.lower()}")
    assert image.size == (112, 112)
    assert image.im is not None  # decoded, not lazy


def test_formats_are_told_by_content_not_by_name():
    assert open_upload(encode(digit_picture(0, 255), "PNG"), "really-a-png.jpg").format == "PNG"
    with pytest.raises(UploadError, match="is a TIFF image"):
        open_upload(encode(digit_picture(0, 255), "TIFF"), "looks-like.png")


def test_an_empty_file_is_refused():
    with pytest.raises(UploadError, match=r"^empty\.png is empty"):
        open_upload(b"", "empty.png")


def test_random_bytes_are_not_an_image():
    data = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    with pytest.raises(UploadError, match=f"notes.png is not an image.*Allowed formats: {ALLOWED_TEXT}"):
        open_upload(data, "notes.png")


def test_a_truncated_png_is_refused():
    data = noise_png()
    with pytest.raises(UploadError, match="half.png is truncated or corrupt"):
        open_upload(data[: len(data) // 2], "half.png")


def test_too_many_bytes_are_refused_with_both_sizes():
    with pytest.raises(UploadError, match=r"^big\.png is 31\.2 MB; the limit is 25 MB$"):
        open_upload(bytes(int(31.2 * 2**20)), "big.png")
    data = noise_png()
    with pytest.raises(UploadError, match=r"small\.png is \d+\.\d KB; the limit is 1000 bytes"):
        open_upload(data, "small.png", max_bytes=1000)


def test_too_many_pixels_are_refused_before_decoding():
    with pytest.raises(UploadError, match=r"huge\.png is 10000x10000 = 100,000,000 pixels; the limit is 1,000,000"):
        open_upload(png_header(10_000, 10_000), "huge.png", max_pixels=1_000_000)


def test_pillows_decompression_bomb_guard_is_an_upload_error_too():
    # 100 megapixels: Pillow only warns; 400 megapixels: Pillow refuses. Both must be refused.
    with pytest.raises(UploadError, match=r"bomb-warning\.png is 10000x10000 = 100,000,000 pixels; the limit is 89,"):
        open_upload(png_header(10_000, 10_000), "bomb-warning.png", max_pixels=10**10)
    with pytest.raises(UploadError, match=r"bomb\.png has more than [\d,]+ pixels, too many to decode safely"):
        open_upload(png_header(20_000, 20_000), "bomb.png", max_pixels=10**10)


@pytest.mark.parametrize("fmt", ["TIFF", "ICO"])
def test_valid_images_of_other_formats_are_refused_with_the_allowed_list(fmt):
    data = encode(Image.new("RGB", (32, 32), "red"), fmt)
    with pytest.raises(UploadError, match=f"is a {fmt} image.*Allowed formats: {ALLOWED_TEXT}"):
        open_upload(data, f"image.{fmt.lower()}")


def test_upload_errors_are_layerlab_errors():
    assert issubclass(UploadError, LayerlabError)


def test_an_animated_gif_gives_its_first_frame():
    frames = [Image.new("L", (40, 40), 0), Image.new("L", (40, 40), 255)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    image = open_upload(data, "blink.gif")
    assert image.n_frames == 2 and image.tell() == 0
    assert np.asarray(image.convert("L")).max() == 0
    prepared = preprocess_image(image, MNIST, invert=False, center_digit=False)
    assert "used the first of its 2 frames" in prepared.notes
    assert prepared.array.max() == 0


def test_preprocessing_does_not_import_tensorflow():
    """The drawing canvas and the upload widget use this module before any model is loaded."""
    code = "import sys, pipelines.inference.preprocess\nprint(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
