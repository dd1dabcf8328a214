"""The pretrained bases Layerlab offers, by arithmetic alone: shapes, counts and weight files.

The Build page, the run list and the palette need a base's output shape, its parameter count and
whether its ImageNet weights are at hand without loading TensorFlow; a test holds this table to
`keras.applications` itself (weights=None). Weights live where Keras keeps them
(`~/.keras/models`, or under `KERAS_HOME`); when they are missing, `weights_problem` says which
file to put where, after a connection probe that gives up within seconds rather than hanging.
Socket timeouts do not cover the name lookup (getaddrinfo has none), so the probe and the lookup
before a download run in a daemon thread that is waited for a bounded time; nothing here touches
the process-wide socket default timeout, which other threads of the server rely on.
"""
from __future__ import annotations

import math
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

PROBE_SECONDS = 3.0  # how long a download may take to connect before Layerlab calls it offline
_PROBE_TTL = 60.0  # a probe's answer is reused this long, so a page redraw does not wait again
_probes: dict[str, tuple[float, bool]] = {}


@dataclass(frozen=True)
class Base:
    """One `keras.applications` model without its top: what comes out and what it weighs."""

    name: str
    channels: int  # output feature maps
    params: int  # every weight, as Keras' count_params()
    non_trainable: int  # BatchNormalization's moving statistics
    min_side: int  # the smallest image side Keras accepts
    url: str  # where Keras downloads the ImageNet weights from; the file name is its last part

    def output_side(self, side: int) -> int:
        """The feature maps' side for an input side (Keras' strides and paddings, worked out)."""
        if self.name == "Xception":
            side = (side - 3) // 2 + 1 - 2  # a valid 3x3 conv with stride 2, then one with stride 1
            for _ in range(4):
                side = math.ceil(side / 2)
            return side
        if self.name == "ResNet50":
            side = (side + 6 - 7) // 2 + 1  # 7x7 conv, stride 2, padded by 3
            side = (side + 2 - 3) // 2 + 1  # 3x3 max pool, stride 2, padded by 1
            for _ in range(3):
                side = (side - 1) // 2 + 1  # a 1x1 conv with stride 2 opens each later stage
            return side
        for _ in range(5):  # MobileNetV2, EfficientNetB0: five halvings, rounding up
            side = math.ceil(side / 2)
        return side


_GOOGLE = "https://storage.googleapis.com/"
BASES: dict[str, Base] = {
    base.name: base
    for base in (
        Base("MobileNetV2", 1280, 2_257_984, 34_112, 32,
             _GOOGLE + "tensorflow/keras-applications/mobilenet_v2/"
             "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"),
        Base("EfficientNetB0", 1280, 4_049_571, 42_023, 32,
             _GOOGLE + "keras-applications/efficientnetb0_notop.h5"),
        Base("ResNet50", 2048, 23_587_712, 53_120, 32,
             _GOOGLE + "tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        Base("Xception", 2048, 20_861_480, 54_528, 71,
             _GOOGLE + "tensorflow/keras-applications/xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    )
}
MOBILENET_ROWS = (96, 128, 160, 192, 224)  # the sizes MobileNetV2's ImageNet weights come in


def output_shape(base: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    height, width = input_shape[:2]
    spec = BASES[base]
    return spec.output_side(int(height)), spec.output_side(int(width)), spec.channels


def weights_url(base: str, input_shape: tuple[int, ...]) -> str:
    """The no-top ImageNet weights' URL; MobileNetV2's depends on the image size as Keras picks it."""
    rows = int(input_shape[0])
    return BASES[base].url.format(rows=rows if rows in MOBILENET_ROWS else 224)


def keras_models_dir() -> Path:
    """Keras' cache of downloaded weights: `~/.keras/models`, or `$KERAS_HOME/models`."""
    keras_home = os.environ.get("KERAS_HOME")
    return (Path(keras_home) if keras_home else Path.home() / ".keras") / "models"


def cached_weights(base: str, input_shape: tuple[int, ...]) -> Path | None:
    path = keras_models_dir() / weights_url(base, input_shape).rsplit("/", 1)[-1]
    return path if path.is_file() else None


def _within(seconds: float, work: Callable[[], bool], name: str) -> bool:
    """`work()` in a daemon thread, False unless it returns True within `seconds`. A stalled name
    lookup keeps only that thread waiting, never the caller (nor the process's exit)."""
    outcome: list[bool] = []
    thread = threading.Thread(target=lambda: outcome.append(bool(work())), name=name, daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(outcome and outcome[0])


def _answers(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # the host answered, if only to refuse
    except (OSError, ValueError):  # URLError, timeouts and refused connections are OSErrors
        return False


def reachable(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """Whether the URL's host answers an HTTP HEAD within `timeout` seconds in all, its name lookup
    included (remembered a minute). A whole request, not a TCP connect: behind some proxies any
    connect succeeds and then stalls."""
    host = urlparse(url).hostname or ""
    known = _probes.get(host)
    if known and time.monotonic() - known[0] < _PROBE_TTL:
        return known[1]
    ok = _within(timeout, lambda: _answers(url, timeout), f"layerlab-probe-{host}")
    _probes[host] = (time.monotonic(), ok)
    return ok


def resolves(host: str, timeout: float = PROBE_SECONDS) -> bool:
    """Whether `host`'s name is found within `timeout` seconds."""
    def lookup() -> bool:
        try:
            return bool(socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError):
            return False

    return _within(timeout, lookup, f"layerlab-resolve-{host}")


def download_weights(base: str, input_shape: tuple[int, ...], timeout: float = PROBE_SECONDS * 3) -> Path:
    """Download `base`'s ImageNet weights into Keras' cache, where Keras' own download would put
    them. The name is looked up within `timeout` first (then found again at once by the request);
    every connect and read then has `timeout` too, so a stalled download fails instead of hanging.
    Written to a side file and renamed, so a failed download leaves no half file in the cache."""
    url = weights_url(base, input_shape)
    host = urlparse(url).hostname or ""
    if not resolves(host, timeout):
        raise OSError(f"the name {host} could not be looked up within {timeout:g} s")
    target = keras_models_dir() / url.rsplit("/", 1)[-1]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def weights_problem(base: str, input_shape: tuple[int, ...]) -> str | None:
    """Why ImageNet weights for `base` cannot be had now, or None (cached, or the host answers)."""
    if base not in BASES or cached_weights(base, input_shape) is not None:
        return None
    url = weights_url(base, input_shape)
    if reachable(url):
        return None
    name = url.rsplit("/", 1)[-1]
    return (f"the ImageNet weights of {base} are not in Keras' cache and {urlparse(url).hostname} cannot be "
            f"reached (offline?). Download {name} from {url} and place it in {keras_models_dir()}, "
            "or set weights to 'none' to start from random weights.")


def weights_note(base: str, input_shape: tuple[int, ...]) -> str:
    """One line for the palette: where this base's ImageNet weights would come from. No network."""
    if cached_weights(base, input_shape) is not None:
        return f"ImageNet weights for {base}: in Keras' cache ({keras_models_dir()})."
    name = weights_url(base, input_shape).rsplit("/", 1)[-1]
    return (f"ImageNet weights for {base}: not cached; {name} is downloaded on first use, which needs the "
            f"internet. Offline, place it in {keras_models_dir()} or use weights 'none'.")
