"""The search space from config: each entry names a distribution and the config path it sets.

An entry is ``name: {type: ..., ...}`` under ``tune.search_space``; ``name`` is what the
results table and the plots show, ``path`` the config key the sampled value overrides:

* an explicit ``path`` (``train.lr``, ``model.hidden_size``, ``windows.seq_len``), else
* ``hidden`` → the model's width (``hidden_size``, ``d_model`` or ``channels``), ``seq_len`` →
  ``windows.seq_len``, else
* the one group among ``train``, ``model`` and ``windows`` that has a key called ``name``.

Types: ``uniform``/``loguniform`` (``low``, ``high``, optional ``q``), ``int`` (inclusive
``low``..``high``, optional ``q``, ``log``) and ``choice`` (``values``).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import ConfigError
from app.train.config import TrainConfig

GROUPS = ("train", "model", "windows")
WIDTH_KEYS = ("hidden_size", "d_model", "channels")
TYPES = ("uniform", "loguniform", "int", "choice")
#: Keys a trial cannot change: resources, the epoch budget (tune.max_t), the metric, resuming.
FIXED_TRAIN_KEYS = ("num_workers", "use_gpu", "cpus_per_worker", "epochs", "monitor", "resume", "max_failures")
#: Windows are built before the trials; only their length may vary (one set per value).
SEARCHABLE_WINDOW_KEYS = ("seq_len",)
ENTRY_KEYS = {"type", "low", "high", "q", "log", "values", "path"}


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: its name, the config path it sets and its distribution."""

    name: str
    path: str  # "<group>.<key>"
    type: str
    low: float | None = None
    high: float | None = None
    q: float | None = None
    log: bool = False
    values: tuple = ()

    @property
    def group(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def key(self) -> str:
        return self.path.split(".", 1)[1]

    def domain(self) -> Any:
        """The Ray Tune distribution (OptunaSearch turns it into Optuna's)."""
        from ray import tune

        if self.type == "choice":
            return tune.choice(list(self.values))
        if self.type == "int":
            lo, hi = int(self.low), int(self.high)
            if self.q:
                return tune.qlograndint(lo, hi, int(self.q)) if self.log else tune.qrandint(lo, hi, int(self.q))
            return tune.lograndint(lo, hi + 1) if self.log else tune.randint(lo, hi + 1)  # high is exclusive there
        if self.type == "loguniform":
            return tune.qloguniform(self.low, self.high, self.q) if self.q else tune.loguniform(self.low, self.high)
        return tune.quniform(self.low, self.high, self.q) if self.q else tune.uniform(self.low, self.high)

    def optuna_distribution(self) -> Any:
        """The same distribution in Optuna's terms (for parameter importance)."""
        import optuna.distributions as od

        if self.type == "choice":
            return od.CategoricalDistribution(list(self.values))
        if self.type == "int":
            return od.IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.q or 1))
        log = self.type == "loguniform"
        return od.FloatDistribution(self.low, self.high, log=log, step=None if log else self.q)


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]

    def __iter__(self):
        return iter(self.params)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def param_space(self) -> dict[str, Any]:
        return {p.name: p.domain() for p in self.params}

    def by_path(self, path: str) -> Param | None:
        return next((p for p in self.params if p.path == path), None)

    def seq_lens(self, default: int) -> list[int]:
        """Every window length a trial may ask for (windows are built once per value)."""
        p = self.by_path("windows.seq_len")
        return [int(default)] if p is None else sorted({int(v) for v in p.values})


def parse_space(raw: Mapping[str, Any], model_cfg: Mapping[str, Any]) -> SearchSpace:
    """Check every entry against the model node and the train/windows schema; map it to its path."""
    if not raw:
        raise ConfigError("tune.search_space is empty", "pick a model's space (tune=lstm) or add entries")
    params = tuple(_param(str(name), entry, model_cfg) for name, entry in raw.items())
    paths = [p.path for p in params]
    dup = sorted({p for p in paths if paths.count(p) > 1})
    if dup:
        raise ConfigError(f"tune.search_space sets {', '.join(dup)} twice", "keep one entry per config path")
    return SearchSpace(params)


def _param(name: str, entry: Any, model_cfg: Mapping[str, Any]) -> Param:
    where = f"tune.search_space.{name}"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} is {entry!r}, not a distribution", f"write {where}={{type: choice, values: [..]}}")
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise ConfigError(f"{where} has unknown keys {', '.join(unknown)}", f"use {', '.join(sorted(ENTRY_KEYS))}")
    kind = entry.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}.type={kind!r} is unknown", f"use one of {', '.join(TYPES)}")
    path = resolve_path(name, entry.get("path"), model_cfg)
    param = Param(name, path, kind, *_bounds(where, kind, entry))
    _check_target(where, param, model_cfg)
    return param


def _bounds(where: str, kind: str, entry: Mapping[str, Any]) -> tuple:
    """(low, high, q, log, values) of one entry, checked."""
    if kind == "choice":
        values = entry.get("values")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"{where}.values is missing or empty", f"write {where}.values=[32,64,128]")
        return None, None, None, False, tuple(values)
    low, high, q = entry.get("low"), entry.get("high"), entry.get("q")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or not low < high:
        raise ConfigError(f"{where} needs numbers low < high (got {low!r}, {high!r})", f"e.g. {where}.low=1e-4")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform needs low > 0 (got {low})", "use a positive low or type: uniform")
    if q is not None and not (isinstance(q, (int, float)) and q > 0):
        raise ConfigError(f"{where}.q={q!r} must be a positive number", "drop q or use e.g. q=8")
    if kind == "int" and not all(float(v).is_integer() for v in (low, high, q or 1)):
        raise ConfigError(f"{where}: type int needs whole low, high and q", "use type: uniform for fractions")
    if kind == "int" and entry.get("log") and q not in (None, 1):
        raise ConfigError(f"{where}: type int cannot have both log and q", "drop q or log")
    return float(low), float(high), None if q is None else float(q), bool(entry.get("log", False)), ()


def resolve_path(name: str, path: Any, model_cfg: Mapping[str, Any]) -> str:
    """The config path a search-space entry sets (rules in the module docstring)."""
    if path is not None:
        text = str(path)
        if text.split(".", 1)[0] not in GROUPS or "." not in text:
            raise ConfigError(f"tune.search_space.{name}.path={text!r} is not under {', '.join(GROUPS)}",
                              "use e.g. path: train.lr, model.hidden_size or windows.seq_len")  # fmt: skip
        return text
    if name == "hidden":
        key = next((k for k in WIDTH_KEYS if k in model_cfg), None)
        if key is None:
            raise ConfigError("tune.search_space.hidden: the model has no width key",
                              f"give a path: model.<one of {', '.join(model_cfg)}>")  # fmt: skip
        return f"model.{key}"
    owners = [g for g, keys in _group_keys(model_cfg).items() if name in keys]
    if len(owners) != 1:
        found = "no" if not owners else "more than one"
        raise ConfigError(f"tune.search_space.{name} matches {found} config key among {', '.join(GROUPS)}",
                          f"add path: <group>.<key> to tune.search_space.{name}")  # fmt: skip
    return f"{owners[0]}.{name}"


def _group_keys(model_cfg: Mapping[str, Any]) -> dict[str, set[str]]:
    from app.features.feature_config import WindowsConfig

    return {
        "train": {f.name for f in dataclasses.fields(TrainConfig)},
        "model": {str(k) for k in model_cfg if k not in ("_target_", "n_features")},
        "windows": {f.name for f in dataclasses.fields(WindowsConfig)},
    }


def _check_target(where: str, p: Param, model_cfg: Mapping[str, Any]) -> None:
    keys = _group_keys(model_cfg)[p.group]
    if p.key not in keys:
        raise ConfigError(f"{where}: {p.path} is not a config key",
                          f"use one of {p.group}.{{{', '.join(sorted(keys))}}}")
    if p.group == "train" and p.key in FIXED_TRAIN_KEYS:
        raise ConfigError(f"{where}: {p.path} cannot vary between trials", "set it for the whole sweep instead")
    if p.group == "windows" and p.key not in SEARCHABLE_WINDOW_KEYS:
        raise ConfigError(f"{where}: only windows.seq_len can be searched", "set other window keys for the sweep")
    if p.path == "windows.seq_len" and (p.type != "choice" or not all(_whole(v) and v >= 1 for v in p.values)):
        raise ConfigError(f"{where}: windows.seq_len must be a choice of positive integers",
                          f"write {where}={{type: choice, values: [10,20,40]}}; windows are built per value")


def _whole(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()


def apply_params(base: Mapping[str, Mapping[str, Any]], space: SearchSpace, values: Mapping[str, Any]) -> dict:
    """``base`` (``{"train": {...}, "model": {...}, "windows": {...}}``) with the sampled values set."""
    out = {group: dict(base.get(group) or {}) for group in GROUPS}
    for p in space:
        if p.name in values:
            value = values[p.name]
            out[p.group][p.key] = int(value) if p.type == "int" or p.path == "windows.seq_len" else value
    return out
