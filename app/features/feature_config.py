"""Config of the feature, label, split and window stages: plain dataclasses with defaults.

Kept free of Hydra so the data layer can be used and tested alone; ``app.config`` registers them in
the schema; :func:`app.typed.typed` reads them back from a manifest or a bundle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


#: The most symbols one features task (and its file) holds when ``symbols_per_task`` is sized to the cluster.
MAX_SYMBOLS_PER_TASK = 32

#: Columns fed to the model by default: every scale-free feature (see docs/features.md).
DEFAULT_MODEL_COLUMNS = [
    "logret_*",
    "vol_*",
    "volz_*",
    "close_sma_*",
    "close_ema_*",
    "rsi_*",
    "macd_rel",
    "macd_signal_rel",
    "macd_hist_rel",
    "bb_width",
    "bb_pos",
    "natr_*",
    "stoch_k",
    "stoch_d",
    "mfi_*",
    "adx_*",
    "cci_*",
    "willr_*",
    "roc_*",
    "a158_*",
    "cal_*",
]

#: qlib Alpha158 rolling operators computed by default (the rest are linear combinations of these
#: or slow: CNTN, CNTD, SUMN, SUMD, VSUMN, VSUMD, IMAX, IMIN, IMXD, MA; all can be switched on).
DEFAULT_ALPHA158_ROLLING = [
    "ROC", "STD", "BETA", "RSQR", "RESI", "MAX", "MIN", "QTLU", "QTLD", "RANK", "RSV",
    "CORR", "CORD", "CNTP", "SUMP", "VMA", "VSTD", "WVMA", "VSUMP",
]  # fmt: skip


@dataclass
class IndicatorConfig:
    """TA-Lib indicator periods; every list entry adds one column named ``<name>_<period>``."""

    sma: list[int] = field(default_factory=lambda: [5, 10, 20, 60])
    ema: list[int] = field(default_factory=lambda: [5, 10, 20, 60])
    rsi: list[int] = field(default_factory=lambda: [14])
    atr: list[int] = field(default_factory=lambda: [14])
    mfi: list[int] = field(default_factory=lambda: [14])
    adx: list[int] = field(default_factory=lambda: [14])
    cci: list[int] = field(default_factory=lambda: [14])
    willr: list[int] = field(default_factory=lambda: [14])
    roc: list[int] = field(default_factory=lambda: [5, 20])
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bb_period: int = 20
    bb_nbdev: float = 2.0
    stoch_fastk: int = 14
    stoch_slowk: int = 3
    stoch_slowd: int = 3


@dataclass
class Alpha158Config:
    """The subset of qlib's Alpha158 to compute (column names ``a158_<name lowercased>``)."""

    kbar: bool = True  # KMID KLEN KMID2 KUP KUP2 KLOW KLOW2 KSFT KSFT2
    price: list[str] = field(default_factory=lambda: ["OPEN", "HIGH", "LOW", "VWAP"])  # <F>0 = F/close
    rolling: list[str] = field(default_factory=lambda: list(DEFAULT_ALPHA158_ROLLING))
    windows: list[int] = field(default_factory=lambda: [5, 10, 20, 60])


@dataclass
class FeaturesConfig:
    path: Optional[str] = None  # output dataset; None = <store.root>/features/freq=<freq>
    indicators: IndicatorConfig = field(default_factory=IndicatorConfig)
    alpha158: Alpha158Config = field(default_factory=Alpha158Config)
    returns: list[int] = field(default_factory=lambda: [1, 5, 20])  # logret_<n> = log(c_t / c_{t-n})
    volatility: list[int] = field(default_factory=lambda: [5, 20, 60])  # vol_<n>: std of logret_1
    volume_z: list[int] = field(default_factory=lambda: [20, 60])  # volz_<n>: z-score of volume
    ma_ratios: bool = True  # close_sma_<n>, close_ema_<n> = close / MA - 1 for the sma/ema periods
    calendar: list[str] = field(default_factory=lambda: ["dow", "dom", "month"])  # + "tod" intraday
    model_columns: list[str] = field(default_factory=lambda: list(DEFAULT_MODEL_COLUMNS))  # globs
    warmup: str = "mask"  # mask: keep warm-up rows with warmup=true; drop: leave them out
    session_bound: Optional[bool] = None  # features restart every session; None = for intraday bars
    symbols_per_task: Optional[int] = None  # None = sized to the cluster (at most MAX_SYMBOLS_PER_TASK)
    num_cpus_per_task: float = 1.0
    compression: str = "snappy"


@dataclass
class LabelConfig:
    horizon: int = 1  # bars
    price: str = "close"  # close: c_{t+h}/c_t - 1; open: o_{t+1+h}/o_{t+1} - 1
    rank: bool = False  # also label_rank: per-ts cross-sectional percentile of label in [0, 1]


@dataclass
class WalkForwardConfig:
    train_bars: int = 750
    val_bars: int = 125
    test_bars: int = 125
    step_bars: Optional[int] = None  # None = test_bars (folds' test periods tile the calendar)
    expanding: bool = False  # True: every fold's training starts at the first bar
    max_folds: Optional[int] = None  # keep the last N folds


@dataclass
class SplitConfig:
    """Dates are inclusive ``YYYY-MM-DD``; a missing date comes from the fractions of the calendar."""

    train_start: Optional[str] = None
    train_end: Optional[str] = None
    val_end: Optional[str] = None
    test_end: Optional[str] = None
    train_frac: float = 0.7
    val_frac: float = 0.15
    embargo_bars: Optional[int] = None  # None = the label's reach (horizon, +1 for open labels)
    walk_forward: WalkForwardConfig = field(default_factory=WalkForwardConfig)


@dataclass
class WindowsConfig:
    seq_len: int = 20
    target: str = "label"  # label | label_rank
    scaler: str = "robust"  # robust (median/MAD) | zscore (mean/std) | none
    clip: Optional[float] = 5.0  # clip scaled features to [-clip, clip]; None = no clipping
    max_fit_rows: int = 200_000  # robust scaler: rows sampled from the training window
    block_windows: int = 1024  # windows per Ray Data block
    shuffle: bool = True  # train: windows of a file in a seeded random order
    seed: int = 0
    num_cpus_per_task: float = 0.5  # Ray Train workers must leave this much CPU free


@dataclass
class DataPipelineConfig:
    """The four groups together; the composed Hydra config has the same attributes."""

    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
