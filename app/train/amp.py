"""Mixed precision policy: which autocast dtype to use and whether a GradScaler is needed."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ContextManager

import torch

from app.errors import ConfigError


@dataclass(frozen=True)
class AmpPolicy:
    device_type: str  # "cpu" | "cuda"
    dtype: torch.dtype | None  # None = full precision
    use_scaler: bool  # fp16 needs loss scaling; bf16 has fp32's exponent range and does not

    @property
    def name(self) -> str:
        return {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self) -> ContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Always a scaler (disabled when not needed) so checkpoints have the same shape."""
        return torch.amp.GradScaler(self.device_type, enabled=self.use_scaler)


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 on this CPU (AVX-512 or newer): on AVX2-only CPUs its LSTM kernels
    refuse bf16 ("could not create a primitive descriptor") and the rest falls back to slow paths."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def resolve_amp(mode: str, device: torch.device) -> AmpPolicy:
    """``auto``: bf16 on a CPU with bf16 support, else full precision; on CUDA bf16 where supported,
    else fp16 with a GradScaler."""
    kind = device.type
    if mode == "off":
        return AmpPolicy(kind, None, False)
    if kind == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if mode == "bf16" or (mode == "auto" and bf16_ok):
            if not bf16_ok:
                raise ConfigError("train.amp=bf16 but this GPU has no bf16 support", "use train.amp=fp16 or auto")
            return AmpPolicy(kind, torch.bfloat16, False)
        return AmpPolicy(kind, torch.float16, True)
    if mode == "fp16":
        raise ConfigError("train.amp=fp16 needs a CUDA device", "use train.amp=bf16 (or auto/off) on CPU")
    if mode == "bf16" or (mode == "auto" and cpu_has_bf16()):
        return AmpPolicy(kind, torch.bfloat16, False)
    if mode == "auto":
        return AmpPolicy(kind, None, False)
    raise ConfigError(f"train.amp={mode!r} is unknown", "use auto, bf16, fp16 or off")
