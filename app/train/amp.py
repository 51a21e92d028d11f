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


def cpu_bf16_supported() -> bool:
    """Whether this CPU has oneDNN's bf16 kernels (AVX-512 BF16 or AMX); checked on the training node."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_amp(mode: str, device: torch.device) -> AmpPolicy:
    """``auto``: bf16 on a CPU with bf16 kernels, else full precision; on CUDA bf16 where supported, else fp16 with a GradScaler."""
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
    if mode == "bf16" or (mode == "auto" and cpu_bf16_supported()):
        return AmpPolicy(kind, torch.bfloat16, False)
    if mode == "auto":  # a CPU without bf16 kernels (AVX2 only): oneDNN's bf16 LSTM cannot even start
        return AmpPolicy(kind, None, False)
    raise ConfigError(f"train.amp={mode!r} is unknown", "use auto, bf16, fp16 or off")
