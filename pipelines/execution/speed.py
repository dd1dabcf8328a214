"""How many batches Keras runs per call into TensorFlow (`steps_per_execution`), and whether XLA
compiles the step (`jit_compile`): chosen per model and machine, or fixed by a setting.

Small models on a CPU spend most of a batch in per-call overhead (Python, the callbacks, starting
a TensorFlow function): mlp-128x2 trains about twice as fast with 32 batches per call as with
Keras' default of one, to the same weights. Keras then calls the batch callbacks once per call,
so the recorder sees every Nth batch: N is chosen so that one call lasts about
TARGET_CALL_SECONDS (a Stop lands within that, plus Keras' validation pass) and an epoch still
has at least MIN_CALLS_PER_EPOCH calls (batch points keep coming every few batches). The cost of
a batch is estimated from the model's floating-point work and the machine's cores, at a rate
measured on this machine's model of CPU and kept on the low side: over-estimating a batch only
gives a smaller N. XLA stays off on a CPU (Keras' own "auto"): measured here it made mlp-128x2
and LeNet 2 to 5 times slower, counting its compile time.

    LAYERLAB_STEPS_PER_EXECUTION   "auto" (default) or a positive integer
    LAYERLAB_JIT_COMPILE           "auto" (default: XLA only with a GPU), "1" or "0"
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping

from pipelines.errors import LayerlabError

TARGET_CALL_SECONDS = 0.15
MIN_CALLS_PER_EPOCH = 8
MAX_STEPS_PER_EXECUTION = 32  # beyond it nothing was faster, and the points thin out
FLOPS_PER_CORE = 2.5e9  # measured multiply-adds x 2 per second and core for these small models, rounded down
STEP_OVERHEAD_SECONDS = 3e-4  # per batch even inside one call: the optimizer's update of every weight


@dataclasses.dataclass(frozen=True)
class SpeedSettings:
    """Fixed values, or None to choose them per model: what the environment's settings say."""

    steps_per_execution: int | None = None
    jit_compile: bool | None = None

    def __post_init__(self) -> None:
        spe = self.steps_per_execution
        if spe is not None and (isinstance(spe, bool) or not isinstance(spe, int) or spe < 1):
            raise LayerlabError(f"`steps_per_execution` must be a positive integer or None (auto). "
                                f"Received: steps_per_execution={spe!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpeedSettings:
        environ = os.environ if environ is None else environ
        raw_spe = environ.get("LAYERLAB_STEPS_PER_EXECUTION", "auto").strip().lower()
        raw_jit = environ.get("LAYERLAB_JIT_COMPILE", "auto").strip().lower()
        if raw_spe in ("", "auto"):
            spe = None
        else:
            try:
                spe = int(raw_spe)
            except ValueError:
                spe = 0
            if spe < 1:
                raise LayerlabError(f"LAYERLAB_STEPS_PER_EXECUTION must be 'auto' or a positive integer. "
                                    f"Received: {raw_spe!r}")
        jit = {"": None, "auto": None, "1": True, "true": True, "0": False, "false": False}.get(raw_jit, "bad")
        if jit == "bad":
            raise LayerlabError(f"LAYERLAB_JIT_COMPILE must be 'auto', '1' or '0'. Received: {raw_jit!r}")
        return cls(steps_per_execution=spe, jit_compile=jit)

    def to_args(self) -> list[str]:
        """The worker's command-line arguments that carry these settings."""
        args = []
        if self.steps_per_execution is not None:
            args += ["--steps-per-execution", str(self.steps_per_execution)]
        if self.jit_compile is not None:
            args += ["--jit-compile", "1" if self.jit_compile else "0"]
        return args


def estimated_step_seconds(flops_per_sample: float, batch_size: int, cores: int | None = None) -> float:
    """Seconds one training batch should take: forward and backward (3x the forward work)."""
    cores = max(1, cores or os.cpu_count() or 1)
    return 3.0 * flops_per_sample * batch_size / (FLOPS_PER_CORE * cores) + STEP_OVERHEAD_SECONDS


def choose_steps_per_execution(flops_per_sample: float, batch_size: int, steps_per_epoch: int,
                               cores: int | None = None, fixed: int | None = None) -> int:
    """Batches per call: `fixed` if given, else as many as fit in TARGET_CALL_SECONDS, at most
    MAX_STEPS_PER_EXECUTION and leaving MIN_CALLS_PER_EPOCH calls per epoch; at least 1."""
    if fixed is not None:
        return max(1, int(fixed))
    step = estimated_step_seconds(flops_per_sample, batch_size, cores)
    by_time = math.floor(TARGET_CALL_SECONDS / step) if step > 0 else MAX_STEPS_PER_EXECUTION
    by_points = steps_per_epoch // MIN_CALLS_PER_EPOCH
    return max(1, min(MAX_STEPS_PER_EXECUTION, by_time, by_points))
