"""Pictures are refused by the memory their pixels take once decoded, read from the header before
any decoding, and what is decoded is shrunk before it is converted: a 77 KB PNG announcing 6300x6300
16-bit pixels once cost about 1 GB and 3.5 s."""
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile

from pipelines.errors import UploadError
from pipelines.inference.preprocess import open_upload, preprocess_image
from pipelines.inference.upload_checks import MAX_DECODED_BYTES, SIZE_ON_FILE, decoded_bytes

MNIST = (28, 28, 1)
REPO = Path(__file__).resolve().parents[2]


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def digit_picture(size: tuple[int, int], ink: int = 0, background: int = 255, mode: str = "L") -> Image.Image:
    """A '7'-like glyph, drawn in proportion to the picture."""
    image = Image.new(mode, size, background)
    width, height = size
    ImageDraw.Draw(image).line([(width // 7, height // 7), (width // 2, height // 7), (width // 3, 5 * height // 7)],
                               fill=ink, width=max(2, width // 14))
    return image


def sixteen_bit_png(side: int) -> bytes:
    """A 16-bit grey PNG of side x side pixels with a bright bar: it compresses to a few tens of KB."""
    pixels = np.zeros((side, side), np.uint16)
    pixels[side // 3: side // 3 + side // 20, side // 4: 3 * side // 4] = 60_000
    return encode(Image.fromarray(pixels), "PNG")


@pytest.fixture(scope="module")
def huge_sixteen_bit_png() -> bytes:
    """6300x6300 16-bit grey: 77 KB on file, 75.7 MB once decoded (and about 1 GB and 3.5 s in the
    float conversion preprocessing used to do at full size)."""
    return sixteen_bit_png(6300)


def test_a_picture_is_refused_by_the_memory_its_pixels_take_before_any_decoding(huge_sixteen_bit_png, monkeypatch):
    assert len(huge_sixteen_bit_png) < 200 * 1024
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image))
    with pytest.raises(UploadError, match=r"^huge16\.png is 6300x6300 16-bit grey: 75\.7 MB once decoded, too much "
                                          r"to decode safely; the limit is 64 MB$"):
        open_upload(huge_sixteen_bit_png, "huge16.png")
    assert decoded == []
    assert MAX_DECODED_BYTES == 64 * 2**20


def run_with_address_space(tmp_path, data: bytes, code: str, headroom_mb: int) -> dict:
    """Run `code` (with `data` as `upload` and the preprocess module imported) in a fresh Python whose
    address space may grow only `headroom_mb` past what its imports took; returns what it prints as JSON."""
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    script = f"""
import json, re, resource
from pathlib import Path
from pipelines.inference.preprocess import open_upload, preprocess_image
from pipelines.errors import UploadError
upload = Path({str(path)!r}).read_bytes()
vm = int(re.search(r"VmSize:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + {headroom_mb} * 2**20, resource.RLIM_INFINITY))
{code}
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_refusal_needs_no_memory_for_the_pixels(tmp_path, huge_sixteen_bit_png):
    """With room for less than the decoded picture, it is still refused by its size (decoding would fail
    with a MemoryError, which would read "truncated or corrupt")."""
    code = """
try:
    open_upload(upload, "huge16.png")
    print(json.dumps({"error": None}))
except UploadError as error:
    print(json.dumps({"error": str(error)}))
"""
    said = run_with_address_space(tmp_path, huge_sixteen_bit_png, code, headroom_mb=40)
    assert "75.7 MB once decoded" in said["error"]


def test_a_large_sixteen_bit_picture_inside_the_limit_is_prepared_without_full_size_copies(tmp_path):
    """4000x4000 16-bit grey is 30.5 MB decoded; converting it to float at full size took 128 MB a copy."""
    code = """
image = open_upload(upload, "big16.png")
prepared = preprocess_image(image, (28, 28, 1))
print(json.dumps({"notes": list(prepared.notes), "max": float(prepared.array.max())}))
"""
    said = run_with_address_space(tmp_path, sixteen_bit_png(4000), code, headroom_mb=80)
    assert "reduced 16-bit grey levels to 8 bits" in said["notes"] and said["max"] > 0.9


def test_decoded_size_counts_each_modes_bytes_per_pixel():
    assert decoded_bytes("L", (100, 10)) == 1000
    assert decoded_bytes("I;16", (100, 10)) == 2000 and decoded_bytes("I;16B", (100, 10)) == 2000
    assert decoded_bytes("RGB", (100, 10)) == 4000  # Pillow keeps three channels in four bytes
    assert decoded_bytes("F", (100, 10)) == 4000 and decoded_bytes("I", (100, 10)) == 4000
    assert decoded_bytes("P", (100, 10)) == 5000  # converted to RGB at full size before shrinking
    assert decoded_bytes("some new mode", (100, 10)) == 8000


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_says_its_size_on_file():
    picture = digit_picture((2048, 1536), mode="RGB")
    with pytest.raises(UploadError, match=r"^a\.png is 2048x1536 colour: 12 MB once decoded"):
        open_upload(encode(picture, "PNG"), "a.png", max_decoded_bytes=8 * 2**20)
    data = encode(picture, "JPEG")
    image = open_upload(data, "photo.jpg", max_decoded_bytes=8 * 2**20)
    assert image.size == (1024, 768) and image.info[SIZE_ON_FILE] == (2048, 1536)
    prepared = preprocess_image(image, (32, 32, 3))
    assert "resized 2048x1536 to 32x32" in prepared.notes


@pytest.mark.parametrize("mode", ["1", "P", "I;16", "I", "F", "CMYK", "LA", "RGBA"])
def test_large_pictures_of_every_mode_are_shrunk_and_prepared(mode):
    image = digit_picture((2500, 2100), ink=255, background=0).convert(mode if mode != "I;16" else "I")
    if mode == "I;16":
        image = Image.fromarray((np.asarray(image, np.uint16) * 257).astype(np.uint16))
    prepared = preprocess_image(image, MNIST, invert=False)
    assert prepared.array.shape == MNIST and prepared.array.max() > 0.5
