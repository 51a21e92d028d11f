"""KOSPI/KOSDAQ stock master files (docs/kis.md §4(e)): the listed universe.

Each ``*_code.mst`` line is cp949 text: short code [0:9], ISIN [9:21], the Korean name up to the
fixed-width tail, and a tail of 228 (KOSPI) or 222 (KOSDAQ) characters counted from the end of
the line (newline included). As in KIS's own parser the tail is cut from the end first, since the
name has no fixed width.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

#: tail length (newline included) and offset of the trading-halt flag inside the tail
_LAYOUT = {"kospi": (228, 2 + 1 + 12 + 26 + 9 + 5 + 5), "kosdaq": (222, 2 + 1 + 12 + 21 + 9 + 5 + 5)}
MASTER_PATHS = {m: f"/common/master/{m}_code.mst.zip" for m in _LAYOUT}
MASTER_HOST = "https://new.real.download.dws.co.kr"


@dataclass(frozen=True)
class Listing:
    symbol: str
    isin: str
    name: str
    market: str  # kospi | kosdaq
    group: str  # ST = ordinary shares, EF = ETF, ...
    halted: bool


def parse_master(text: str, market: str) -> list[Listing]:
    """Rows of a decoded master file; lines too short for the layout are skipped."""
    tail_len, halt_at = _LAYOUT[market]
    out = []
    for raw in text.splitlines(keepends=True):
        line = raw if raw.endswith("\n") else raw + "\n"
        if len(line) <= tail_len + 21:
            continue
        head, tail = line[:-tail_len], line[-tail_len:]
        out.append(
            Listing(
                symbol=head[0:9].strip(),
                isin=head[9:21].strip(),
                name=head[21:].strip(),
                market=market,
                group=tail[0:2],
                halted=tail[halt_at] == "Y",
            )
        )
    return out


def parse_master_zip(data: bytes, market: str) -> list[Listing]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".mst"))
        return parse_master(zf.read(name).decode("cp949"), market)


def stock_universe(listings: list[Listing]) -> list[str]:
    """Ordinary shares that trade: the default research universe, sorted by code."""
    return sorted({x.symbol for x in listings if x.group == "ST" and not x.halted and len(x.symbol) == 6})
