"""Features: TA-Lib equality per symbol, no cross-symbol windows, qlib definitions, scale-freeness,
labels, warm-up, no look-ahead, and the Ray Data stage's files."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import talib

from app.contracts import BARS_SCHEMA
from app.features.alpha import ROLLING
from app.features.feature_compute import compute_columns, compute_features, feature_names, warmup_bars
from app.features.feature_config import Alpha158Config, FeaturesConfig, LabelConfig
from app.typed import typed
from app.features.features import build_features, read_features, read_manifest
from app.features.labels import cross_sectional_rank
from app.features.windows import select_features
from app.errors import ConfigError, DataError
from tests.conftest import ROOT

ALL_OPS = Alpha158Config(rolling=list(ROLLING))  # every operator, not just the default subset


def to_table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False).select(BARS_SCHEMA.names).cast(BARS_SCHEMA)


def symbol_arrays(frame: pd.DataFrame, sym: str) -> dict[str, np.ndarray]:
    one = frame[frame["symbol"] == sym]
    return {k: one[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume", "value")}


def talib_reference(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The default indicator set, called the plain TA-Lib way on one symbol."""
    h, l, c, v = a["high"], a["low"], a["close"], a["volume"]
    ref = {f"sma_{n}": talib.SMA(c, n) for n in (5, 10, 20, 60)}
    ref.update({f"ema_{n}": talib.EMA(c, n) for n in (5, 10, 20, 60)})
    ref["rsi_14"] = talib.RSI(c, 14)
    ref["macd"], ref["macd_signal"], ref["macd_hist"] = talib.MACD(c, 12, 26, 9)
    ref["bb_upper"], ref["bb_middle"], ref["bb_lower"] = talib.BBANDS(c, 20, 2.0, 2.0)
    ref["atr_14"], ref["natr_14"], ref["obv"] = talib.ATR(h, l, c, 14), talib.NATR(h, l, c, 14), talib.OBV(c, v)
    ref["stoch_k"], ref["stoch_d"] = talib.STOCH(h, l, c, 14, 3, 0, 3, 0)
    ref.update(mfi_14=talib.MFI(h, l, c, v, 14), adx_14=talib.ADX(h, l, c, 14), cci_14=talib.CCI(h, l, c, 14))
    ref.update(willr_14=talib.WILLR(h, l, c, 14), roc_5=talib.ROC(c, 5), roc_20=talib.ROC(c, 20))
    return ref


def per_symbol(frame: pd.DataFrame, feats: dict[str, np.ndarray], sym: str) -> dict[str, np.ndarray]:
    mask = (frame["symbol"] == sym).to_numpy()
    return {k: v[mask] for k, v in feats.items()}


def test_indicators_equal_talib_on_each_symbol_of_a_batch(bars_frame):
    _, feats, _, _ = compute_columns(to_table(bars_frame), FeaturesConfig(), LabelConfig())
    table = compute_features(to_table(bars_frame), FeaturesConfig(), LabelConfig())
    for sym in bars_frame["symbol"].unique():
        mine = per_symbol(bars_frame, feats, sym)
        stored = per_symbol(bars_frame, {k: table[k].to_numpy() for k in feats}, sym)
        for name, expected in talib_reference(symbol_arrays(bars_frame, sym)).items():
            np.testing.assert_allclose(mine[name], expected, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=name)
            # float32 storage: exactly TA-Lib's value rounded once
            np.testing.assert_array_equal(stored[name], expected.astype(np.float32), err_msg=name)


def test_batch_of_symbols_equals_each_symbol_alone(bars_frame, same_table):
    """No rolling window, indicator or label ever reaches across a symbol boundary."""
    cfg = FeaturesConfig(alpha158=ALL_OPS, calendar=["dow", "dom", "month", "tod"])
    together = compute_features(to_table(bars_frame), cfg, LabelConfig(horizon=3))
    for sym in ["000040", "000010", "000030"]:
        alone = compute_features(to_table(bars_frame[bars_frame["symbol"] == sym]), cfg, LabelConfig(horizon=3))
        part = together.filter(pc.equal(together["symbol"], sym))
        assert same_table(part, alone), sym


def test_shorter_symbol_starts_with_its_own_warm_up(bars_frame):
    table = compute_features(to_table(bars_frame), FeaturesConfig(), LabelConfig())
    late = table.filter(pc.equal(table["symbol"], "000040"))
    assert np.isnan(late["sma_60"].to_numpy()[:59]).all() and np.isfinite(late["sma_60"].to_numpy()[59])
    assert late["warmup"].to_numpy(zero_copy_only=False)[: warmup_bars(FeaturesConfig())].all()


def rolling_reference(c: pd.Series, h: pd.Series, l: pd.Series, v: pd.Series, d: int) -> dict[str, np.ndarray]:
    """qlib's Alpha158 expressions written out naively, full windows only."""
    x = np.arange(d, dtype=float)

    def fit(w):
        slope, icpt = np.polyfit(x, w, 1)
        resid = w - (slope * x + icpt)
        return slope, resid[-1], 1 - (resid**2).sum() / ((w - w.mean()) ** 2).sum()

    fits = c.rolling(d).apply(lambda w: fit(w)[0], raw=True)
    resi = c.rolling(d).apply(lambda w: fit(w)[1], raw=True)
    rsqr = c.rolling(d).apply(lambda w: fit(w)[2], raw=True)
    pct = c.rolling(d).apply(lambda w: ((w < w[-1]).sum() + (w <= w[-1]).sum() + 1) / (2 * len(w)), raw=True)
    dc = c.diff()
    lo, hi = l.rolling(d).min(), h.rolling(d).max()
    return {
        f"a158_roc{d}": c.shift(d) / c, f"a158_std{d}": c.rolling(d).std() / c, f"a158_beta{d}": fits / c,
        f"a158_resi{d}": resi / c, f"a158_rsqr{d}": rsqr, f"a158_qtlu{d}": c.rolling(d).quantile(0.8) / c,
        f"a158_rank{d}": pct, f"a158_rsv{d}": (c - lo) / (hi - lo + 1e-12),
        f"a158_imax{d}": h.rolling(d).apply(lambda w: w.argmax() + 1, raw=True) / d,
        f"a158_corr{d}": c.rolling(d).corr(np.log(v + 1)),
        f"a158_cntp{d}": (dc > 0).astype(float).where(dc.notna()).rolling(d).mean(),
        f"a158_sump{d}": dc.clip(lower=0).rolling(d).sum() / (dc.abs().rolling(d).sum() + 1e-12),
        f"a158_vstd{d}": v.rolling(d).std() / (v + 1e-12),
        f"a158_wvma{d}": ((c / c.shift(1) - 1).abs() * v).rolling(d).std()
        / (((c / c.shift(1) - 1).abs() * v).rolling(d).mean() + 1e-12),
    }  # fmt: skip


def test_alpha158_follows_qlib_definitions(bars_frame):
    one = bars_frame[bars_frame["symbol"] == "000020"].reset_index(drop=True)
    cfg = FeaturesConfig(alpha158=ALL_OPS)
    _, feats, _, _ = compute_columns(to_table(one), cfg, LabelConfig())
    c, h, l, v = (one[k].astype(float) for k in ("close", "high", "low", "volume"))
    np.testing.assert_allclose(feats["a158_kmid"], (c - one["open"]) / one["open"], rtol=1e-12)
    np.testing.assert_allclose(feats["a158_vwap0"], one["value"] / one["volume"] / c, rtol=1e-9)
    for d in (5, 20):
        for name, expected in rolling_reference(c, h, l, v, d).items():
            np.testing.assert_allclose(feats[name], expected, rtol=1e-7, atol=1e-9, equal_nan=True, err_msg=name)


def rescaled(frame: pd.DataFrame, price: float, volume: float) -> pd.DataFrame:
    out = frame.copy()
    for k in ("open", "high", "low", "close"):
        out[k] = out[k] * price
    out["volume"] = (out["volume"] * volume).round().astype(np.int64)
    out["value"] = (out["value"] * price * volume).round().astype(np.int64)
    return out


def test_model_columns_are_scale_free_and_raw_columns_are_not(bars_frame):
    cfg = FeaturesConfig()
    model = select_features(feature_names(cfg), cfg.model_columns)
    assert "sma_20" not in model and "obv" not in model and "a158_kmid" in model and "rsi_14" in model
    _, base, _, _ = compute_columns(to_table(bars_frame), cfg, LabelConfig())
    _, prices, _, _ = compute_columns(to_table(rescaled(bars_frame, 7.3, 1)), cfg, LabelConfig())
    _, volumes, _, _ = compute_columns(to_table(rescaled(bars_frame, 1, 3)), cfg, LabelConfig())
    for name in model:
        np.testing.assert_allclose(prices[name], base[name], rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=name)
        # qlib's CORR uses log(volume + 1): volume-scale free only up to that +1
        tol = 1e-3 if name.startswith("a158_corr") else 1e-6
        np.testing.assert_allclose(volumes[name], base[name], rtol=tol, atol=tol, equal_nan=True, err_msg=name)
    for name in ("sma_20", "ema_5", "macd", "bb_upper", "atr_14"):
        assert not np.allclose(prices[name], base[name], equal_nan=True), name
    assert not np.allclose(volumes["obv"], base["obv"], equal_nan=True)


def test_close_and_open_labels_and_label_ts(bars_frame):
    one = bars_frame[bars_frame["symbol"] == "000010"].reset_index(drop=True)
    close_t = compute_features(to_table(one), FeaturesConfig(), LabelConfig(horizon=2))
    c = one["close"].to_numpy()
    lab = close_t["label"].to_numpy(zero_copy_only=False)
    np.testing.assert_allclose(lab[:-2], c[2:] / c[:-2] - 1, rtol=1e-12)
    assert np.isnan(lab[-2:]).all() and close_t["label_ts"].null_count == 2
    assert close_t["label_ts"].to_pylist()[:-2] == close_t["ts"].to_pylist()[2:]
    open_t = compute_features(to_table(one), FeaturesConfig(), LabelConfig(horizon=2, price="open"))
    o = one["open"].to_numpy()
    np.testing.assert_allclose(open_t["label"].to_numpy(zero_copy_only=False)[:-3], o[3:] / o[1:-2] - 1, rtol=1e-12)
    assert open_t["label_ts"].to_pylist()[:-3] == open_t["ts"].to_pylist()[3:]
    assert open_t["label_ts"].null_count == 3


def test_cross_sectional_rank_per_ts():
    ts = np.array([1, 1, 1, 2, 2, 3])
    label = np.array([0.3, -0.1, 0.3, 0.5, np.nan, 0.2])
    label_ts = np.array([10, 12, 11, 20, np.nan, 30], dtype=float)
    rank, reach = cross_sectional_rank(ts, label, label_ts)
    np.testing.assert_allclose(rank, [0.75, 0.0, 0.75, 0.5, np.nan, 0.5], equal_nan=True)
    np.testing.assert_array_equal(reach, [12, 12, 12, 20, np.nan, 30])


def test_warmup_mask_and_drop(bars_frame):
    cfg = FeaturesConfig()
    n_warm = warmup_bars(cfg)
    table = compute_features(to_table(bars_frame), cfg, LabelConfig())
    _, feats, _, _ = compute_columns(to_table(bars_frame), cfg, LabelConfig())
    lead_nans = {k: int(np.argmax(~np.isnan(v[:300]))) for k, v in feats.items()}  # first symbol
    assert max(lead_nans.values()) == n_warm and lead_nans["sma_60"] == 59 and lead_nans["logret_1"] == 1
    for sym in bars_frame["symbol"].unique():
        warm = table.filter(pc.equal(table["symbol"], sym))["warmup"].to_numpy(zero_copy_only=False)
        assert warm[:n_warm].all() and not warm[n_warm:].any()
    dropped = compute_features(to_table(bars_frame), FeaturesConfig(warmup="drop"), LabelConfig())
    assert dropped.num_rows == table.num_rows - 4 * n_warm
    assert not np.isnan(np.column_stack([dropped[k].to_numpy() for k in feature_names(cfg)])).any()


def test_no_feature_at_or_before_t_sees_later_bars(bars_frame, same_table):
    cut = bars_frame["ts"].sort_values().unique()[180]
    changed = bars_frame.copy()
    later = changed["ts"] > cut
    rng = np.random.default_rng(9)
    for k in ("open", "high", "low", "close"):
        changed.loc[later, k] *= rng.uniform(0.5, 1.5, later.sum())
    changed.loc[later, "volume"] = rng.integers(1, 10**7, later.sum())
    cfg = FeaturesConfig(alpha158=ALL_OPS, calendar=["dow", "dom", "month", "tod"])
    base = compute_features(to_table(bars_frame), cfg, LabelConfig(rank=False))
    other = compute_features(to_table(changed), cfg, LabelConfig(rank=False))
    early = pc.less_equal(base["ts"], pa.scalar(cut.to_pydatetime(), base.schema.field("ts").type))
    cols = feature_names(cfg) + ["warmup"]
    assert same_table(base.filter(early).select(cols), other.filter(early).select(cols))
    settled = pc.less_equal(base["label_ts"], pa.scalar(cut.to_pydatetime(), base.schema.field("ts").type))
    assert same_table(base.filter(settled).select(["label"]), other.filter(settled).select(["label"]))
    assert pc.sum(settled).as_py() > 500
    assert not same_table(base.select(cols), other.select(cols))  # the perturbation did change later rows


def test_unsorted_or_duplicate_bars_are_rejected(bars_frame):
    one = bars_frame[bars_frame["symbol"] == "000010"]
    with pytest.raises(DataError, match="strictly increasing"):
        compute_features(to_table(pd.concat([one, one.iloc[[5]]])), FeaturesConfig(), LabelConfig())
    mixed = pd.concat([one.iloc[:10], bars_frame[bars_frame["symbol"] == "000020"].iloc[:10], one.iloc[10:20]])
    with pytest.raises(DataError, match="grouped by symbol"):
        compute_features(to_table(mixed), FeaturesConfig(), LabelConfig())


def test_bad_config_is_a_config_error(bars_frame):
    bars = to_table(bars_frame)
    with pytest.raises(ConfigError, match="unknown"):
        compute_features(bars, FeaturesConfig(alpha158=Alpha158Config(rolling=["NOPE"])), LabelConfig())
    with pytest.raises(ConfigError, match="label.horizon"):
        compute_features(bars, FeaturesConfig(), LabelConfig(horizon=0))
    with pytest.raises(ConfigError, match="smaa"):
        typed(FeaturesConfig, {"smaa": [5]})
    cfg = typed(FeaturesConfig, {"indicators": {"sma": [7]}, "returns": (1, 2)})
    assert cfg.indicators.sma == [7] and cfg.returns == [1, 2] and cfg.indicators.rsi == [14]
    from omegaconf import OmegaConf

    node = OmegaConf.structured(FeaturesConfig(returns=[3]))  # what a composed Hydra config holds
    assert typed(FeaturesConfig, node) == FeaturesConfig(returns=[3])


def test_ray_stage_writes_whole_symbols_with_the_contract(ray_session, bars_store, bars_frame, tmp_path, same_table,
                                                           caplog, monkeypatch):
    cfg = FeaturesConfig(symbols_per_task=3)
    names, n_warm = feature_names(cfg), warmup_bars(cfg)
    with caplog.at_level(logging.INFO, logger="app.progress"), monkeypatch.context() as m:
        # the driver takes the columns and the warm-up from the tasks: it never computes features itself
        m.setattr("app.features.feature_compute._probe", lambda *a: pytest.fail("the driver computed features"))
        info = build_features(str(bars_store), cfg, LabelConfig(rank=True), path=str(tmp_path / "feat"))
    progress = [r.getMessage() for r in caplog.records if r.name == "app.progress"]
    assert any(m.startswith("labels to rank: 2/2 tasks (4/4 symbols)") for m in progress)
    assert progress[-1].startswith("features: 2/2 tasks (4/4 symbols) in ")  # the stage's progress line, at its end
    manifest = json.loads((tmp_path / "feat" / "_manifest.json").read_text())
    assert manifest["feature_columns"] == names and manifest["label"]["rank"] is True
    assert manifest["warmup_bars"] == n_warm > 0
    assert [f["symbols"] for f in info.files] == [["000010", "000020", "000030"], ["000040"]]
    assert read_manifest(info.path).rows == len(bars_frame) == info.rows
    for f, path in zip(info.files, info.file_paths):
        table = read_features(path)
        assert table.schema.field("ts").type == BARS_SCHEMA.field("ts").type
        expected = compute_features(to_table(bars_frame[bars_frame["symbol"].isin(f["symbols"])]), cfg, LabelConfig())
        assert same_table(table.select(expected.column_names), expected)  # whole symbols, in (symbol, ts) order
    full = read_features(info.path).to_pandas()
    ranks = full.groupby("ts")["label"].rank(method="average")
    count = full.groupby("ts")["label"].transform("count")
    expected = ((ranks - 1) / (count - 1)).where(count > 1, 0.5).where(full["label"].notna())
    np.testing.assert_allclose(full["label_rank"], expected, rtol=1e-12, equal_nan=True)
    assert full["label_rank"].notna().sum() == len(full) - 4


def test_ray_stage_errors_name_the_fix(ray_session, tmp_path, bars_store):
    with pytest.raises(DataError, match="collect"):
        build_features(str(tmp_path / "empty"), None, None)
    with pytest.raises(DataError, match="999999"):
        build_features(str(bars_store), None, None, symbols=["999999"], path=str(tmp_path / "f"))
    with pytest.raises(DataError, match="features stage"):
        read_manifest(str(tmp_path / "nothing"))


def test_the_manifest_takes_the_tasks_columns_and_refuses_tasks_that_disagree():
    from app.features.features import _columns_and_warmup

    cfg = FeaturesConfig()
    same = [{"columns": ["a", "b"], "warmup_bars": 7}, {"columns": ["a", "b"], "warmup_bars": 7}]
    assert _columns_and_warmup(same, cfg) == (["a", "b"], 7)
    with pytest.raises(DataError, match="disagree"):
        _columns_and_warmup([*same, {"columns": ["a"], "warmup_bars": 7}], cfg)
    assert _columns_and_warmup([], cfg) == (feature_names(cfg), warmup_bars(cfg))  # no task reported: computed here


def test_stage_entry_reads_the_run_config(ray_session, bars_store, tmp_path):
    from types import SimpleNamespace as NS

    out = tmp_path / "feat"
    cfg = NS(store=NS(root=str(bars_store)), data=NS(freq="D", symbols=[10, "000020"]),
             features={"path": str(out), "returns": [1]}, label={"horizon": 2})  # fmt: skip
    from app.features.features import run

    info = run(cfg)
    assert info.symbols == ["000010", "000020"] and Path(info.path) == out.resolve()
    assert info.label["horizon"] == 2 and "logret_5" not in info.feature_columns


PROBE_LAYOUT = """
import json
import pyarrow as pa
from app.contracts import BARS_SCHEMA
from app.features import rolling_kernels as K
from app.features.feature_compute import _probe_symbol, compute_features
from app.features.feature_config import FeaturesConfig, LabelConfig
one = _probe_symbol(400)
symbol = BARS_SCHEMA.field("symbol")
bars = pa.concat_tables([one.set_column(0, symbol, pa.array([f"00000{i}"] * 400)) for i in range(3)])
compute_features(bars, FeaturesConfig(), LabelConfig())
print(json.dumps({name: len(getattr(K, name).signatures) for name in dir(K) if name.startswith("rolling_")}))
"""


def test_a_first_batch_loads_one_version_of_each_kernel():
    """The probe behind the column names has the batches' panel layout, so a fresh worker's first
    task compiles (or loads) each kernel once, not once for the probe and again for its panels."""
    proc = subprocess.run([sys.executable, "-c", PROBE_LAYOUT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = json.loads(proc.stdout)
    assert counts and set(counts.values()) == {1}, counts


NO_PANDAS = """
import json, sys
import numpy as np
from app.features.features import _feature_task, _label_task
from app.features.feature_config import FeaturesConfig, LabelConfig
kw = dict(store_root=sys.argv[1], freq="D", tasks=[["000000", "000001"]], features=FeaturesConfig(),
          label=LabelConfig(rank=True), out_dir=sys.argv[2])
narrow = _label_task(0, kw)
ranks = {"label_rank": np.full(narrow.num_rows, 0.5), "label_rank_ts": np.full(narrow.num_rows, 1e9)}
summary = _feature_task(0, kw, ranks)
print(json.dumps({"rows": summary["rows"], "loaded": sorted(m for m in ("pandas", "omegaconf", "hydra") if m in sys.modules)}))
"""


def test_a_feature_worker_never_loads_pandas_or_omegaconf(tmp_path: Path):
    """A fresh worker's tasks (labels to rank, then features) import neither: pandas alone was
    about 0.3 s of each worker's start, paid by every cold features stage."""
    from app.collect.store import BarStore
    from app.features.feature_compute import _probe_bars

    bars, store = _probe_bars(300), BarStore(tmp_path / "store")
    for symbol in ("000000", "000001"):
        store.write("D", symbol, bars.filter(pc.equal(bars["symbol"], symbol)), "test")
    (tmp_path / "out").mkdir()
    proc = subprocess.run([sys.executable, "-c", NO_PANDAS, str(tmp_path / "store"), str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"rows": 600, "loaded": []}, result
