"""Turning a drawing or an uploaded picture into the input array a model expects.

MNIST's digits were made by fitting each digit's bounding box into 20x20 pixels (keeping its
aspect ratio, with anti-aliasing) and placing the result on a 28x28 field so that its centre of
mass sits in the middle. A digit drawn in a corner of a canvas, or photographed small on a sheet
of paper, only looks like MNIST to a model after the same treatment, so both paths here apply it
to 28x28x1 inputs. Other inputs (CIFAR-10's 32x32x3) are simply resized.

Uploads are untrusted bytes: `open_upload` checks them by content, refuses pictures too large to
decode safely before decoding them (`upload_checks`), and turns every failure into an
`UploadError` whose message names the file. What is decoded is shrunk to WORK_SIZE before any
conversion, so the work after decoding never makes a full-size copy of a wider kind (16-bit grey
to float, say).

numpy and Pillow only: pages import this without paying for TensorFlow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import ExifTags, Image, ImageFilter

from pipelines.inference.upload_checks import (MAX_DECODED_BYTES, MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, SIZE_ON_FILE,
                                               check_decoded_bytes, check_file_size, decode, draft_jpeg, open_header)

MNIST_SHAPE = (28, 28, 1)
GLYPH_BOX = 20  # the longest side of a digit in an MNIST image
CENTRE_OF_MASS = (14.0, 14.0)  # (row, column): where MNIST's test digits have theirs, on average
INK_THRESHOLD = 0.1  # fainter ink (of 1.0) is noise when finding a digit's bounding box
MIN_CONTRAST = 40  # grey levels between a photo's background and its ink below which it holds no digit
NOISE_SIGMAS = 4.0  # how far above the background level, in robust standard deviations, ink starts
WORK_SIZE = 1024  # uploads are reduced to at most this many pixels a side before any other work

# Modes whose pixels cannot be averaged while shrinking (palette indices, single bits).
_UNSHRINKABLE = ("1", "P", "PA")
# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose).
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
            7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


@dataclass(frozen=True, eq=False)
class Prepared:
    """An image ready for a model: float32 in [0, 1] of the model's input shape, and what was done."""

    array: np.ndarray
    inverted: bool
    notes: tuple[str, ...]


# --- Shared by both paths -------------------------------------------------------------------


def _check_input_shape(input_shape) -> tuple[int, int, int]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape) < 1:
        raise ValueError(
            "`input_shape` must be (height, width, channels) with 1 or 3 channels. "
            f"Received: input_shape={tuple(input_shape)!r}"
        )
    return shape


def _mnist_layout(ink: np.ndarray) -> np.ndarray | None:
    """MNIST's normalisation of light ink (H, W) float32 in [0, 1]: the ink's bounding box fitted
    into 20x20 and placed on 28x28 by its centre of mass. None when there is no ink."""
    mask = ink > INK_THRESHOLD
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    glyph = np.ascontiguousarray(ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], dtype=np.float32)
    height, width = glyph.shape
    scale = GLYPH_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    glyph = np.asarray(Image.fromarray(glyph).resize(size, Image.Resampling.LANCZOS))
    glyph = np.clip(glyph, 0.0, 1.0)  # Lanczos rings a little past the input's range
    total = float(glyph.sum())
    if total <= 0.0:
        return None
    new_height, new_width = glyph.shape
    com_row = float(glyph.sum(axis=1) @ np.arange(new_height)) / total
    com_col = float(glyph.sum(axis=0) @ np.arange(new_width)) / total
    field_height, field_width = MNIST_SHAPE[:2]
    # Shift by whole pixels, as the classic recipe does, but never push the glyph off the field.
    top = int(np.clip(round(CENTRE_OF_MASS[0] - com_row), 0, field_height - new_height))
    left = int(np.clip(round(CENTRE_OF_MASS[1] - com_col), 0, field_width - new_width))
    out = np.zeros((field_height, field_width), np.float32)
    out[top:top + new_height, left:left + new_width] = glyph
    return out


def _resize_gray(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) float32 to (height, width) with Lanczos, kept within [0, 1]."""
    image = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32))
    return np.clip(np.asarray(image.resize((width, height), Image.Resampling.LANCZOS)), 0.0, 1.0)


def _with_channels(gray: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) to (H, W, channels), the grey copied to every channel."""
    return np.repeat(gray[..., np.newaxis], channels, axis=2).astype(np.float32, copy=False)


# --- Drawings -------------------------------------------------------------------------------


def preprocess_drawing(rgba: np.ndarray, input_shape) -> np.ndarray | None:
    """A canvas drawing (H, W, 4) uint8, white ink on black, as a model input; None if blank.

    Ink is the brightest of the red, green and blue channels, weighted by alpha where the canvas
    is not opaque. For 28x28x1 inputs the digit is normalised as MNIST's were (see the module's
    docstring); other inputs get the whole drawing resized, grey copied to every channel.
    """
    height, width, channels = _check_input_shape(input_shape)
    pixels = np.asarray(rgba)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ValueError(
            "`rgba` must be a (height, width, 4) uint8 image. "
            f"Received: dtype={pixels.dtype}, shape={pixels.shape}"
        )
    ink = np.maximum(np.maximum(pixels[..., 0], pixels[..., 1]), pixels[..., 2])
    if pixels.shape[2] == 4:
        alpha = pixels[..., 3]
        if alpha.min() < 255:
            ink = (ink.astype(np.uint16) * alpha // 255).astype(np.uint8)
    if not (ink > INK_THRESHOLD * 255).any():
        return None
    if (height, width, channels) == MNIST_SHAPE:
        mask = ink > INK_THRESHOLD * 255
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        # Crop before converting to float: the canvas is mostly background.
        crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32) / np.float32(255)
        digit = _mnist_layout(crop)
        return None if digit is None else digit[..., np.newaxis]
    gray = _resize_gray(ink.astype(np.float32) / np.float32(255), height, width)
    return _with_channels(gray, channels)


# --- Uploaded pictures ----------------------------------------------------------------------



def _standard_mode(image: Image.Image, notes: list[str]) -> Image.Image:
    """The image in L, LA, RGB or RGBA, 8 bits a channel (Pillow's own conversion clips 16-bit
    grey instead of scaling it)."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode in ("PA", "RGBa"):
        return image.convert("RGBA")
    if mode == "La":
        return image.convert("LA")
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16") or (mode == "I" and values.max(initial=0) > 255):
            values = values / 257.0
            notes.append("reduced 16-bit grey levels to 8 bits")
        elif mode == "F" and values.max(initial=0) <= 1.0:
            values = values * 255.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    return image.convert("RGB")


def _drop_alpha(image: Image.Image, notes: list[str]) -> Image.Image:
    """L or RGB: transparent parts become white behind dark ink and black behind light ink, so
    that a transparent PNG of a digit keeps its contrast whichever colour the ink is."""
    if image.mode not in ("LA", "RGBA"):
        return image
    opaque_mode = "RGB" if image.mode == "RGBA" else "L"
    alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / np.float32(255)
    if alpha.min() == 1.0:
        return image.convert(opaque_mode)
    colour = np.asarray(image.convert(opaque_mode), dtype=np.float32)
    luminance = np.asarray(image.convert("L"), dtype=np.float32)
    weight = float(alpha.sum())
    dark_ink = weight == 0.0 or float((luminance * alpha).sum()) / weight <= 127.5
    background = 255.0 if dark_ink else 0.0
    if colour.ndim == 3:
        alpha = alpha[..., np.newaxis]
    flat = colour * alpha + background * (1.0 - alpha)
    notes.append(
        f"put the transparent background on {'white' if dark_ink else 'black'}, "
        f"behind the {'dark' if dark_ink else 'light'} ink"
    )
    return Image.fromarray(np.clip(np.rint(flat), 0, 255).astype(np.uint8), opaque_mode)


def _border_median(gray: np.ndarray) -> float:
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    return float(np.median(border))


def _ink_from_photo(gray: np.ndarray) -> np.ndarray | None:
    """Light ink on a dark background (H, W) float32 in [0, 255] to ink in [0, 1], with the
    background level and its noise (a photo's paper grain, shading, JPEG artefacts) taken off
    so that only the digit is left; None when nothing stands out from the background."""
    # The border's level unless most of the picture is darker (a dark table around the sheet),
    # and the whole picture's unless the ink covers most of it (a bold digit, tightly cropped).
    background = min(_border_median(gray), float(np.median(gray)))
    # The brightest pixel that is not a lone speck: a 3x3 median removes salt noise.
    despeckled = Image.fromarray(gray.astype(np.uint8)).filter(ImageFilter.MedianFilter(3))
    peak = float(np.asarray(despeckled).max())
    if peak - background < MIN_CONTRAST:
        return None
    # The background's noise as a robust standard deviation, from its dark side, which ink never reaches.
    spread = 1.4826 * float(np.median(background - gray[gray <= background]))
    floor = background + min(NOISE_SIGMAS * spread, 0.5 * (peak - background))
    return np.clip((gray - floor) / np.float32(peak - floor), 0.0, 1.0).astype(np.float32)


def preprocess_image(
    pil_image: Image.Image,
    input_shape,
    invert: bool | Literal["auto"] = "auto",
    center_digit: bool = True,
) -> Prepared:
    """A picture (an upload, a saved drawing) as a model input, with notes on what was done.

    The first frame of an animation is used, turned upright as its EXIF orientation says, and
    converted to the model's channels (transparency on a background that contrasts with the
    ink). For 1-channel models `invert="auto"` inverts pictures with a light border, such as
    ink on paper, since MNIST-like datasets have light ink on black; `True` and `False` force
    it (and `True` also inverts colour pictures). A 28x28x1 model with `center_digit` gets the
    digit cut out of its background and normalised as MNIST's were; otherwise the picture is
    resized to the input's height and width (not keeping its aspect ratio).
    """
    height, width, channels = _check_input_shape(input_shape)
    if invert not in ("auto", True, False):
        raise ValueError(f"`invert` must be 'auto', True or False. Received: invert={invert!r}")
    notes: list[str] = []
    image, original_size = upright_and_shrunk(pil_image, WORK_SIZE, notes)
    image = _drop_alpha(image, notes)
    target_mode = "L" if channels == 1 else "RGB"
    if image.mode != target_mode:
        notes.append("converted RGB to grayscale" if channels == 1 else "converted grayscale to RGB")
        image = image.convert(target_mode)
    pixels = np.asarray(image, dtype=np.float32)
    inverted = _should_invert(pixels, channels, invert, notes)
    if inverted:
        pixels = 255.0 - pixels

    if center_digit and (height, width, channels) == MNIST_SHAPE:
        ink = _ink_from_photo(pixels)
        digit = _mnist_layout(ink) if ink is not None else None
        if digit is not None:
            notes.append(
                f"cut the digit out of its background and fitted it into {GLYPH_BOX}x{GLYPH_BOX}, "
                f"centred by its centre of mass on {width}x{height}, as MNIST's digits were"
            )
            return Prepared(digit[..., np.newaxis], inverted, tuple(notes))
        notes.append("found no digit standing out from the background, so only resized it")

    scaled = pixels / np.float32(255)
    if channels == 1:
        array = _resize_gray(scaled, height, width)[..., np.newaxis]
    else:
        array = np.stack([_resize_gray(scaled[..., c], height, width) for c in range(3)], axis=2)
    if original_size != (width, height):
        notes.append(f"resized {original_size[0]}x{original_size[1]} to {width}x{height}")
    return Prepared(array.astype(np.float32, copy=False), inverted, tuple(notes))


def upright_and_shrunk(image: Image.Image, max_side: int,
                       notes: list[str]) -> tuple[Image.Image, tuple[int, int]]:
    """The picture's first frame, upright as its EXIF orientation says, in L, LA, RGB or RGBA at 8
    bits a channel, shrunk by a whole factor to at most `max_side` a side (the image itself when
    nothing needed doing: do not change it in place); and its upright size on file. What was done
    is added to `notes`.

    The picture is shrunk in its own mode before anything else, so that no full-size copy of a
    wider kind is ever made (only palette and 1-bit pictures are converted at full size first).
    """
    if getattr(image, "is_animated", False):
        image.seek(0)
        notes.append(f"used the first of its {image.n_frames} frames")
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    width, height = image.info.get(SIZE_ON_FILE, image.size)
    if orientation in _UPRIGHT:
        notes.append("turned it upright as its EXIF orientation tag says")
        width, height = (height, width) if orientation >= 5 else (width, height)
    if image.mode in _UNSHRINKABLE:
        image = _standard_mode(image, notes)
    image = _shrunk(image, max_side)
    image = _standard_mode(image, notes)
    if orientation in _UPRIGHT:
        image = image.transpose(_UPRIGHT[orientation])
    return image, (width, height)


def _shrunk(image: Image.Image, max_side: int) -> Image.Image:
    """At most `max_side` a side, each new pixel the mean of a whole block of old ones; the image
    itself (not a copy) when it is small enough already."""
    factor = math.ceil(max(image.size) / max_side)
    if factor <= 1:
        return image
    try:
        return image.reduce(factor)
    except ValueError:  # a mode reduce() does not take (16-bit grey): a box filter does the same
        size = (math.ceil(image.width / factor), math.ceil(image.height / factor))
        return image.resize(size, Image.Resampling.BOX)


def _should_invert(pixels: np.ndarray, channels: int, invert: bool | str, notes: list[str]) -> bool:
    """Whether to invert: as asked, or for 'auto' when a 1-channel picture's border is light."""
    if invert == "auto":
        inverted = channels == 1 and _border_median(pixels) > 127.5
        if inverted:
            notes.append("inverted: the background was light, as with ink on paper")
        elif channels == 1:
            notes.append("not inverted: the background is dark already, as in MNIST")
    else:
        inverted = bool(invert)
        if inverted:
            notes.append("inverted, as asked")
    return inverted


# --- Opening uploads safely -----------------------------------------------------------------


def open_upload(
    data: bytes,
    filename: str,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_UPLOAD_PIXELS,
    max_decoded_bytes: int = MAX_DECODED_BYTES,
) -> Image.Image:
    """The uploaded image, checked by its content (never its name) and fully decoded.

    Its size, pixel count and the memory its pixels will take (`upload_checks.decoded_bytes`)
    are checked, the last two from its header, before any decoding; Pillow's own
    decompression-bomb guard is turned into the same error. A JPEG larger than WORK_SIZE is
    decoded at the smallest scale (1/2, 1/4, 1/8) that keeps WORK_SIZE, as preprocessing would
    shrink it anyway; its size on file is kept in `image.info[SIZE_ON_FILE]`. For an animation,
    the first frame is decoded and the image is left on it. Every problem raises UploadError
    naming the file.
    """
    check_file_size(len(data), filename, max_bytes)
    image = open_header(data, filename, max_pixels)
    draft_jpeg(image, WORK_SIZE)
    check_decoded_bytes(image, filename, max_decoded_bytes)
    decode(image, filename)
    return image
