"""The file source: long-format CSV/Parquet into the Bars contract, with bad rows counted."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.collect.file_source import check_rows, load_file
from app.errors import DataError


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Code": ["5930", "005930", "005930", "000660", "000660", "000660", "X1", "000660"],
            "Date": ["2024-01-03", "2024-01-02", "2024-01-04", "2024-01-02", "2024-01-03", "2024-01-03",
                     "2024-01-02", "2024-01-05"],
            "Open": [10, 10, 10, 20, 20, 21, 5, 20],
            "High": [11, 11, 9, 21, 22, 22, 6, 21],  # row 2: high below open -> rejected
            "Low": [9, 9, 8, 19, 19, 19, 4, -1],  # row 7: non-positive price
            "Close": [10.5, 10.2, 9, 20.5, 21, 21, 5, 20],
            "Volume": [100, 200, 300, 400, 500, 600, 700, 800],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_valid_rows_load_and_bad_rows_are_counted(tmp_path: Path, suffix: str):
    path = tmp_path / f"bars{suffix}"
    df = frame()
    df.to_csv(path, index=False) if suffix == ".csv" else df.to_parquet(path)
    out = load_file(path)
    assert out.counts == {
        "high below open/close": 1,
        "duplicate (symbol, ts)": 2,
        "bad symbol": 1,
        "non-positive price": 1,
    }
    assert len(out.rejected) == 5 and out.bars.num_rows == 3
    got = out.bars.to_pandas()
    assert got["symbol"].tolist() == ["000660", "005930", "005930"]
    assert [t.strftime("%Y-%m-%d %H:%M %Z") for t in got["ts"]] == [
        "2024-01-02 15:30 KST", "2024-01-02 15:30 KST", "2024-01-03 15:30 KST"]
    assert got["value"].tolist() == [round(400 * 20.5), round(200 * 10.2), round(100 * 10.5)]


def test_missing_columns_and_missing_file_are_clear(tmp_path: Path):
    path = tmp_path / "bars.csv"
    pd.DataFrame({"symbol": ["005930"], "date": ["2024-01-02"], "close": [1.0]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="lacks column\\(s\\) open, high, low, volume"):
        load_file(path)
    with pytest.raises(DataError, match="does not exist"):
        load_file(tmp_path / "nope.parquet")


def _split_adjusted(make_bars) -> pd.DataFrame:
    """Bars whose high equals the close up to float rounding, as split-adjusted data has them."""
    df = make_bars(["000010", "000020"], 260, seed=5)
    tie = np.arange(len(df)) % 7 == 3
    df.loc[tie, "high"] = np.maximum(df.loc[tie, "open"], df.loc[tie, "close"])
    df.loc[tie, "close"] = df.loc[tie, "high"] * (1 + 2e-16) + 1e-13  # a rounding step above the high
    return df


def test_float_rounding_is_repaired_not_rejected_and_indicators_match_the_full_series(tmp_path, make_bars):
    import talib

    df = _split_adjusted(make_bars)
    path = tmp_path / "adjusted.csv"
    df.to_csv(path, index=False)
    out = load_file(path)
    assert out.counts == {} and out.bars.num_rows == len(df)
    assert out.repaired == int((df["close"] > df["high"]).sum()) > 50
    got = out.bars.to_pandas()
    assert (got["high"] >= np.maximum(got["open"], got["close"])).all()
    assert (got["low"] <= np.minimum(got["open"], got["close"])).all()
    for sym, want in df.groupby("symbol"):
        have = got[got["symbol"] == sym]
        np.testing.assert_allclose(have["high"], want["high"], rtol=1e-12)
        np.testing.assert_allclose(talib.ATR(have["high"].to_numpy(), have["low"].to_numpy(), have["close"].to_numpy()),
                                   talib.ATR(want["high"].to_numpy(), want["low"].to_numpy(), want["close"].to_numpy()),
                                   rtol=1e-9, equal_nan=True)


def test_bad_rows_beyond_the_tolerance_name_the_series_they_leave_holes_in(tmp_path, make_bars, caplog):
    df = make_bars(["000010", "000020", "000030"], 60, seed=2)
    middle, edge = df.index[df["symbol"] == "000020"][30], df.index[df["symbol"] == "000030"][-1]
    df.loc[[middle, edge], "high"] = df.loc[[middle, edge], "close"] * 0.99  # a real error, 1% off
    path = tmp_path / "bars.csv"
    df.to_csv(path, index=False)
    out = load_file(path)
    assert out.counts == {"high below open/close": 2} and out.holes == ["000020"]  # the edge row leaves none
    with caplog.at_level("WARNING"):
        check_rows(path.name, out, "reject")
    assert "2 of 180 rows rejected" in caplog.text and "series with holes" in caplog.text and "000020" in caplog.text
    with pytest.raises(DataError) as info:
        check_rows(path.name, out, "fail")
    assert "\n" not in str(info.value) and "data.on_bad_rows=reject" in str(info.value) and "000020" in str(info.value)


def test_on_bad_rows_fail_stops_the_collect_stage_and_keeps_the_rejected_rows(tmp_path, make_bars):
    from tests.conftest import compose_config
    from app.collect.collect import run

    df = make_bars(["000010"], 30, seed=1)
    df.loc[5, "low"] = df.loc[5, "close"] * 1.5
    path = tmp_path / "bars.parquet"
    df.to_parquet(path)
    cfg = compose_config("stage=collect", "data=file", f"data.path={path}", "data.on_bad_rows=fail",
                         f"store.root={tmp_path / 'store'}")
    with pytest.raises(DataError, match="low above open/close"):
        run(cfg, tmp_path / "run")
    assert "low above open/close" in (tmp_path / "run" / "rejected_rows.csv").read_text()
    assert not (tmp_path / "store").exists()  # nothing stored from a refused file
    cfg = compose_config("stage=collect", "data=file", f"data.path={path}", f"store.root={tmp_path / 'store'}")
    manifest = run(cfg, tmp_path / "run2")
    assert manifest["rejected_rows"] == {"low above open/close": 1} and manifest["totals"]["rows_added"] == 29
    import hashlib

    assert manifest["data_source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["data_source"]["label"].startswith("file bars.parquet (sha256 ")
