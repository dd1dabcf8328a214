"""What makes untrusted picture bytes safe to decode: the format told by content, and limits on
the file's size, its pixel count and the memory its pixels take once decoded, all read from the
header before any decoding. `pipelines.inference.preprocess.open_upload` applies them in order.

"Too large" is measured in bytes, not pixels alone: a 77 KB PNG can announce 6300x6300 16-bit
pixels, 75.7 MB once decoded. Every problem raises an UploadError whose message names the file.
"""
from __future__ import annotations

import io
import math
import warnings

from PIL import Image, UnidentifiedImageError

from pipelines.errors import UploadError

# What Pillow calls each format it may identify, and the name users know it by. MPO is how Pillow
# identifies the multi-picture JPEGs many phone cameras write.
ALLOWED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "BMP": "BMP", "GIF": "GIF", "WEBP": "WebP"}
ALLOWED_TEXT = "PNG, JPEG, BMP, GIF, WebP"
MAX_UPLOAD_BYTES = 25 * 2**20  # the dashboard passes its own upload cap (server.maxUploadSize)
MAX_UPLOAD_PIXELS = 40_000_000
MAX_DECODED_BYTES = 64 * 2**20  # memory one decoded picture may take; about 16 megapixels of colour
# Bytes a pixel of each mode takes once decoded, as Pillow stores it (three or four 8-bit channels
# take four bytes). Palette and 1-bit pictures cannot be averaged while shrinking, so they are
# converted at full size first: that copy counts too. Modes not listed count as DEFAULT_PIXEL_BYTES.
DECODED_BYTES_PER_PIXEL = {
    "1": 1 + 1, "L": 1, "P": 1 + 4, "PA": 4 + 4, "LA": 4, "La": 4, "RGB": 4, "RGBA": 4, "RGBa": 4,
    "RGBX": 4, "CMYK": 4, "YCbCr": 4, "LAB": 4, "HSV": 4,
    "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2, "I": 4, "F": 4,
}
DEFAULT_PIXEL_BYTES = 8
MODE_WORDS = {"1": "black-and-white", "L": "grey", "LA": "grey with transparency", "P": "palette",
              "PA": "palette with transparency", "RGB": "colour", "RGBA": "colour with transparency",
              "CMYK": "CMYK colour", "YCbCr": "colour", "I;16": "16-bit grey", "I;16L": "16-bit grey",
              "I;16B": "16-bit grey", "I;16N": "16-bit grey", "I": "32-bit grey", "F": "floating-point grey"}
# Where `draft_jpeg` notes the size on file of a JPEG it has decoded at a reduced scale.
SIZE_ON_FILE = "layerlab_size_on_file"


def size_text(size: int) -> str:
    """1000 bytes, 75.7 KB, 64 MB."""
    if size < 1024:
        return f"{size} bytes"
    if size < 2**20:
        return f"{size / 1024:.1f}".removesuffix(".0") + " KB"
    return f"{size / 2**20:.1f}".removesuffix(".0") + " MB"


def check_file_size(size: int, filename: str, max_bytes: int) -> None:
    """Refuse an empty file, or one larger than `max_bytes`."""
    if size == 0:
        raise UploadError(f"{filename} is empty. Allowed formats: {ALLOWED_TEXT}")
    if size > max_bytes:
        actual, limit = size_text(size), size_text(max_bytes)
        if actual == limit:
            actual, limit = f"{size:,} bytes", f"{max_bytes:,} bytes"
        raise UploadError(f"{filename} is {actual}; the limit is {limit}")


def open_header(data: bytes, filename: str, max_pixels: int) -> Image.Image:
    """The image with only its header read: its format and pixel count are checked here."""
    # Pillow only warns between MAX_IMAGE_PIXELS and twice that; the warning is recorded while
    # the header is read (so that our own limit, with the size, is reported first) and an error
    # while decoding. catch_warnings changes process-wide state for the moment it lasts.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise UploadError(
                f"{filename} is not an image Layerlab can read. Allowed formats: {ALLOWED_TEXT}"
            ) from None
        except Image.DecompressionBombError:
            raise UploadError(
                f"{filename} has more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, too many to decode "
                f"safely; the limit is {max_pixels:,} pixels"
            ) from None
        # A damaged header can fail with almost any exception type; each one means "corrupt".
        except Exception as error:
            raise UploadError(f"{filename} is truncated or corrupt ({error})") from None

    if image.format not in ALLOWED_FORMATS:
        raise UploadError(
            f"{filename} is a {image.format} image, which Layerlab does not accept. "
            f"Allowed formats: {ALLOWED_TEXT}"
        )
    width, height = image.size
    if width * height > max_pixels or any(
            issubclass(warning.category, Image.DecompressionBombWarning) for warning in caught):
        raise UploadError(
            f"{filename} is {width}x{height} = {width * height:,} pixels; "
            f"the limit is {min(max_pixels, Image.MAX_IMAGE_PIXELS):,} pixels"
        )
    return image


def draft_jpeg(image: Image.Image, min_side: int) -> None:
    """Have a JPEG larger than `min_side` decoded at the smallest scale (1/2, 1/4, 1/8) that keeps
    `min_side` on its longer side; its size on file goes to `image.info[SIZE_ON_FILE]`."""
    if image.format not in ("JPEG", "MPO") or max(image.size) <= min_side:
        return
    size_on_file = image.size
    scale = min_side / max(size_on_file)
    image.draft(image.mode, tuple(max(1, math.ceil(side * scale)) for side in size_on_file))
    if image.size != size_on_file:
        image.info[SIZE_ON_FILE] = size_on_file


def decoded_bytes(mode: str, size: tuple[int, int]) -> int:
    """The memory a picture of this mode and size takes once decoded (see DECODED_BYTES_PER_PIXEL)."""
    width, height = size
    return width * height * DECODED_BYTES_PER_PIXEL.get(mode, DEFAULT_PIXEL_BYTES)


def check_decoded_bytes(image: Image.Image, filename: str, max_decoded_bytes: int) -> None:
    """Refuse a picture whose pixels would take more than `max_decoded_bytes` once decoded."""
    needed = decoded_bytes(image.mode, image.size)
    if needed > max_decoded_bytes:
        width, height = image.size
        raise UploadError(
            f"{filename} is {width}x{height} {MODE_WORDS.get(image.mode, image.mode)}: "
            f"{size_text(needed)} once decoded, too much to decode safely; "
            f"the limit is {size_text(max_decoded_bytes)}"
        )


def decode(image: Image.Image, filename: str) -> None:
    """Decode the pixels (the first frame of an animation), turning every failure into UploadError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            if getattr(image, "is_animated", False):  # reads ahead to the second frame's header
                image.seek(0)
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise UploadError(f"{filename} has too many pixels to decode safely ({error})") from None
        except Exception as error:
            raise UploadError(f"{filename} is truncated or corrupt ({error})") from None
