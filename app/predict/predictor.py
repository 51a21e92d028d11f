"""``Predictor``: a model bundle turned back into a scorer of Bars (no I/O beyond loading the bundle).

Scoring runs the training pipeline's own pieces on whatever bars it is given (:mod:`app.predict.recipe`):
the features of the bundle's features config, the bundle's fitted scaler and the label-free
windows of :mod:`app.features.window_rows`; then the model. Given a symbol's
trailing ``trailing_bars`` bars before the first bar to score, the features of every scored window
equal the full-history ones to the bundle's ``warmup_rtol``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from app.features.feature_config import FeaturesConfig, LabelConfig
from app.typed import typed
from app.features.scalers import FeatureScaler
from app.predict.bundle import _damaged, bundle_dir, read_bundle
from app.predict.recipe import Recipe, windows_parallel


@dataclass
class Scores:
    """One row per scored bar (``symbol``, ``ts`` KST, ``score``) and the symbols that got none."""

    frame: pd.DataFrame
    #: symbol -> bars it has in the input, for symbols with bars in range but no complete window there:
    #: too little history, or a feature undefined in the window (a flat price makes bb_pos 0/0)
    no_window: dict[str, int]


class Predictor:
    """The model, features config, scaler and window length of one bundle."""

    def __init__(self, doc: dict[str, Any], model: torch.nn.Module, where: Path) -> None:
        self.doc, self.model, self.path = doc, model, where
        self.features = typed(FeaturesConfig, doc["features"])
        self.label = typed(LabelConfig, {**doc["label"], "rank": False})  # scoring never needs the rank label
        self.scaler = FeatureScaler.from_dict(doc["scaler"])
        self.columns = list(doc["model_columns"])
        self.seq_len = int(doc["seq_len"])

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """A bundle folder (``.../model``) or a run folder holding one; refuses old or damaged bundles."""
        from app.models.factory import build_model

        doc, weights = read_bundle(path)
        model_cfg = {k: v for k, v in doc["model"].items() if k != "n_features"}
        model = build_model(model_cfg, int(doc["model"]["n_features"]))
        try:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except (RuntimeError, ValueError, EOFError) as exc:
            raise _damaged(bundle_dir(path), f"the weights do not fit the model: {str(exc).splitlines()[0]}") from None
        model.eval()
        return cls(doc, model, bundle_dir(path))

    @property
    def run(self) -> str:
        return str(self.doc["run"])

    @property
    def trailing_bars(self) -> int:
        """Bars a symbol needs before the first bar to score: the warm-up, then the window's earlier rows."""
        return int(self.doc["warmup_bars"]) + self.seq_len - 1

    @property
    def recipe(self) -> Recipe:
        """What turns bars into this model's windows (picklable, without the model)."""
        return Recipe(self.features, self.label, self.scaler, self.columns, self.seq_len)

    def forward(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                out.append(self.model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))).float().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def score(self, bars: pa.Table, start: int, end: int, batch_size: int = 4096, workers: int = 1) -> Scores:
        """Scores of every bar with ``start <= ts <= end`` (epoch seconds) that ends a complete window.

        ``bars`` holds whole symbols sorted by (symbol, ts); ``workers`` processes compute the features.
        """
        w = windows_parallel(self.recipe, bars, start, end, workers)
        return Scores(_frame(w["symbol"], w["ts"], self.forward(w["x"], batch_size)), w["no_window"])


def _frame(symbol: Any, ts: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    when = pd.to_datetime(np.asarray(ts, np.int64), unit="s", utc=True).tz_convert("Asia/Seoul").as_unit("s")
    return pd.DataFrame({"symbol": pd.Series(symbol, dtype="string"), "ts": when,
                         "score": np.asarray(score, np.float32)})  # fmt: skip
