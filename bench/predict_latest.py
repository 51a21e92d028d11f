"""Predict as of the newest bar from an up-to-date store: the trailing-bar path vs full history.

Writes ``--symbols`` x ``--days`` synthetic random-walk daily bars to a temporary store, builds a
real model bundle with :func:`app.predict.bundle.write_bundle` (features stage and scaler on the
first ``--fit-symbols`` symbols, an untrained LSTM of the default size: speed does not depend on the
weights), then times, each in a fresh process so peak RSS is its own:

* ``trailing``: what ``stage=predict`` does after collection: read each symbol's newest bar plus
  the bundle's ``warmup + seq_len - 1`` trailing bars, compute their features in 2 processes, score;
* ``trailing_one_process``: the same in one process (the stage's default, ``predict.workers=1``);
* ``baseline``: the same scores from every bar of every symbol (full-history features, one process).

Prints one JSON object with wall and CPU seconds, peak RSS and the load average around each run.
Example: ``python -m bench.predict_latest --symbols 2000 --days 1250``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit  # noqa: E402
from bench.features_throughput import write_store  # noqa: E402


MODES = ("trailing", "trailing_one_process", "baseline")


def make_bundle(store: Path, run: Path, fit_symbols: int) -> Path:
    """A real bundle: features and the scaler of the first symbols, the default LSTM's weights."""
    import json as js

    import ray
    import torch

    from app.features.feature_config import DataPipelineConfig, FeaturesConfig, LabelConfig
    from app.features.features import build_features
    from app.collect.store import BarStore
    from app.features.windows import make_window_datasets
    from app.models.factory import build_model
    from app.predict.bundle import BundleSource, write_bundle

    ray.init(num_cpus=2, object_store_memory=512 * 1024**2, include_dashboard=False, log_to_driver=False)
    symbols = BarStore(store).symbols("D")[:fit_symbols]
    info = build_features(str(store), FeaturesConfig(), LabelConfig(), symbols=symbols, path=str(run / "features"))
    data = make_window_datasets(info.path, DataPipelineConfig())
    model_cfg = {"_target_": "app.models.lstm.LSTMModel", "hidden_size": 64, "num_layers": 2, "dropout": 0.0}
    ckpt = run / "ckpt"
    ckpt.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(build_model(model_cfg, data.n_features).state_dict(), ckpt / "model.pt")
    (ckpt / "meta.json").write_text(js.dumps({"model_cfg": model_cfg, "n_features": data.n_features}))
    data_node = {"source": "file", "symbols": BarStore(store).symbols("D"), "freq": "D"}
    src = BundleSource("bench/run", data_node, str(store), "bench", "sha256:bench")
    out = write_bundle(run, ckpt, data, src)
    ray.shutdown()
    return out


def measure(store: str, bundle: str, mode: str) -> dict:
    """One timed prediction in this process (run as a child by :func:`main`)."""
    from app.collect.store import BarStore
    from app.features.window_rows import table_windows
    from app.predict.inputs import trailing_bars
    from app.predict.predictor import Predictor

    wall, cpu = time.perf_counter(), time.process_time()
    predictor = Predictor.load(bundle)
    s = BarStore(store)
    symbols = s.symbols("D")
    trailing = 10**9 if mode == "baseline" else predictor.trailing_bars
    window = trailing_bars(s, "D", symbols, None, None, trailing)
    read_s = time.perf_counter() - wall
    if mode == "baseline":  # every bar's features, as the features stage computes them, then the same windows
        r = predictor.recipe
        feats = r.features_of(window.bars)
        keep = feats["ts"].cast("int64").to_numpy() >= window.start
        scores = predictor.forward(table_windows(feats, r.columns, r.scaler, r.seq_len, keep)["x"])
    else:
        scores = predictor.score(window.bars, window.start, window.end, workers=2 if mode == "trailing" else 1)
        scores = scores.frame["score"].to_numpy()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"mode": mode, "symbols": len(symbols), "scored": len(scores), "rows": window.bars.num_rows,
            "wall_s": round(wall, 2), "read_s": round(read_s, 2), "cpu_s_this_process": round(cpu, 2),
            "cpu_s_children": round(sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]), 2),
            "peak_rss_gib_this_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3),
            "peak_rss_gib_children": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2, 3),
            "scores": np.asarray(scores, np.float64).round(7).tolist()}  # fmt: skip


def child(store: Path, bundle: Path, mode: str) -> dict:
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-m", "bench.predict_latest", "--measure", mode, "--store", str(store),
                           "--bundle", str(bundle)], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    result = json.loads(proc.stdout)
    return {**result, "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=2000)
    ap.add_argument("--days", type=int, default=1250)
    ap.add_argument("--fit-symbols", type=int, default=20)
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="the last one is the reference")
    ap.add_argument("--measure", choices=MODES)
    ap.add_argument("--store")
    ap.add_argument("--bundle")
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.store, args.bundle, args.measure)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    try:
        write_store(tmp / "store", args.symbols, args.days)
        bundle = make_bundle(tmp / "store", tmp / "run", args.fit_symbols)
        runs = [child(tmp / "store", bundle, m) for m in args.modes]
        scores = [np.asarray(r.pop("scores")) for r in runs]
        emit({"symbols": args.symbols, "days": args.days, "cpus": os.cpu_count(), "runs": runs,
              "max_abs_score_difference_vs_last": float(max(np.max(np.abs(x - scores[-1])) for x in scores)),
              "speedup_vs_last": round(runs[-1]["wall_s"] / runs[0]["wall_s"], 2)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
