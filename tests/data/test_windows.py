"""Windows, splits and scalers: embargo, exact window contents, train-only scaler, no look-ahead,
walk-forward folds, and the Ray Data datasets matching the plain iteration."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from app.features.feature_config import (
    DataPipelineConfig, FeaturesConfig, LabelConfig, SplitConfig, WalkForwardConfig, WindowsConfig,
)  # fmt: skip
from app.features.features import build_features, read_features, read_manifest
from app.features.scalers import FeatureScaler
from app.features.splits import Period, Split, resolve_split
from app.features.windows import (
    FileFrame, WindowSpec, fit_scaler, make_window_datasets, read_calendar, walk_forward_splits, window_ends,
    windows_numpy,
)  # fmt: skip
from app.errors import ConfigError

SYMBOLS = ["000010", "000020", "000030", "000040", "000050"]
HORIZON = 2


def build(root, frame, make_store, rank=True):
    make_store(root / "store", frame)
    return build_features(
        str(root / "store"), FeaturesConfig(symbols_per_task=2), LabelConfig(horizon=HORIZON, rank=rank),
        path=str(root / "feat"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def frame(make_bars):
    return make_bars(SYMBOLS, 320, seed=5, skip_first={"000050": 100})


@pytest.fixture(scope="module")
def dataset(ray_session, tmp_path_factory, frame, make_store):
    return build(tmp_path_factory.mktemp("windows"), frame, make_store)


def config(**windows) -> DataPipelineConfig:
    return DataPipelineConfig(windows=WindowsConfig(**{"seq_len": 10, "block_windows": 64, **windows}))


def features_frame(info) -> pd.DataFrame:
    return read_features(info.path).to_pandas()


def test_embargo_keeps_labels_inside_their_period(dataset):
    data = make_window_datasets(dataset.path, config())
    assert data.split.embargo_bars == HORIZON
    parts = {p: windows_numpy(data, p) for p in ("train", "val", "test")}
    assert all(len(w["y"]) > 100 for w in parts.values())
    for a, b in (("train", "val"), ("val", "test")):
        assert parts[a]["label_ts"].max() < parts[b]["ts"].min()
        assert parts[a]["ts"].max() < parts[b]["ts"].min()
    for p, w in parts.items():
        period = data.split.period(p)
        ts, lts = w["ts"].astype(np.int64), w["label_ts"].astype(np.int64)
        assert ts.min() >= period.start and ts.max() <= period.sample_end and lts.max() <= period.end


def test_windows_carry_exactly_the_right_rows(dataset):
    cfg = config()
    data = make_window_datasets(dataset.path, cfg)
    got = windows_numpy(data, "val")
    feats = features_frame(dataset)
    x_all = data.scaler.transform(feats[data.feature_names].to_numpy(np.float64))
    ts_all = feats["ts"].astype("datetime64[s, Asia/Seoul]").dt.tz_convert(None).to_numpy().astype("datetime64[s]")
    order = np.lexsort((got["ts"], got["symbol"]))
    assert np.array_equal(order, np.arange(len(order)))  # val/test come in (symbol, ts) order
    assert got["x"].shape == (len(got["y"]), 10, data.n_features) and got["x"].dtype == np.float32
    assert np.isfinite(got["x"]).all()
    period, L = data.split.val, 10
    expected = []
    for sym, rows in feats.groupby("symbol").indices.items():
        for k in range(L - 1, len(rows)):
            i, window = rows[k], rows[k - L + 1 : k + 1]
            lts = feats["label_ts"].iloc[i]
            ok = np.isfinite(x_all[window]).all() and np.isfinite(feats["label"].iloc[i]) and pd.notna(lts)
            ts_i = int(ts_all[i].astype(np.int64))
            if ok and period.start <= ts_i <= period.sample_end and lts.timestamp() <= period.end:
                expected.append((sym, i, window))
    assert len(expected) == len(got["y"])
    for j in np.random.default_rng(0).choice(len(expected), 25, replace=False):
        sym, i, window = expected[j]
        assert got["symbol"][j] == sym and got["ts"][j] == ts_all[i]
        np.testing.assert_array_equal(got["x"][j], x_all[window])
        assert got["y"][j] == np.float32(feats["label"].iloc[i])


def test_window_ends_skip_nan_rows_and_symbol_starts():
    n, L = 12, 3
    frame = FileFrame(
        symbol=np.array(["A"] * 6 + ["B"] * 6, object), ts=np.arange(n, dtype=float), pos=np.r_[0:6, 0:6],
        y=np.ones(n), target_ts=np.arange(n, dtype=float) + 1,
        label_ts=np.arange(n, dtype=float) + 1, x=np.zeros((n, 2)),
    )  # fmt: skip
    xs = np.zeros((n, 2), np.float32)
    xs[3, 1] = np.nan  # row 3 of A: windows ending at 3, 4, 5 must go
    frame.y[10] = np.nan  # B's row 4 has no label
    spec = WindowSpec(["a", "b"], None, L, "label", Period(0, 100, 100), 8)
    assert window_ends(frame, xs, spec).tolist() == [2, 8, 9, 11]


def test_ray_datasets_match_the_plain_iteration(dataset):
    data = make_window_datasets(dataset.path, config())
    for part in ("train", "test"):
        plain = windows_numpy(data, part)
        batches = list(data.dataset(part).iter_batches(batch_size=None, batch_format="numpy"))
        ray_w = {k: np.concatenate([b[k] for b in batches]) for k in plain}
        a, b = np.lexsort((plain["ts"], plain["symbol"])), np.lexsort((ray_w["ts"], ray_w["symbol"]))
        for k in plain:
            np.testing.assert_array_equal(plain[k][a], ray_w[k][b], err_msg=k)
    torch_batch = next(iter(data.train.select_columns(["x", "y"]).iter_torch_batches(batch_size=32)))
    assert tuple(torch_batch["x"].shape) == (32, 10, data.n_features) and str(torch_batch["y"].dtype) == "torch.float32"


def test_train_windows_are_shuffled_reproducibly(dataset):
    data = make_window_datasets(dataset.path, config(seed=3))
    first, again = windows_numpy(data, "train"), windows_numpy(data, "train")
    np.testing.assert_array_equal(first["ts"], again["ts"])
    assert not (np.diff(first["ts"].astype(np.int64)) >= 0).all()


@pytest.mark.parametrize("method", ["zscore", "robust"])
def test_scaler_is_fit_on_training_rows_only(dataset, method, tmp_path):
    data = make_window_datasets(dataset.path, config(scaler=method, max_fit_rows=10**9, clip=None))
    feats = features_frame(dataset)
    ts = feats["ts"].map(lambda t: int(t.timestamp()))
    train = feats.loc[(ts >= data.split.train.start) & (ts <= data.split.train.end), data.feature_names]
    x = train.to_numpy(np.float64)
    if method == "zscore":
        center, scale = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
    else:
        x = x.astype(np.float32)
        center = np.nanmedian(x, axis=0)
        scale = 1.4826 * np.nanmedian(np.abs(x - center), axis=0)
    np.testing.assert_allclose(data.scaler.center, center, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(data.scaler.scale, np.where(scale > 1e-12, scale, 1.0), rtol=1e-6, atol=1e-9)
    info = read_manifest(dataset.path)
    wcfg = config(scaler=method, max_fit_rows=10**9, clip=None).windows
    serial = fit_scaler(info, data.feature_names, data.split, wcfg, read_calendar(info), use_ray=False)
    np.testing.assert_allclose(serial.center, data.scaler.center, rtol=1e-12)
    data.save(tmp_path)
    loaded = FeatureScaler.load(tmp_path / "scaler.json")
    np.testing.assert_array_equal(loaded.transform(x[:50]), data.scaler.transform(x[:50]))
    assert Split.from_dict(json.loads((tmp_path / "split.json").read_text())) == data.split


def test_nothing_at_or_before_t_changes_when_later_bars_do(dataset, frame, make_store, tmp_path):
    """Features, scaler statistics and every window ending by t are the same after rewriting bars after t."""
    calendar = read_calendar(read_manifest(dataset.path))
    cut = pd.Timestamp(int(calendar[200]), unit="s", tz="Asia/Seoul")
    changed = frame.copy()
    later = changed["ts"] > cut
    rng = np.random.default_rng(1)
    for k in ("open", "high", "low", "close"):
        changed.loc[later, k] *= rng.uniform(0.7, 1.3, later.sum())
    changed.loc[later, "volume"] = rng.integers(1, 10**6, later.sum())
    other = build(tmp_path, changed, make_store)
    cfg = config(scaler="robust")
    cfg.split = SplitConfig(train_end=cut.strftime("%Y-%m-%d"), val_end=None, train_frac=0.7, val_frac=0.1)
    base_w, other_w = make_window_datasets(dataset.path, cfg), make_window_datasets(other.path, cfg)
    assert base_w.split == other_w.split and base_w.split.train.end == int(cut.timestamp())
    assert base_w.scaler.to_dict() == other_w.scaler.to_dict()
    a, b = windows_numpy(base_w, "train"), windows_numpy(other_w, "train")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    va, vb = windows_numpy(base_w, "val"), windows_numpy(other_w, "val")
    assert not np.array_equal(va["x"], vb["x"])  # later windows did change


def test_rank_target_is_embargoed_by_the_whole_cross_section(dataset):
    data = make_window_datasets(dataset.path, config(target="label_rank"))
    w = windows_numpy(data, "train")
    assert 0.0 <= w["y"].min() and w["y"].max() <= 1.0
    feats = features_frame(dataset).set_index(["symbol", "ts"])
    keys = list(zip(w["symbol"], pd.to_datetime(w["ts"]).tz_localize("UTC").tz_convert("Asia/Seoul")))
    reach = feats.loc[keys, "label_rank_ts"].map(lambda t: int(t.timestamp()))
    assert reach.max() <= data.split.train.end


def test_walk_forward_folds(dataset):
    folds_cfg = WalkForwardConfig(train_bars=100, val_bars=30, test_bars=40)
    cfg = DataPipelineConfig(split=SplitConfig(walk_forward=folds_cfg))
    folds = walk_forward_splits(dataset.path, cfg)
    calendar = read_calendar(read_manifest(dataset.path))
    assert len(folds) == (len(calendar) - 170) // 40 + 1
    for k, fold in enumerate(folds):
        i = np.searchsorted(calendar, fold.train.start)
        assert i == 40 * k and calendar[i + 99] == fold.train.end and calendar[i + 100] == fold.val.start
        assert calendar[i + 130] == fold.test.start and calendar[i + 169] == fold.test.end
        assert fold.train.sample_end == calendar[i + 99 - HORIZON]
    cfg.split.walk_forward.expanding = True
    cfg.split.walk_forward.max_folds = 2
    expanding = walk_forward_splits(dataset.path, cfg)
    assert len(expanding) == 2 and all(f.train.start == calendar[0] for f in expanding)
    fold = make_window_datasets(dataset.path, config(), split=folds[1])
    assert windows_numpy(fold, "test")["ts"].astype(np.int64).min() >= folds[1].test.start
    cfg.split.walk_forward.train_bars = 10_000
    with pytest.raises(ConfigError, match="walk-forward needs"):
        walk_forward_splits(dataset.path, cfg)


def test_split_config_errors():
    calendar = np.arange(100) * 86400 + 1_600_000_000
    with pytest.raises(ConfigError, match="embargo_bars=1 is shorter"):
        resolve_split(calendar, SplitConfig(embargo_bars=1), reach=2)
    with pytest.raises(ConfigError, match="out of order"):
        resolve_split(calendar, SplitConfig(train_end="2020-12-01", val_end="2020-10-01"), reach=1)
    with pytest.raises(ConfigError, match="not a date"):
        resolve_split(calendar, SplitConfig(train_end="soon"), reach=1)
    split = resolve_split(calendar, SplitConfig(embargo_bars=5), reach=1)
    assert split.train.sample_end == calendar[69 - 5] and split.val.start == calendar[70]


def test_window_config_errors(dataset):
    with pytest.raises(ConfigError, match="match no feature"):
        make_window_datasets(dataset.path, DataPipelineConfig(features=FeaturesConfig(model_columns=["nope_*"])))
    with pytest.raises(ConfigError, match="windows.target"):
        make_window_datasets(dataset.path, config(target="close"))
