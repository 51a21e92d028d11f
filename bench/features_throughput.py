"""Feature throughput: the Ray Data stage vs a plain pandas ``groupby().apply`` in the same run.

Writes synthetic random-walk daily bars (``--symbols`` x ``--days``, scaled by ``--scale``) to a
temporary store, then times

* ``ray``: :func:`app.features.features.build_features` (read, compute, write Parquet), 2 CPUs;
* ``baseline``: the same features written the plain pandas way: read the bars of the first
  ``--baseline-symbols`` symbols into one frame, ``groupby("symbol").apply`` a per-symbol function
  (TA-Lib + ``Series.rolling`` built-ins), write one Parquet file: one process, all in memory. Its
  cost per row does not fall with more symbols, so rows/s compare (run on all 5M rows it grew past
  22 GB RSS and was killed by the kernel: holding everything is the other half of the comparison);
* optionally ``ray_groupby`` (``--compare-groupby``): ``read_parquet`` + ``groupby("symbol")
  .map_groups`` + ``write_parquet``, the shuffle-based way to get whole symbols per block.

* ``newest``: :class:`app.features.latest.NewestFeatures` on the trailing buffers of 40 symbols (p50/p99
  per call), against the batch features of the same buffers (the last row taken) in the same run
  (``--newest-only``: this alone, on a 40-symbol store);
* ``jit``: the stage's numba kernels' compile time with an empty cache and their load time from it;
* with ``--minute``, the stage over ``--minute-symbols`` x ``--sessions`` sessions of 381 one-minute
  bars (10M by default) instead, features session bound, written chunk by chunk.

Peak memory is sampled for the whole process tree (this process and every Ray process under it):
RSS (counts shared object-store pages once per process that maps them) and PSS (shares them).
Ray's start-up is timed on its own (``ray_start_s``). The second stage run (``ray_warm``) finds
its workers up and writes where the first run's output was just deleted, as a rebuild on a machine
that has been running; ``page_cache`` gives this host's kernel cost per GiB written into new and
into just-freed memory, and each run reports its kernel CPU-seconds. Prints one JSON object. Example:
``python bench/features_throughput.py --scale 0.02``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.contracts import BARS_SCHEMA, KST_NAME  # noqa: E402
from app.features.feature_compute import compute_features, feature_names  # noqa: E402
from app.features.feature_config import FeaturesConfig, LabelConfig  # noqa: E402
from app.features.features import build_features, read_features  # noqa: E402
from app.features.indicators import scale_free_companions, ta_indicators  # noqa: E402
from app.features.latest import NewestFeatures, trailing_panels  # noqa: E402
from app.collect.store import BarStore  # noqa: E402

GIB = 1024**3


def ohlcv(symbol: str, stamps: pd.DatetimeIndex, rng: np.random.Generator, sigma: float,
          volume: tuple[int, int]) -> pa.Table:  # fmt: skip
    """Random-walk bars of one symbol at ``stamps`` (tz-aware): log-returns of ``sigma``, the open
    ``sigma / 2`` off the close, high/low up to ``sigma`` outside them, volumes in ``volume``."""
    n = len(stamps)
    close = float(rng.uniform(1_000, 200_000)) * np.exp(np.cumsum(rng.normal(0, sigma, n)))
    open_ = close * np.exp(rng.normal(0, sigma / 2, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, sigma, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, sigma, n))
    vol = rng.integers(*volume, n)
    return pa.table(
        {"symbol": [symbol] * n, "ts": stamps, "open": open_, "high": high, "low": low, "close": close,
         "volume": vol, "value": (vol * close).astype(np.int64), "adjusted": np.ones(n, bool)}
    ).cast(BARS_SCHEMA)  # fmt: skip


def synthetic_bars(symbol: str, days: int, rng: np.random.Generator) -> pa.Table:
    """One symbol's daily bars (15:30 KST, business days from 2010)."""
    dates = pd.bdate_range("2010-01-04", periods=days, tz=KST_NAME) + pd.Timedelta(hours=15, minutes=30)
    return ohlcv(symbol, dates, rng, 0.02, (1_000, 2_000_000))


def write_store(root: Path, n_symbols: int, days: int) -> int:
    store, rng = BarStore(root), np.random.default_rng(0)
    for i in range(n_symbols):
        sym = f"{100000 + i:06d}"
        store.write("D", sym, synthetic_bars(sym, days, rng), source="bench")
    return n_symbols * days


MINUTES = 381  # bars of a session, 09:00 to 15:20 plus the closing auction at 15:30


def synthetic_minutes(symbol: str, days: pd.DatetimeIndex, rng: np.random.Generator) -> pa.Table:
    """One symbol's random-walk minute bars over ``days`` (KST sessions of :data:`MINUTES` bars)."""
    offsets = pd.to_timedelta(np.r_[np.arange(MINUTES - 1), 390], unit="min") + pd.Timedelta(hours=9)
    ts = (days.values[:, None] + offsets.values[None, :]).reshape(-1)
    return ohlcv(symbol, pd.DatetimeIndex(ts).tz_localize(KST_NAME), rng, 0.001, (1, 20_000))


def write_minute_store(root: Path, n_symbols: int, sessions: int) -> int:
    store, rng = BarStore(root), np.random.default_rng(0)
    days = pd.bdate_range("2025-01-02", periods=sessions)
    for i in range(n_symbols):
        sym = f"{100000 + i:06d}"
        store.write("1m", sym, synthetic_minutes(sym, days, rng), source="bench")
    return n_symbols * sessions * MINUTES


class TreeMemory:
    """Peak RSS (every 0.2 s) and PSS (every 1 s: reading smaps is costly) of this process and all
    its descendants, plus the CPU seconds they used while it was open."""

    def __init__(self, interval: float = 0.2, pss_every: int = 5) -> None:
        import psutil

        self._psutil, self._interval, self._pss_every = psutil, interval, pss_every
        self.peak_rss = self.peak_pss = 0
        self.cpu_start = self.cpu_s = 0.0
        self.sys_start = self.sys_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _procs(self):
        me = self._psutil.Process()
        return [me, *me.children(recursive=True)]

    def cpu(self) -> tuple[float, float]:
        """(user + system, system) CPU seconds of the tree so far."""
        total = system = 0.0
        for proc in self._procs():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
                system += times.system
            except self._psutil.Error:
                continue
        return total, system

    def _sample(self, with_pss: bool) -> None:
        rss = pss = 0
        for proc in self._procs():
            try:
                if with_pss:
                    info = proc.memory_full_info()
                    pss += getattr(info, "pss", info.rss)
                else:
                    info = proc.memory_info()
                rss += info.rss
            except self._psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, rss)
        if with_pss:
            self.peak_pss = max(self.peak_pss, pss)

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            self._sample(tick % self._pss_every == 0)
            tick += 1
            self._stop.wait(self._interval)

    def __enter__(self) -> TreeMemory:
        self.cpu_start, self.sys_start = self.cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(True)
        cpu, system = self.cpu()
        self.cpu_s, self.sys_s = cpu - self.cpu_start, system - self.sys_start

    def report(self, rows: int, seconds: float) -> dict[str, float]:
        return {
            "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds), "cpu_s": round(self.cpu_s, 1),
            "kernel_cpu_s": round(self.sys_s, 1),
            "rows_per_cpu_s": round(rows / max(self.cpu_s, 1e-9)), "peak_rss_gib": round(self.peak_rss / GIB, 3),
            "peak_pss_gib": round(self.peak_pss / GIB, 3),
        }  # fmt: skip


def run_ray(store: Path, out: Path, cfg: FeaturesConfig, label: LabelConfig, freq: str = "D") -> float:
    start = time.perf_counter()
    build_features(str(store), cfg, label, freq=freq, path=str(out))
    return time.perf_counter() - start


def naive_features(g: pd.DataFrame, cfg: FeaturesConfig, label: LabelConfig) -> pd.DataFrame:
    """The default feature set written the straightforward way: pandas Series ops on one symbol."""
    o, h, l, c, v = (g[k].astype(float) for k in ("open", "high", "low", "close", "volume"))
    ind, out = cfg.indicators, {}
    arrays = [x.to_numpy() for x in (o, h, l, c, v)]
    out.update(ta_indicators(*arrays, ind))
    out.update(scale_free_companions(out, arrays[3], cfg))
    lr = np.log(c / c.shift(1))
    for n in cfg.returns:
        out[f"logret_{n}"] = np.log(c / c.shift(n))
    for n in cfg.volatility:
        out[f"vol_{n}"] = lr.rolling(n).std()
    for n in cfg.volume_z:
        out[f"volz_{n}"] = (v - v.rolling(n).mean()) / v.rolling(n).std()
    rng, top, bot = h - l + 1e-12, np.maximum(o, c), np.minimum(o, c)
    out.update(a158_kmid=(c - o) / o, a158_klen=(h - l) / o, a158_kmid2=(c - o) / rng, a158_kup=(h - top) / o,
               a158_kup2=(h - top) / rng, a158_klow=(bot - l) / o, a158_klow2=(bot - l) / rng,
               a158_ksft=(2 * c - h - l) / o, a158_ksft2=(2 * c - h - l) / rng)  # fmt: skip
    out.update(a158_open0=o / c, a158_high0=h / c, a158_low0=l / c, a158_vwap0=g["value"] / v / c)
    idx = pd.Series(np.arange(len(c), dtype=float), index=c.index)
    dc, dv = c.diff(), v.diff()
    wv = (c / c.shift(1) - 1).abs() * v
    for d in cfg.alpha158.windows:
        r = c.rolling(d)
        slope = r.cov(idx) / idx.rolling(d).var()
        lo, hi = l.rolling(d).min(), h.rolling(d).max()
        out.update({
            f"a158_roc{d}": c.shift(d) / c, f"a158_std{d}": r.std() / c, f"a158_beta{d}": slope / c,
            f"a158_rsqr{d}": r.corr(idx) ** 2, f"a158_resi{d}": (c - r.mean() - slope * (d - 1) / 2) / c,
            f"a158_max{d}": hi / c, f"a158_min{d}": lo / c, f"a158_qtlu{d}": r.quantile(0.8) / c,
            f"a158_qtld{d}": r.quantile(0.2) / c, f"a158_rank{d}": r.rank(pct=True),
            f"a158_rsv{d}": (c - lo) / (hi - lo + 1e-12), f"a158_corr{d}": r.corr(np.log(v + 1)),
            f"a158_cord{d}": (c / c.shift(1)).rolling(d).corr(np.log(v / v.shift(1) + 1)),
            f"a158_cntp{d}": (dc > 0).astype(float).where(dc.notna()).rolling(d).mean(),
            f"a158_sump{d}": dc.clip(lower=0).rolling(d).sum() / (dc.abs().rolling(d).sum() + 1e-12),
            f"a158_vma{d}": v.rolling(d).mean() / (v + 1e-12), f"a158_vstd{d}": v.rolling(d).std() / (v + 1e-12),
            f"a158_wvma{d}": wv.rolling(d).std() / (wv.rolling(d).mean() + 1e-12),
            f"a158_vsump{d}": dv.clip(lower=0).rolling(d).sum() / (dv.abs().rolling(d).sum() + 1e-12),
        })  # fmt: skip
    local = g["ts"].dt
    out.update(cal_dow=local.day_of_week / 4 - 0.5, cal_dom=(local.day - 1) / 30 - 0.5,
               cal_month=(local.month - 1) / 11 - 0.5)  # fmt: skip
    feats = pd.DataFrame({k: np.asarray(out[k], dtype=np.float64) for k in feature_names(cfg)}, index=g.index)
    feats = feats.replace([np.inf, -np.inf], np.nan).astype(np.float32)
    result = pd.concat([g, feats], axis=1)
    result["label"] = c.shift(-label.horizon) / c - 1
    result["label_ts"] = g["ts"].shift(-label.horizon)
    return result


def run_baseline(store: Path, out: Path, cfg: FeaturesConfig, label: LabelConfig, n_symbols: int) -> float:
    start = time.perf_counter()
    bars = BarStore(store)
    frame = bars.read_all("D", bars.symbols("D")[:n_symbols]).to_pandas()

    def one_symbol(group: pd.DataFrame) -> pd.DataFrame:
        return naive_features(group.assign(symbol=group.name), cfg, label)  # pandas drops the key column

    result = frame.groupby("symbol", group_keys=False).apply(one_symbol)
    result.to_parquet(out / "features.parquet", index=False)
    return time.perf_counter() - start


def baseline_matches(ray_out: Path, base_out: Path, cfg: FeaturesConfig) -> float:
    """Largest difference between the two outputs over every feature (relative to 1 + |value|)."""
    names = feature_names(cfg)
    mine = read_features(str(ray_out), ["symbol", "ts", *names]).to_pandas().set_index(["symbol", "ts"])
    base = pd.read_parquet(base_out / "features.parquet", columns=["symbol", "ts", *names]).set_index(["symbol", "ts"])
    a, b = mine.loc[base.index, names].to_numpy(np.float64), base[names].to_numpy(np.float64)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    return float(np.nanmax(np.abs(a - b) / (1 + np.abs(b))))


def run_ray_groupby(store: Path, out: Path, cfg: FeaturesConfig, label: LabelConfig) -> float:
    import ray.data

    def one_symbol(table: pa.Table) -> pa.Table:
        return compute_features(table.select(BARS_SCHEMA.names).cast(BARS_SCHEMA), cfg, label)

    start = time.perf_counter()
    ds = ray.data.read_parquet(str(store / "bars" / "freq=D"), partitioning=None, schema=BARS_SCHEMA)
    ds.groupby("symbol").map_groups(one_symbol, batch_format="pyarrow").write_parquet(str(out))
    return time.perf_counter() - start


def time_newest(store: Path, cfg: FeaturesConfig, n_symbols: int = 40, calls: int = 300) -> dict[str, float]:
    """p50/p99 ms per call of the newest-bar path for ``n_symbols``, and of the batch path on the same buffers."""
    newest = NewestFeatures(cfg)
    bars = BarStore(store)
    table = bars.read_all("D", bars.symbols("D")[:n_symbols])
    symbols, panels, ts = trailing_panels(table, newest.buffer_bars)
    sym = table["symbol"].to_numpy(zero_copy_only=False)
    ends = np.flatnonzero(np.r_[sym[1:] != sym[:-1], True]) + 1
    starts = np.r_[0, ends[:-1]]
    buffers = pa.concat_tables([table.slice(max(a, b - newest.buffer_bars), b - max(a, b - newest.buffer_bars))
                                for a, b in zip(starts, ends)])  # fmt: skip
    newest(panels, ts)
    fast = [_seconds(lambda: newest(panels, ts)) for _ in range(calls)]
    batch = [_seconds(lambda: compute_features(buffers, cfg, LabelConfig())) for _ in range(max(5, calls // 30))]
    ms = lambda xs, q: round(float(np.percentile(xs, q)) * 1e3, 3)  # noqa: E731
    return {"symbols": len(symbols), "buffer_bars": newest.buffer_bars, "calls": calls, "p50_ms": ms(fast, 50),
            "p99_ms": ms(fast, 99), "baseline_batch_p50_ms": ms(batch, 50), "baseline_batch_p99_ms": ms(batch, 99)}


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


JIT_PROBE = """
import time; t = time.perf_counter()
import numpy as np
from app.features import rolling_kernels as k
a = np.asfortranarray(np.random.default_rng(0).normal(size=(100, 2)))
k.rolling_sum(a, 5); k.rolling_cov(a, a, 5); k.rolling_corr(a, a, 5)
k.rolling_extreme(a, 5, True); k.rolling_extreme(a, 5, False)
k.rolling_order(a, 5, np.array([0.2, 0.8])); k.rolling_slope(a, 5)
from app.features import elementwise as e
v = a[:, 0].copy(); e.divide_finite(v, v); e.finite_float32(v); e.month_and_day(np.arange(5))
print(time.perf_counter() - t)
"""


def time_jit() -> dict[str, float]:
    """Seconds to import and first call every kernel with an empty numba cache, then with it filled."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = [float(subprocess.run([sys.executable, "-c", JIT_PROBE], cwd=root, env=env, check=True,
                                     capture_output=True, text=True).stdout) for _ in range(2)]  # fmt: skip
    return {"compile_s": round(runs[0], 2), "cached_load_s": round(runs[1], 2)}


def run_minute(args: argparse.Namespace, tmp: Path) -> dict:
    """The stage over minute bars: rows/s and peak RSS (no baseline: pandas cannot hold 10M rows of features)."""
    import ray

    t0 = time.perf_counter()
    rows = write_minute_store(tmp / "store", args.minute_symbols, args.sessions)
    result = {"symbols": args.minute_symbols, "sessions": args.sessions, "rows": rows, "cpus": args.cpus,
              "store_write_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    result["ray_start_s"] = start_ray(args.cpus)
    with TreeMemory() as mem:
        sec = run_ray(tmp / "store", tmp / "ray", FeaturesConfig(calendar=["tod"]), LabelConfig(horizon=5), "1m")
    result["ray"] = mem.report(rows, sec)
    ray.shutdown()
    return result


def page_cache_probe(where: Path, gib: int = 1) -> dict[str, float]:
    """Kernel CPU-seconds per GiB written to a new file while the files before it stay (the page cache
    takes memory it has not used lately), and right after deleting them (it reuses what they freed).

    On the VMs measured here the first cost ran from 0.2 to 3.0 s/GiB, by how much memory the machine
    had touched and freed shortly before, and the second 0.2-0.4 s/GiB. The stage writes gigabytes
    of Parquet (about 0.6 GB per million daily rows), so this moves its rows/s; measured in the same
    run so the figures can be read against it."""
    import resource

    block = os.urandom(2**20)

    def write(path: Path) -> float:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        with open(path, "wb") as fh:
            for _ in range(gib * 1024):
                fh.write(block)
        return (resource.getrusage(resource.RUSAGE_SELF).ru_stime - before) / gib

    kept = [write(where / "probe-a"), write(where / "probe-b")]
    for name in ("probe-a", "probe-b"):
        (where / name).unlink()
    reused = write(where / "probe-c")
    (where / "probe-c").unlink()
    return {"new_memory_kernel_s_per_gib": round(max(kept), 2), "freed_memory_kernel_s_per_gib": round(reused, 2)}


def host() -> dict[str, object]:
    """The CPU this ran on: its model and the vector extensions the kernels and TA-Lib can use.
    Figures from different CPU kinds are not comparable (the same code ran 2.3x slower on an
    AVX2-only host than on one with AVX-512, docs/BENCHMARKS.md)."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return {"cpu": model, "logical_cpus": os.cpu_count(), "extensions": [f for f in wanted if f in flags]}


def emit(result: dict) -> None:
    """Print a run's figures with the load average at its end and the host they were measured on."""
    print(json.dumps({**result, "load_avg_1m": os.getloadavg()[0], "host": host()}, indent=1))


def start_ray(cpus: int) -> float:
    import ray
    import ray.data

    start = time.perf_counter()
    ray.init(num_cpus=cpus, object_store_memory=GIB, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    return round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument("--days", type=int, default=2500)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of --symbols to use (quick runs)")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--baseline-symbols", type=int, default=200,
                        help="symbols the baseline runs on (it holds everything in memory: 5M rows need >20 GB)")
    parser.add_argument("--compare-groupby", action="store_true", help="also time groupby().map_groups")
    parser.add_argument("--workdir", default=None, help="where the temporary store goes (default: system temp)")
    parser.add_argument("--minute", action="store_true", help="minute bars instead (10M by default)")
    parser.add_argument("--minute-symbols", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=263, help="sessions of 381 minute bars per symbol")
    parser.add_argument("--newest-only", action="store_true",
                        help="only the newest-bar path: 40 symbols x --days bars, no Ray, no baseline")
    args = parser.parse_args()
    n_symbols = max(1, round(args.symbols * args.scale))
    cfg, label = FeaturesConfig(), LabelConfig()
    tmp = Path(tempfile.mkdtemp(prefix="features-bench-", dir=args.workdir))
    try:
        if args.newest_only:
            write_store(tmp / "store", 40, args.days)
            emit({"newest": time_newest(tmp / "store", cfg)})
            return
        if args.minute:
            emit(run_minute(args, tmp))
            return
        t0 = time.perf_counter()
        rows = write_store(tmp / "store", n_symbols, args.days)
        result = {"symbols": n_symbols, "days": args.days, "rows": rows, "cpus": args.cpus,
                  "store_write_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
        import ray

        result["ray_start_s"] = start_ray(args.cpus)
        with TreeMemory() as mem:
            sec = run_ray(tmp / "store", tmp / "ray", cfg, label)
        result["ray"] = mem.report(rows, sec)  # includes starting the Ray workers
        shutil.rmtree(tmp / "ray")  # a rebuild's memory: the previous output's pages are free again
        with TreeMemory() as mem:
            sec = run_ray(tmp / "store", tmp / "ray", cfg, label)
        result["ray_warm"] = mem.report(rows, sec)  # the same stage again, workers already up
        if args.compare_groupby:
            with TreeMemory() as mem:
                sec = run_ray_groupby(tmp / "store", tmp / "ray_groupby", cfg, label)
            result["ray_groupby"] = mem.report(rows, sec)
        ray.shutdown()
        if not args.skip_baseline:
            (tmp / "baseline").mkdir()
            n_base = min(n_symbols, args.baseline_symbols)
            with TreeMemory() as mem:
                sec = run_baseline(tmp / "store", tmp / "baseline", cfg, label, n_base)
            result["baseline"] = {"symbols": n_base, "rows": n_base * args.days, **mem.report(n_base * args.days, sec)}
            base = result["baseline"]
            result["speedup_vs_baseline"] = {
                "wall": round(result["ray"]["rows_per_s"] / base["rows_per_s"], 2),
                "wall_warm": round(result["ray_warm"]["rows_per_s"] / base["rows_per_s"], 2),
                "per_cpu_s": round(result["ray"]["rows_per_cpu_s"] / base["rows_per_cpu_s"], 2),
            }
            result["baseline"]["max_rel_diff_vs_ray"] = baseline_matches(tmp / "ray", tmp / "baseline", cfg)
        result["newest"] = time_newest(tmp / "store", cfg)
        result["jit"] = time_jit()
        result["page_cache"] = page_cache_probe(tmp)
        emit(result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
