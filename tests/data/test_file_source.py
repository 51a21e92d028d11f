"""The file source: long-format CSV/Parquet into the Bars contract, with bad rows counted."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.data.file_source import load_file
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
