"""The structured-config schema: every key the pipeline reads, with its type and default.

Registered in Hydra's ConfigStore as ``schema`` and used as the first default of
``conf/config.yaml``, so a key that does not exist or a value of the wrong type fails at
composition time. :func:`typed` turns the composed config into an :class:`AppConfig` once (each
section's dataclass checks its own values as it is built), and every stage gets that object;
:func:`validate` adds the checks that span sections (date order, sources, no secrets in config)
and raises :class:`app.errors.ConfigError`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from app.contracts import FREQS, normalize_symbol, normalize_symbols, parse_date
from app.collect.bar_source import BAR_SOURCES, bar_source, source_names
from app.features.feature_config import FeaturesConfig, LabelConfig, SplitConfig, WindowsConfig
from app.errors import ConfigError
from app.evaluate.config import EvaluateConfig
from app.predict.config import PredictConfig
from app.report.config import ReportConfig
from app.sim.config import FaultConfig  # one definition of the simulator's injectable faults
from app.stage_registry import STAGES
from app.storage import StorageConfig, register_resolver
from app.storage import validate as validate_storage
from app.train.config import TrainConfig
from app.tune.config import TuneConfig
from app.typed import one_line



@dataclass
class SimDataConfig:
    """The embedded simulator started when ``data.source`` resolves to ``sim``."""

    seed: int = 7
    n_symbols: int = 30
    start: str = "2016-01-04"
    today: Optional[str] = None  # the simulated "today"; None = latest KRX session
    rate_limit: Optional[float] = None  # requests/s per app key; None = KIS's real limit, 0 = none
    signal_strength: Optional[float] = None  # None = the simulator's default
    nonlinear_strength: Optional[float] = None  # None = the simulator's default (0: a linear signal)
    faults: FaultConfig = field(default_factory=FaultConfig)  # all off by default


@dataclass
class DataConfig:
    source: str = "auto"  # auto = kis when KIS_APP_KEY is set, else the embedded simulator
    symbols: list[str] = field(default_factory=list)
    universe: Optional[str] = None  # "all": every listed symbol of the source
    limit: Optional[int] = None  # keep the first N symbols of the universe
    start: str = "2019-01-02"
    end: Optional[str] = None  # None = the server's latest session
    freq: str = "D"
    adjusted: bool = True
    path: Optional[str] = None  # data=file: a CSV or Parquet file in long format
    on_bad_rows: str = "reject"  # data=file rows that break the bars contract: reject (listed) | fail
    master_dir: Optional[str] = None  # local copies of kospi_code.mst.zip / kosdaq_code.mst.zip
    market: str = "J"  # FID_COND_MRKT_DIV_CODE: J (KRX), NX (NXT), UN (both)
    sim: SimDataConfig = field(default_factory=SimDataConfig)


@dataclass
class KisConfig:
    """Maps one-to-one onto :class:`app.kis.settings.KisSettings` (minus Redis and market)."""

    env: str = "real"  # real | paper: base URLs and default limits
    base_url: Optional[str] = None  # override (a proxy); set automatically for the simulator
    rate_limit: Optional[float] = None  # requests/s per app key; None = 18 real, 1 paper
    rate_margin: float = 0.025  # pace this fraction under the limit
    timeout_s: float = 10.0
    retry_attempts: int = 5
    retry_base_s: float = 0.1
    retry_cap_s: float = 5.0
    retry_budget_s: float = 120.0  # one call's retries end after this long (EGW00201 is retried until then)
    max_connections: int = 32  # requests in flight per process
    token_refresh_before_s: float = 600.0
    token_interval_s: float = 60.0  # at most one token issuance per app key this often (KIS: 1/min)
    token_dir: Optional[str] = None  # file token store when there is no Redis; None = user cache dir
    custtype: str = "P"
    ws_url: Optional[str] = None  # realtime websocket host; None = KIS's for env, or base_url's host


@dataclass
class CollectConfig:
    workers: int = 2  # Ray Data actors sharing one rate limit; 0 = one process, no Ray
    actor_cpus: float = 0.25  # I/O-bound: small, so Ray Data's own tasks always find a CPU
    batch_size: int = 8  # symbols per actor call (progress granularity)
    # symbols still failing for a transient reason end the run after collect with exit 3; true runs
    # the later stages on the rest first (the run still exits 3)
    allow_partial: bool = False


@dataclass
class RedisConfig:
    # A password belongs in REDIS_URL (environment), never here: this file is saved with the run.
    url: Optional[str] = "redis://127.0.0.1:6379/0"
    key_prefix: str = "krx"
    hot_ttl_s: int = 86400


@dataclass
class StoreConfig:
    root: str = "data"


@dataclass
class RayConfig:
    address: Optional[str] = None  # None = start a local instance; "auto" = join a cluster
    num_cpus: Optional[int] = None
    object_store_memory_mb: int = 1024
    include_dashboard: bool = True


@dataclass
class AppConfig:
    stage: Any = "all"
    experiment_name: str = "default"
    seed: int = 42
    debug: bool = False
    run_dir: Optional[str] = None  # stage=report / stage=predict: an existing run folder
    runs: list[str] = field(default_factory=list)  # stage=compare: run folders to compare
    data: DataConfig = field(default_factory=DataConfig)
    kis: KisConfig = field(default_factory=KisConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)  # roots of run folders, store, Ray storage
    collect: CollectConfig = field(default_factory=CollectConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
    model: Any = None  # a `_target_` node from conf/model/, built with hydra.utils.instantiate
    train: TrainConfig = field(default_factory=TrainConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)


def register() -> None:
    register_resolver()  # hydra.run.dir is ${storage_root:...}/experiments/...
    ConfigStore.instance().store(name="schema", node=AppConfig)


def typed(cfg: "DictConfig | AppConfig") -> AppConfig:
    """The composed config as typed sections (``OmegaConf.to_object``): the one conversion a run makes."""
    if isinstance(cfg, AppConfig):
        return cfg
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(one_line(exc), "check the key names and types in conf/ or run with --help") from None


def stages_of(cfg: AppConfig) -> list[str]:
    """The stages a config asks for, in pipeline order; ``all`` means every stage."""
    raw = cfg.stage
    names = list(raw) if isinstance(raw, (list, ListConfig)) else [raw]
    names = [str(n).strip() for n in names]
    if names == ["all"]:
        return [name for name, entry in STAGES.items() if entry.in_all]
    known = tuple(STAGES)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown stage {', '.join(unknown)}",
            f"use stage=<one of {', '.join(known)}, all> or a list like stage=[collect,features]",
        )
    if "compare" in names and not cfg.runs:
        raise ConfigError("stage=compare needs run folders", "add runs=[experiments/lstm/<a>,experiments/gru/<b>]")
    return [s for s in known if s in names]


def validate(cfg: "DictConfig | AppConfig") -> AppConfig:
    """Checks the schema cannot express; raises ConfigError with the key and the fix. Returns the
    typed config."""
    cfg = typed(cfg)
    stages_of(cfg)
    data = cfg.data
    if data.source not in source_names():
        raise ConfigError(f"data.source={data.source!r} is unknown", f"use one of {', '.join(source_names())}")
    if data.freq not in FREQS:
        raise ConfigError(f"data.freq={data.freq!r} is unknown", f"use one of {', '.join(FREQS)}")
    start = parse_date(data.start, "data.start")
    if data.end is not None and parse_date(data.end, "data.end") < start:
        raise ConfigError(
            f"data.start={data.start} is after data.end={data.end}", "give a start on or before the end"
        )
    for code in data.symbols:
        try:
            normalize_symbol(code)
        except ValueError as exc:
            raise ConfigError(f"data.symbols: {exc}", "write codes like data.symbols=[005930,000660]") from None
    for name in BAR_SOURCES:
        bar_source(name).check(cfg)
    if cfg.kis.env not in ("real", "paper"):
        raise ConfigError(f"kis.env={cfg.kis.env!r} is unknown", "use kis.env=real or kis.env=paper")
    if cfg.kis.ws_url and not str(cfg.kis.ws_url).startswith(("ws://", "wss://")):
        raise ConfigError(f"kis.ws_url={cfg.kis.ws_url!r} is not a websocket URL", "write ws://host:port or null")
    _validate_groups(cfg)
    _validate_run_dirs(cfg)
    _validate_training(cfg)
    _validate_gpu(cfg)
    validate_storage(cfg)
    if cfg.redis.url and urlsplit(cfg.redis.url).password:
        raise ConfigError(
            "redis.url carries a password, which would be saved with the run",
            "put the URL with its password in the REDIS_URL environment variable",
        )
    return cfg


def _validate_run_dirs(cfg: AppConfig) -> None:
    """``run_dir`` / ``runs`` name folders of earlier runs: they must exist."""
    named = ([cfg.run_dir] if cfg.run_dir else []) + list(cfg.runs)
    for folder in named:
        if not Path(str(folder)).expanduser().is_dir():
            raise ConfigError(f"run folder {folder} does not exist",
                              "pass an existing run folder, e.g. run_dir=experiments/lstm/<YYYY-MM-DD_HH-MM-SS>")


def _validate_training(cfg: AppConfig) -> None:
    """Settings that only fail once a model is built or trained: build the model on torch's meta
    device (no memory) and check fp16 against where training runs."""
    stages = stages_of(cfg)
    if "train" not in stages and "tune" not in stages:
        return
    import torch

    from app.models.factory import build_model

    with torch.device("meta"):
        build_model(cfg.model, 1)
    if cfg.train.amp == "fp16" and not _trains_on_cuda(cfg, torch):
        raise ConfigError("train.amp=fp16 needs training on a CUDA GPU, and this run trains on the CPU",
                          "use train.amp=bf16 or auto on the CPU, or train.use_gpu=true on a machine with a GPU")


def _validate_gpu(cfg: AppConfig) -> None:
    """``train.use_gpu=true`` with a local Ray needs a GPU here (a cluster is checked when joined)."""
    if cfg.train.use_gpu is True and {"train", "tune"} & set(stages_of(cfg)):
        from app.train.device import check_local_gpu

        check_local_gpu(True, joins_cluster=bool(cfg.ray.address or os.environ.get("RAY_ADDRESS")))


def _trains_on_cuda(cfg: AppConfig, torch) -> bool:
    """Whether training will run on CUDA, as far as the driver can tell: on a cluster the GPUs are
    the workers', not this machine's."""
    if not cfg.train.use_gpu:
        return False
    return cfg.ray.address is not None or torch.cuda.is_available()


def _validate_groups(cfg: AppConfig) -> None:
    """The checks that need more than one section, or the model node (its own classes check the rest)."""
    model = cfg.model
    if not isinstance(model, dict) or not str(model.get("_target_", "")).startswith("app.models."):
        raise ConfigError("model has no app.models _target_", "pick one of conf/model/, e.g. model=lstm")
    if "predict" in stages_of(cfg):  # no bundle, an old one or bad dates fail before collection
        from app.predict.inputs import check

        check(cfg)
    if "tune" in stages_of(cfg):  # a bad search space fails here, not after collection and features
        from app.tune.stage import plan

        plan(cfg)


def symbols_of(cfg: AppConfig) -> list[str]:
    """``data.symbols`` as 6-digit strings, de-duplicated in order."""
    return normalize_symbols(cfg.data.symbols)
