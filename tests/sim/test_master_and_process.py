"""Master files in the §4(e) layout, and the simulator as a separate ``python -m app.sim`` process."""
from __future__ import annotations

import io
import subprocess
import sys
import urllib.request
import zipfile

import pytest

from app.sim.config import SimConfig
from app.sim.market import Market
from app.sim.runner import start_sim_process
from sim_testutil import small_market

# field widths of the fixed tails, as in KIS's own parsers (kis_kospi_code_mst.py / kis_kosdaq_code_mst.py)
KOSPI_WIDTHS = [2, 1, 4, 4, 4] + [1] * 26 + [9, 5, 5, 1, 1, 1, 2, 1, 1, 1, 2, 2, 2, 3, 1, 3, 12, 12, 8, 15, 21, 2, 7,
                                             1, 1, 1, 1, 1, 9, 9, 9, 5, 9, 8, 9, 3, 1, 1, 1]
KOSDAQ_WIDTHS = [2, 1, 4, 4, 4] + [1] * 21 + [9, 5, 5, 1, 1, 1, 2, 1, 1, 1, 2, 2, 2, 3, 1, 3, 12, 12, 8, 15, 21, 2, 7,
                                              1, 1, 1, 1, 9, 9, 9, 5, 9, 8, 9, 3, 1, 1, 1]


def _fields(tail: str, widths: list[int]) -> list[str]:
    out, pos = [], 0
    for w in widths:
        out.append(tail[pos:pos + w])
        pos += w
    return out


def _download(base: str, name: str) -> str:
    with urllib.request.urlopen(f"{base}/common/master/{name}_code.mst.zip", timeout=10) as resp:
        data = resp.read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == [f"{name}_code.mst"]
        return zf.read(f"{name}_code.mst").decode("cp949")


def test_master_files_parse_with_the_documented_layout(sim):
    market = Market(small_market())
    seen = {}
    for name, tail_len, widths in (("kospi", 228, KOSPI_WIDTHS), ("kosdaq", 222, KOSDAQ_WIDTHS)):
        assert sum(widths) + 1 == tail_len
        text = _download(sim.base_url, name)
        for row in io.StringIO(text, newline=""):
            assert row.endswith("\n")
            head, tail = row[: len(row) - tail_len], row[-tail_len:]
            code, isin, kor = head[0:9].rstrip(), head[9:21].rstrip(), head[21:].strip()
            f = _fields(tail, widths)
            assert f[0] == "ST" and len(f) == len(widths)
            base_price = f[26 + 5 if name == "kospi" else 21 + 5]
            assert int(base_price) == int(market.daily_bars(code, adjusted=False)["close"][-1].as_py())
            assert isin.startswith("KR7" + code) and len(isin) == 12
            seen[code] = (name, kor)
    assert sorted(seen) == market.symbols
    assert all(seen[s] == ("kosdaq" if market.kosdaq[s] else "kospi", market.names[s]) for s in market.symbols)


def test_start_sim_process_serves_and_stops():
    cfg = SimConfig(rest_rate_limit=0, market=small_market(n_symbols=3, start="2026-06-01"))
    handle = start_sim_process(cfg)
    try:
        assert handle.base_url.startswith("http://127.0.0.1:") and handle.port > 0
        assert handle.stats()["requests"] == 0
        req = urllib.request.Request(f"{handle.base_url}/oauth2/tokenP", method="POST",
                                     data=b'{"grant_type":"client_credentials","appkey":"a","appsecret":"b"}')
        urllib.request.urlopen(req, timeout=10).close()
        assert handle.stats()["token_issuances"] == 1
        handle.reset_stats()
        assert handle.stats()["token_issuances"] == 0
    finally:
        handle.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{handle.base_url}/sim/stats", timeout=2)


def test_cli_rejects_a_bad_config_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "app.sim", "--config-json", '{"market": {"now": "25:99"}}'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "market.now" in proc.stderr
