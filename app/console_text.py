"""The words of the console: a finished stage's line and the run's result (pure formatting, no I/O)."""
from __future__ import annotations

from typing import Any, Mapping

#: the forecasters of the result line, in order: the model, its baselines, the best possible
FORECASTERS = ("model", "ridge", "zero", "oracle")


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def stage_line(stage: str, seconds: float, counts: Mapping[str, Any], unit: str | None = None) -> str:
    """``collect    33,000 bars in 41.7 s (791 bars/s; 17.6 requests/s, limit 18)``: ``unit`` names the
    figure of ``counts`` the stage is measured in (its registry entry's), else only the time is said."""
    text = f"{stage:<9}"
    n = counts.get(unit) if unit else None
    if n:
        text += f" {_num(n)} {unit} in {seconds:,.1f} s ({_num(n / max(seconds, 1e-9))} {unit}/s"
        requests = counts.get("requests")
        if requests:
            text += f"; {requests / max(seconds, 1e-9):.1f} requests/s"
            text += f", limit {counts['rate_limit']:g}" if counts.get("rate_limit") else ""
        return text + ")"
    return f"{text} done in {seconds:,.1f} s"


def epoch_line(metrics: Mapping[str, Any], epochs: int) -> str:
    """``epoch 3/20  train loss 0.0006149  val loss 0.000637  val IC 0.2433  4.3 s  (best)``."""
    parts = [f"epoch {metrics.get('epoch')}/{epochs}"]
    for key, title, spec in (("train_loss", "train loss", "{:.4g}"), ("val_loss", "val loss", "{:.4g}"),
                             ("val_ic", "val IC", "{:.4f}")):  # fmt: skip
        parts.append(f"{title} {_fmt(metrics.get(key), spec)}")
    seconds = metrics.get("epoch_seconds")
    if isinstance(seconds, (int, float)):
        parts.append(f"{seconds:.1f} s")
    return "  ".join(parts) + ("  (best)" if metrics.get("is_best") else "")


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        doc = doc.get(key) if isinstance(doc, Mapping) else None
    return doc


def _fmt(value: Any, spec: str) -> str:
    return spec.format(value) if isinstance(value, (int, float)) else "n/a"


def result_lines(report: Mapping[str, Any], summary_path: str) -> list[str]:
    """The end of the console: test IC of each forecaster, the model's top-k book, where the summary is."""
    evaluation = report.get("evaluation") or {}
    models = evaluation.get("models") or {}
    lines = []
    if models:
        split = "/".join(evaluation.get("splits") or []) or "out-of-sample"
        ics = [f"{name} {_fmt(_get(models, name, 'forecast', 'ic'), '{:.4f}')}" for name in FORECASTERS if name in models]
        lines.append(f"{split} IC: " + ", ".join(ics))
        top = _get(models, "model", "backtest", "top_k")
        if top:
            k = _get(evaluation, "settings", "top_k")
            lines.append(f"top-{k if k else 'k'} book (after costs): Sharpe {_fmt(top.get('sharpe'), '{:.2f}')}, "
                         f"turnover {_fmt(top.get('avg_turnover'), '{:.2f}')} per rebalance")  # fmt: skip
    lines.append(f"summary: {summary_path}")
    return lines
