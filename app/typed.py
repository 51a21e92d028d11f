"""Plain data (JSON read back, a Tune sample, a test's dict) as a checked config dataclass.

The composed Hydra config becomes typed once, in :func:`app.config.typed`. What comes back later
without its types (a features build's manifest, a model bundle, the train settings in a sweep's
metadata) goes through :func:`typed` here: one converter for every config class, built on
OmegaConf's structured configs, so an unknown key or a wrong type fails the same way everywhere
and each dataclass's own ``__post_init__`` checks run.
"""
from __future__ import annotations

from typing import Any, TypeVar

from app.errors import ConfigError

T = TypeVar("T")


def typed(cls: type[T], value: Any, where: str | None = None) -> T:
    """``value`` as a ``cls``: an instance passes through, None gives the defaults, a mapping or an
    OmegaConf node is merged onto ``cls``'s schema (unknown keys and wrong types are errors)."""
    if isinstance(value, cls):
        return value
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        node = OmegaConf.merge(OmegaConf.structured(cls), value if value is not None else {})
        return OmegaConf.to_object(node)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(one_line(exc, where or cls.__name__), "check the key names and types") from None


def one_line(exc: BaseException, where: str | None = None) -> str:
    """OmegaConf's multi-line message as ``<where>.<key>: <first line>``."""
    text = str(getattr(exc, "msg", None) or exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    key = ".".join(k for k in (where, str(getattr(exc, "full_key", None) or "")) if k)
    first = lines[0] if lines else type(exc).__name__
    return f"{key}: {first}" if key else first
