"""Realtime frame parsing: how many trades per second ``ws_frames`` turns into typed ticks.

H0STCNT0 frames of 50 records (the simulator's own records) go through ``split_frame`` +
``split_records`` + ``tick``; the baseline, measured in the same run, only splits the frames on
``|`` and ``^`` (the least any reader must do).

    .venv/bin/python -m bench.ws_frames [--frames 2000]

An end-to-end figure (simulator → websocket → ticks) is left out on purpose: the simulator builds a
symbol's tape when it is first subscribed while its replay clock already runs, so on a loaded
machine the offered load itself varies from run to run.
"""
from __future__ import annotations

import argparse
import os
import time

from app.kis import ws_frames as fr
from app.sim.config import MarketConfig
from app.sim.market import Market
from app.sim.tape import Tape
from bench._common import emit

MARKET = MarketConfig(seed=3, n_symbols=40, start="2024-05-02", today="2024-06-14")


def bench_parse(n_frames: int) -> dict:
    m = Market(MARKET)
    records = Tape(m).cnt_records(m.symbols[0])
    frames = [f"0|H0STCNT0|050|" + "^".join(records[k:k + 50]) for k in range(0, len(records) - 50, 50)]
    frames = (frames * (n_frames // len(frames) + 1))[:n_frames]
    t0 = time.perf_counter()
    ticks = 0
    for text in frames:
        _, tr_id, count, payload = fr.split_frame(text)
        ticks += len([fr.tick(r) for r in fr.split_records(tr_id, count, payload).rows])
    typed = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = sum(len(text.split("|", 3)[3].split("^")) // 46 for text in frames)
    split = time.perf_counter() - t0
    assert base == ticks
    return {"ticks": ticks, "ticks_per_s": round(ticks / typed), "baseline_split_only_per_s": round(base / split)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=2000)
    args = ap.parse_args()
    emit({"bench": "ws_frames", "loadavg_1m": round(os.getloadavg()[0], 2),
          "parse": bench_parse(args.frames)})


if __name__ == "__main__":
    main()
