"""Stock master files in the layout of docs/kis.md §4(e): ``kospi_code.mst`` / ``kosdaq_code.mst`` in a zip.

Each line (cp949): short code padded to 9, ISIN (12), Korean name, then a fixed-width tail of 227
characters (KOSPI, 70 fields) or 221 (KOSDAQ, 64 fields) and a newline, so a parser that cuts
228/222 characters from the end of the line finds every field in place.
"""
from __future__ import annotations

import io
import zipfile

from app.sim import quotes
from app.sim.market import Market
from app.sim.universe import isin

KOSPI_FLAGS = 26
KOSDAQ_FLAGS = 21


def _num(value: float, width: int) -> str:
    return f"{max(0, int(round(value))):0{width}d}"[-width:]


def _tail(m: Market, symbol: str, kosdaq: bool) -> str:
    i = m.index(symbol)
    row, prev = m.day_row(i, -1), m.day_row(i, -2 if m.visible_days() > 1 else -1)
    f = quotes.fundamentals(m, i)
    shares = float(m.params.shares[i])
    cap = shares * row["close"] / 1e8
    size = "1" if cap >= 10_000 else "2" if cap >= 1_000 else "3"
    sector = f"{int(m.params.sector[i]) + 13:04d}"
    flags = ["N"] * (KOSDAQ_FLAGS if kosdaq else KOSPI_FLAGS)
    flags[0] = "Y" if int(m.params.sector[i]) % 2 == 0 else "N"  # 제조업 (KOSPI) / 벤처기업 (KOSDAQ)
    listed = m.sessions()[0].strftime("%Y%m%d")
    fields: list[tuple[int, str]] = [(2, "ST"), (1, size), (4, sector), (4, "0000"), (4, "0000")]
    fields += [(1, x) for x in flags]
    fields += [(9, _num(row["close"], 9)), (5, "00001"), (5, "00001"), (1, "N"), (1, "N"), (1, "N"), (2, "00"),
               (1, "N"), (1, "N"), (1, "N"), (2, "00"), (2, "00"), (2, "00"), (3, "020"), (1, "Y"), (3, "150"),
               (12, _num(prev["volume"], 12)), (12, _num(f["fcam"], 12)), (8, listed), (15, _num(shares / 1000, 15)),
               (21, _num(shares * f["fcam"], 21)), (2, "12"), (7, _num(0, 7)), (1, "0"), (1, "N"), (1, "N"), (1, "N")]
    if not kosdaq:
        fields.append((1, "Y"))  # KOSPI 종목 여부
    eps = f["eps"]
    fields += [(9, _num(eps * shares / 1e8 * 8, 9)), (9, _num(eps * shares / 1e8 * 1.4, 9)),
               (9, _num(eps * shares / 1e8 * 1.3, 9)), (5, _num(eps * shares / 1e8 % 1e5, 5)),
               (9, _num(f["pbr"] / f["per"] * 100 * 100, 9)), (8, m.today.strftime("%Y%m00")),
               (9, _num(cap, 9)), (3, "000"), (1, "N"), (1, "Y"), (1, "Y")]
    text = "".join(v for _, v in fields)
    assert all(len(v) == w for w, v in fields) and len(text) == (221 if kosdaq else 227), symbol
    return text


def master_text(m: Market, market_name: str) -> str:
    kosdaq = market_name == "kosdaq"
    lines = []
    for s in m.symbols:
        if m.kosdaq[s] == kosdaq:
            lines.append(f"{s:<9}{isin(s)}{m.names[s]}{_tail(m, s, kosdaq)}\n")
    return "".join(lines)


def master_zip(m: Market, market_name: str) -> bytes:
    """The zip served for one market, built once per Market."""
    cache = m.__dict__.setdefault("_master_zips", {})
    if market_name not in cache:
        cache[market_name] = _build_zip(m, market_name)
    return cache[market_name]


def _build_zip(m: Market, market_name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{market_name}_code.mst", master_text(m, market_name).encode("cp949"))
    return buf.getvalue()
