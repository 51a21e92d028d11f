"""Features of one batch of whole symbols: Bars in, the Features contract out (no I/O, no Ray).

Everything a feature at ``ts`` uses comes from bars at or before ``ts``: TA-Lib runs on each
symbol's own arrays, rolling operators run down one symbol's panel column with trailing windows,
and calendar fields come from ``ts`` itself. Only ``label``/``label_ts`` (and ``label_rank``) look
ahead, by design. Features are computed in float64 and stored as float32; ±inf become NaN.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.arrow_numpy import arrow_of, numpy_of, strings_of
from app.contracts import BARS_SCHEMA, KST_NAME
from app.features.elementwise import finite_float32, month_and_day
from app.features.alpha import rolled_features, rolling_context, validate_alpha158
from app.features.feature_config import FeaturesConfig, LabelConfig
from app.typed import typed
from app.features.indicators import scale_free_companions, ta_indicators, validate_indicators
from app.features.labels import forward_labels, validate_label
from app.features.panel import Layout
from app.features.warmup import recursive_warmup
from app.errors import ConfigError, DataError

TS_TYPE = pa.timestamp("s", tz=KST_NAME)
CALENDAR = ("dow", "dom", "month", "tod")
KST_OFFSET_S = 9 * 3600  # Korea has kept UTC+9 without DST since 1988


def validate_features(cfg: FeaturesConfig) -> None:
    validate_indicators(cfg.indicators)
    validate_alpha158(cfg.alpha158)
    bad = [c for c in cfg.calendar if c not in CALENDAR]
    if bad:
        raise ConfigError(f"features.calendar: unknown {bad}", f"use names from {', '.join(CALENDAR)}")
    if cfg.warmup not in ("mask", "drop"):
        raise ConfigError(f"features.warmup={cfg.warmup!r} is unknown", "use features.warmup=mask or drop")
    if any(int(n) < 1 for n in cfg.returns) or any(int(n) < 2 for n in [*cfg.volatility, *cfg.volume_z]):
        raise ConfigError(
            "features.returns/volatility/volume_z periods are too small", "use e.g. [1,5,20] and [5,20,60]"
        )


def _check_sorted(ts: np.ndarray, layout: Layout) -> None:
    if len(set(layout.symbols)) != len(layout.symbols):
        raise DataError("bars are not grouped by symbol", "sort the batch by (symbol, ts)")
    same = layout.col[1:] == layout.col[:-1]  # integers: comparing the strings again costs 3 us a row
    bad = np.flatnonzero(same & (ts[1:] <= ts[:-1]))
    if len(bad):
        raise DataError(
            f"symbol {layout.symbols[layout.col[bad[0]]]}: ts not strictly increasing at row {bad[0] + 1}",
            "store bars sorted by ts with unique ts (BarStore.write does)",
        )


def calendar_columns(ts: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Calendar fields of the KST wall clock, each scaled to [-0.5, 0.5]."""
    local = ts + KST_OFFSET_S
    days = local // 86400
    month, dom = month_and_day(days) if {"dom", "month"} & set(names) else (None, None)
    out: dict[str, np.ndarray] = {}
    if "dow" in names:
        out["cal_dow"] = ((days + 3) % 7) / 4.0 - 0.5  # Mon -0.5 .. Fri 0.5
    if "dom" in names:
        out["cal_dom"] = dom / 30.0 - 0.5
    if "month" in names:
        out["cal_month"] = month / 11.0 - 0.5
    if "tod" in names:
        out["cal_tod"] = ((local % 86400) / 60.0 - 540.0) / 390.0 - 0.5  # 09:00 -0.5 .. 15:30 0.5
    return {k: v.astype(np.float64) for k, v in out.items()}


def _talib_long(bars: dict[str, np.ndarray], layout: Layout, cfg: FeaturesConfig) -> dict[str, np.ndarray]:
    """TA-Lib columns, computed on each symbol's slice of the long arrays; their scale-free
    companions are elementwise, so they run once over the whole columns."""
    out: dict[str, np.ndarray] = {}
    for start, n in zip(layout.starts, layout.lengths):
        sl = slice(int(start), int(start + n))
        o, h, l, c, v = (bars[k][sl] for k in ("open", "high", "low", "close", "volume"))
        for name, values in ta_indicators(o, h, l, c, v, cfg.indicators).items():
            out.setdefault(name, np.empty(len(bars["close"])))[sl] = values
    if len(layout.starts):
        out.update(scale_free_companions(out, bars["close"], cfg))
    return out


def session_days(ts: np.ndarray) -> np.ndarray:
    """KST calendar day of each epoch-second ``ts`` (the session a bar belongs to)."""
    return (ts + KST_OFFSET_S) // 86400


def is_session_bound(cfg: FeaturesConfig, layout: Layout, days: np.ndarray) -> bool:
    """Whether features restart every session: as configured, else when a symbol has two bars on one day."""
    if cfg.session_bound is not None:
        return bool(cfg.session_bound)
    return bool(np.any((days[1:] == days[:-1]) & (layout.col[1:] == layout.col[:-1])))


def symbol_layout(symbols: pa.ChunkedArray) -> Layout:
    """:meth:`Layout.of` the symbol column, found on Arrow's dictionary codes: no Python string per row."""
    if len(symbols) == 0:
        return Layout.of(np.zeros(0, np.int64))
    encoded = pc.dictionary_encode(symbols.combine_chunks())
    codes, names = numpy_of(encoded.indices), encoded.dictionary.to_pylist()
    layout = Layout.of(codes)
    return dataclasses.replace(layout, symbols=[names[int(i)] for i in codes[layout.starts]])


def group_layout(bars: pa.Table, cfg: FeaturesConfig) -> Layout:
    """Layout of the series every feature runs down: a symbol, or one session of a symbol when
    :func:`is_session_bound` (intraday bars: no window, indicator or label spans the night)."""
    ts = numpy_of(pc.cast(bars["ts"], pa.int64()))
    layout = symbol_layout(bars["symbol"])
    _check_sorted(ts, layout)
    days = session_days(ts)
    if not is_session_bound(cfg, layout, days):
        return layout
    return Layout.of(layout.col.astype(np.int64) * 1_000_000 + days)


def compute_columns(bars: pa.Table, cfg: FeaturesConfig, label: LabelConfig):
    """(layout, feature arrays, label, label_ts) for a table of whole symbols sorted by (symbol, ts)."""
    layout, feats, lab, lab_ts = _raw_columns(bars, cfg, label)
    feats = {k: np.where(np.isinf(v), np.nan, v) if np.isinf(v).any() else v for k, v in feats.items()}
    return layout, feats, lab, lab_ts


def _raw_columns(bars: pa.Table, cfg: FeaturesConfig, label: LabelConfig,
                 store: Callable[[np.ndarray], Any] | None = None):
    """:func:`compute_columns` with ``±inf`` still in the feature arrays, each passed through
    ``store`` as soon as it is computed (the batch path casts it to float32 there, while the
    column is still in the CPU's cache, and lets the float64 go)."""
    store = store or (lambda v: v)
    ts = numpy_of(pc.cast(bars["ts"], pa.int64()))
    layout = group_layout(bars, cfg)
    long = {k: numpy_of(bars[k]).astype(np.float64, copy=False)  # float64 columns: Arrow's buffer, no copy
            for k in ("open", "high", "low", "close", "volume", "value")}
    panels = {k: layout.to_panel(v) for k, v in long.items()}
    ctx = rolling_context(panels)
    feats = {k: store(v) for k, v in _talib_long(long, layout, cfg).items()}
    for name, panel in rolled_features(ctx, cfg):
        feats[name] = store(layout.to_long(panel))
    feats.update({k: store(v) for k, v in calendar_columns(ts, list(cfg.calendar)).items()})
    lab, lab_ts = forward_labels(panels["close"], panels["open"], layout.to_panel(ts.astype(np.float64)), label)
    return layout, feats, layout.to_long(lab), layout.to_long(lab_ts)


def _probe_bars(n: int) -> pa.Table:
    """Two symbols of one deterministic random walk, long enough to finish every warm-up.

    Two, so that the probe's panels have the batches' memory layout: a one-column panel is also
    C-contiguous, which numba compiles (or loads from its cache) as another version of every
    kernel, a second load of each in every worker's first task (``tests/data/test_features.py``).
    The second symbol is the first one renamed: the counts read the first one's rows.
    """
    one = _probe_symbol(n)
    return pa.concat_tables([one, one.set_column(0, BARS_SCHEMA.field("symbol"), strings_of(["000001"] * n))])


def _probe_symbol(n: int) -> pa.Table:
    """One deterministic random-walk symbol of ``n`` daily bars."""
    rng = np.random.default_rng(0)
    close = 1e4 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, n))
    volume = rng.integers(1_000, 1_000_000, n)
    ts = (np.datetime64("2000-01-03T06:30", "s") + np.arange(n) * np.timedelta64(1, "D")).astype(np.int64)
    return pa.table(
        {"symbol": strings_of(["000000"] * n), "ts": arrow_of(ts, TS_TYPE), "open": arrow_of(open_),
         "high": arrow_of(high), "low": arrow_of(low), "close": arrow_of(close), "volume": arrow_of(volume),
         "value": arrow_of((volume * close).astype(np.int64)), "adjusted": arrow_of(np.ones(n, bool))},
        schema=BARS_SCHEMA,
    )  # fmt: skip


_PROBED: dict[str, tuple[tuple[str, ...], int]] = {}


def _probe(cfg: FeaturesConfig | Any) -> tuple[tuple[str, ...], int]:
    """(feature names, warm-up bars) of ``cfg``, found by computing a probe series once per config."""
    cfg = typed(FeaturesConfig, cfg)
    key = json.dumps(asdict(cfg), sort_keys=True)
    if key not in _PROBED:
        _PROBED[key] = _probe_uncached(dataclasses.replace(cfg, session_bound=False))  # one long series
    return _PROBED[key]


def _probe_uncached(cfg: FeaturesConfig) -> tuple[tuple[str, ...], int]:
    periods = [
        *cfg.indicators.sma, *cfg.indicators.ema, *cfg.indicators.atr, *cfg.indicators.adx, *cfg.returns,
        *cfg.volatility, *cfg.volume_z, *cfg.alpha158.windows, cfg.indicators.macd_slow + cfg.indicators.macd_signal,
        cfg.indicators.bb_period, cfg.indicators.stoch_fastk + cfg.indicators.stoch_slowk + cfg.indicators.stoch_slowd,
    ]  # fmt: skip
    n = 4 * int(max(periods)) + 100
    _, feats, _, _ = compute_columns(_probe_bars(n), cfg, LabelConfig())
    first = [v[:n] for v in feats.values()]  # the first symbol's rows (the second is the same walk)
    lead_nans = [int(np.argmax(~np.isnan(v))) if (~np.isnan(v)).any() else len(v) for v in first]
    return tuple(feats), max(lead_nans)


def feature_names(cfg: FeaturesConfig) -> list[str]:
    """Every feature column the config produces, in dataset order."""
    return list(_probe(cfg)[0])


def warmup_bars(cfg: FeaturesConfig, rtol: float | None = None, *, defined: int | None = None) -> int:
    """Bars a symbol needs before every configured feature is defined (rows before are warm-up).

    With ``rtol`` (e.g. 1e-6), also enough bars for the recursive indicators (EMA, RSI, ATR, ADX,
    MACD) to agree with their full-history values to ``rtol`` relative (see :mod:`app.features.warmup`):
    what features computed from a symbol's trailing bars only need to equal the batch features.
    ``defined``, the first count when already known (a features manifest records it), saves
    computing the probe series' features for it.
    """
    if defined is None:
        defined = _probe(cfg)[1]
    if rtol is None:
        return defined
    return max(defined, recursive_warmup(typed(FeaturesConfig, cfg).indicators, rtol))


def _ts_array(seconds: np.ndarray) -> pa.Array:
    missing = np.isnan(seconds)
    ints = np.where(missing, 0, seconds).astype(np.int64)
    return arrow_of(ints, TS_TYPE, mask=missing)


def features_schema(names: list[str] | tuple[str, ...], ranked: bool = False) -> pa.Schema:
    """The Features contract's schema: the bars' columns, one float32 column per feature, then the
    warm-up flag and the label columns.

    Feature columns mark a missing value with NaN, never null, so they are declared non-nullable:
    Parquet then stores no definition levels for them, which made writing a features file about
    40 % cheaper (docs/BENCHMARKS.md). Labels are null past a symbol's last bars.
    """
    fields = [*BARS_SCHEMA, *(pa.field(n, pa.float32(), nullable=False) for n in names),
              pa.field("warmup", pa.bool_(), nullable=False), pa.field("label", pa.float64()),
              pa.field("label_ts", TS_TYPE)]  # fmt: skip
    if ranked:
        fields += [pa.field("label_rank", pa.float64()), pa.field("label_rank_ts", TS_TYPE)]
    return pa.schema(fields)


def _stored_float32(values: np.ndarray) -> pa.Array:
    """A float64 feature column as the dataset stores it: float32, ``±inf`` made NaN."""
    return arrow_of(finite_float32(np.ascontiguousarray(values)))


def compute_features(
    bars: pa.Table, cfg: FeaturesConfig, label: LabelConfig, ranks: dict[str, np.ndarray] | None = None
) -> pa.Table:
    """The Features table of ``bars`` (whole symbols, sorted by symbol then ts).

    ``ranks`` (from :func:`app.features.labels.cross_sectional_rank`, aligned row by row with
    ``bars``) adds ``label_rank`` and ``label_rank_ts``.
    """
    validate_features(cfg)
    validate_label(label)
    bars = bars.select(list(BARS_SCHEMA.names)).cast(BARS_SCHEMA)
    layout, feats, lab, lab_ts = _raw_columns(bars, cfg, label, _stored_float32)
    names, n_warm = _probe(cfg)
    cols: dict[str, pa.Array] = {name: bars[name] for name in BARS_SCHEMA.names}
    cols.update({name: feats[name] for name in names})
    cols["warmup"] = arrow_of(layout.pos < n_warm)
    cols["label"] = arrow_of(lab, mask=np.isnan(lab))
    cols["label_ts"] = _ts_array(lab_ts)
    if ranks is not None:
        if len(ranks["label_rank"]) != bars.num_rows:
            raise DataError("label ranks do not line up with the bars", "recompute ranks for the same bars")
        cols["label_rank"] = arrow_of(ranks["label_rank"], mask=np.isnan(ranks["label_rank"]))
        cols["label_rank_ts"] = _ts_array(ranks["label_rank_ts"])
    table = pa.table(cols, schema=features_schema(names, ranks is not None))
    if cfg.warmup == "drop":
        table = table.filter(pc.invert(table["warmup"]))
    return table
