"""``compare_runs``: one table (CSV + Markdown) and one plot across several run folders."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from app.errors import DataError
from app.report import style
from app.report.build import REPORT_FILE
from app.report.summary_md import dig, fmt, table
from app.run_folder import COMPARISON_CSV, COMPARISON_MD, COMPARISON_PNG

log = logging.getLogger(__name__)

#: column -> path into performance_report.json
COLUMNS = {
    "experiment": ("run", "experiment"),
    "model": ("training", "model"),
    "ic": ("evaluation", "models", "model", "forecast", "ic"),
    "rank_ic": ("evaluation", "models", "model", "forecast", "rank_ic"),
    "icir": ("evaluation", "models", "model", "forecast", "icir"),
    "dir_acc": ("evaluation", "models", "model", "forecast", "dir_acc"),
    "mse": ("evaluation", "models", "model", "forecast", "mse"),
    "ridge_ic": ("evaluation", "models", "ridge", "forecast", "ic"),
    "oracle_ic": ("evaluation", "models", "oracle", "forecast", "ic"),
    "topk_ann_return": ("evaluation", "models", "model", "backtest", "top_k", "annualised_return"),
    "topk_sharpe": ("evaluation", "models", "model", "backtest", "top_k", "sharpe"),
    "topk_ir": ("evaluation", "models", "model", "backtest", "top_k", "information_ratio"),
    "topk_max_drawdown": ("evaluation", "models", "model", "backtest", "top_k", "max_drawdown"),
    "ls_sharpe": ("evaluation", "models", "model", "backtest", "long_short", "sharpe"),
    "benchmark_sharpe": ("evaluation", "benchmark", "sharpe"),
    "config_digest": ("config", "digest"),
}
PLOTTED = {"ic": "IC", "rank_ic": "rank IC", "icir": "ICIR", "topk_sharpe": "top-k Sharpe",
           "ls_sharpe": "long-short Sharpe", "topk_ann_return": "top-k annualised return"}
FORMATS = {"ic": "{:.4f}", "rank_ic": "{:.4f}", "oracle_ic": "{:.4f}", "ridge_ic": "{:.4f}", "icir": "{:.2f}",
           "dir_acc": "{:.1%}", "mse": "{:.3g}", "topk_ann_return": "{:.1%}", "topk_max_drawdown": "{:.1%}",
           "config_digest": "{:.12}"}


def _load(run_dir: Path) -> dict:
    path = run_dir / REPORT_FILE
    if not path.exists():
        raise DataError(f"{path} does not exist", f"build it first: python -m app.main stage=report run_dir={run_dir}")
    return json.loads(path.read_text())


def comparison_table(run_dirs: list[Path]) -> pd.DataFrame:
    rows = []
    for run_dir in run_dirs:
        report = _load(Path(run_dir))
        rows.append({"run": report["run"]["name"], **{k: dig(report, p) for k, p in COLUMNS.items()}})
    return pd.DataFrame(rows)


def _plot(frame: pd.DataFrame, path: Path) -> Path:
    metrics = [m for m in PLOTTED if frame[m].notna().any()]
    if not metrics:
        return style.empty(path, "Run comparison", "no comparable metrics in these runs", 110)
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = style.figure(rows, cols, size=(4.2 * cols, 0.9 + (1.0 + 0.35 * len(frame)) * rows), squeeze=False)
    for ax, metric in zip(axes.ravel(), metrics):
        values = frame[metric].astype(float)
        ax.barh(frame["run"], values.fillna(0), color=[style.color("model") if v >= 0 else "#d62728" for v in values.fillna(0)])
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(PLOTTED[metric])
        ax.invert_yaxis()
        if metric == "topk_ann_return":
            style.percent_axis(ax, axis="x")
    for ax in axes.ravel()[len(metrics):]:
        ax.set_axis_off()
    for ax in axes[:, 1:].ravel():
        ax.set_yticklabels([])
    fig.suptitle("Run comparison (model, out of sample)")
    return style.save(fig, path, 110)


def compare_runs(run_dirs: list[Path], out_dir: Path) -> dict[str, Path]:
    """Write ``comparison.csv``, ``comparison.md`` and ``comparison.png`` into ``out_dir``."""
    if not run_dirs:
        raise DataError("no run folders to compare", "pass at least one run folder")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = comparison_table([Path(d) for d in run_dirs])
    paths = {"csv": out_dir / COMPARISON_CSV, "markdown": out_dir / COMPARISON_MD, "plot": out_dir / COMPARISON_PNG}
    frame.to_csv(paths["csv"], index=False)
    header = ["run"] + list(COLUMNS)
    body = [[str(r["run"])] + [fmt(r[c], FORMATS.get(c, "{:.2f}")) if pd.notna(r[c]) else "n/a" for c in COLUMNS]
            for r in frame.to_dict("records")]
    paths["markdown"].write_text("# Run comparison\n\n" + "\n".join(table(header, body)) + "\n")
    _plot(frame, paths["plot"])
    log.info("compared %d runs into %s", len(frame), out_dir)
    return paths
