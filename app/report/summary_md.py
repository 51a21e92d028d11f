"""``summary.md``: the key table (model vs baselines vs oracle), stage figures and the plots."""
from __future__ import annotations

from typing import Any

#: (column title, path into a model entry, format)
FORECASTER_COLUMNS = (
    ("IC", ("forecast", "ic"), "{:.4f}"),
    ("rank IC", ("forecast", "rank_ic"), "{:.4f}"),
    ("ICIR", ("forecast", "icir"), "{:.2f}"),
    ("dir. acc.", ("forecast", "dir_acc"), "{:.1%}"),
    ("MSE", ("forecast", "mse"), "{:.3g}"),
    ("top-k ann. return", ("backtest", "top_k", "annualised_return"), "{:.1%}"),
    ("top-k Sharpe", ("backtest", "top_k", "sharpe"), "{:.2f}"),
    ("top-k IR", ("backtest", "top_k", "information_ratio"), "{:.2f}"),
    ("top-k max DD", ("backtest", "top_k", "max_drawdown"), "{:.1%}"),
    ("top-k turnover", ("backtest", "top_k", "avg_turnover"), "{:.2f}"),
    ("top-k cost drag/yr", ("backtest", "top_k", "cost_drag_annual"), "{:.1%}"),
    ("L/S Sharpe", ("backtest", "long_short", "sharpe"), "{:.2f}"),
)


def dig(doc: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def fmt(value: Any, spec: str) -> str:
    if value is None:
        return "n/a"
    try:
        return spec.format(value)
    except (ValueError, TypeError):
        return str(value)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _forecasters(evaluation: dict) -> list[str]:
    rows = []
    for name, entry in evaluation["models"].items():
        rows.append([f"**{name}**" if name == "model" else name] + [fmt(dig(entry, p), f) for _, p, f in FORECASTER_COLUMNS])
    bench = evaluation.get("benchmark")
    if bench:  # the equal-weight universe fills the long-only columns; the rest does not apply
        as_entry = {"backtest": {"top_k": bench}}
        rows.append(["benchmark (equal weight)"] + [
            fmt(dig(as_entry, p), f) if p[:2] == ("backtest", "top_k") else "—" for _, p, f in FORECASTER_COLUMNS])
    return table(["forecaster"] + [c for c, _, _ in FORECASTER_COLUMNS], rows)


def _stages(stages: list[dict]) -> list[str]:
    rows = []
    for s in stages:
        rate = f"{s['per_s']:,.1f} {s.get('unit') or ''}/s" if s.get("per_s") else "—"
        req = f"{s['requests_per_s']:.1f}" + (f" / {s['rate_limit']:g}" if s.get("rate_limit") else "") if s.get("requests_per_s") else "—"
        rows.append([s["stage"], fmt(s.get("wall_s"), "{:,.1f}"), rate, req, fmt(s.get("peak_rss_mb"), "{:,.0f}"),
                     fmt(s.get("gpu_peak_mb"), "{:,.0f}")])
    return table(["stage", "wall (s)", "throughput", "requests/s (limit)", "peak RSS (MB)", "GPU peak (MB)"], rows)


def _environment(env: dict) -> list[str]:
    """The machine the run ran on (environment.json); credentials appear as variable names only."""
    t, cuda, ray, redis = env.get("torch") or {}, env.get("cuda") or {}, env.get("ray") or {}, env.get("redis") or {}
    gpus = ", ".join(f"{g.get('name')} ({fmt(g.get('memory_mb'), '{:,}')} MB)" for g in env.get("gpus") or []) or "none"
    cluster = (f"{fmt(ray.get('cpus'), '{:g}')} CPUs, {fmt(ray.get('gpus'), '{:g}')} GPUs" if ray.get("started")
               else f"not started ({ray.get('local_cpus')} CPUs here)")
    reach = ("not configured" if not redis.get("configured") else
             f"{redis.get('version')} at {redis.get('address')}" if redis.get("reachable") else
             f"no answer at {redis.get('address')}")
    kis, disk, market = env.get("kis") or {}, env.get("disk") or {}, env.get("market") or {}
    rows = [["Python", str((env.get("python") or {}).get("version"))],
            ["torch", f"{t.get('version')} ({t.get('build')} build)"],
            ["CUDA / cuDNN", f"{cuda.get('version') or 'n/a'} / {cuda.get('cudnn') or 'n/a'}"],
            ["GPUs", gpus], ["Ray", f"{ray.get('version')}: {cluster}"], ["Redis", reach],
            ["data source", f"{kis.get('source')} (set: {', '.join(kis.get('set') or []) or 'none'})"],
            ["free disk", f"{fmt(disk.get('free_mb'), '{:,}')} MB at {disk.get('path')}"],
            ["KRX", f"{market.get('state')} at {market.get('now')}"]]
    return ["## Environment", ""] + table(["", ""], rows) + [""]


def _sweep(sweep: dict, plots: dict[str, str]) -> list[str]:
    lines = ["## Sweep", "",
             f"{sweep['n_trials']} trials ({sweep['search']} search, {sweep['scheduler']} scheduler, "
             f"{sweep['stopped_early']} stopped early, {sweep.get('trial_epochs')} trial-epochs); best "
             f"{sweep['metric']} {fmt(sweep['best_value'], '{:.4g}')} ({sweep['mode']}) in trial "
             f"{sweep['best_trial']} at epoch {sweep.get('best_epoch')}, whose checkpoint is the model above. "
             f"Re-train it: `xargs -d '\\n' -a {sweep['overrides_file']} python -m app.main`.", ""]
    lines += table(["searched value", "best"], [[k, fmt(v, "{:.4g}")] for k, v in sweep["best_values"].items()])
    lines += [""]
    for key, title in (("sweep_curves", "Trials per epoch"), ("sweep_values", "Best metric against each value"),
                       ("sweep_importance", "Parameter importance")):
        if key in plots:
            lines += [f"### {title}", "", f"![{title}]({plots[key]})", ""]
    return lines


def render(report: dict) -> str:
    """The Markdown text of summary.md for a validated report."""
    ev, plots = report.get("evaluation"), report.get("plots", {})
    source = report.get("data_source")
    lines = [f"# Run {report['run']['name']}", ""]
    lines += [f"**Data: {source['label']}.**", ""] if source else []
    lines += [f"Config digest `{(report['config'].get('digest') or 'n/a')[:16]}`, generated {report['generated_at']}.", ""]
    if ev:
        period = ev.get("period") or {}
        lines += [f"## Out-of-sample results ({', '.join(ev['splits'])}: {str(period.get('start'))[:10]} to "
                  f"{str(period.get('end'))[:10]}, horizon {ev.get('horizon')}, fills at next {ev.get('execution')})", ""]
        lines += _forecasters(ev) + [""]
        lines += [f"- {n}" for n in ev.get("notes", [])] + [""]
    for key, title in (("backtest", "Portfolios"), ("models", "Forecasters compared"), ("ic", "IC per date"),
                       ("scatter", "Predicted vs realised"), ("training", "Training"), ("throughput", "Stages")):
        if key in plots:
            lines += [f"### {title}", "", f"![{title}]({plots[key]})", ""]
    if report.get("sweep"):
        lines += _sweep(report["sweep"], plots)
    if report.get("stages"):
        lines += ["## Stages", ""] + _stages(report["stages"]) + [""]
    if report.get("environment"):
        lines += _environment(report["environment"])
    rss = report["resources"].get("peak_rss_mb")
    gpu = report["resources"].get("gpu")
    lines += [f"Peak RSS {fmt(rss, '{:,.0f}')} MB" + (f"; GPU peak {gpu.get('peak_allocated_mb')} MB" if gpu else "; no GPU") + ".", ""]
    lines += [f"- {n}" for n in report.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"
