"""The JSON schema of ``performance_report.json`` (documented in docs/report.md) and its check."""
from __future__ import annotations

from typing import Any

from app.errors import DataError
from app.run_folder import REPORT

SCHEMA_VERSION = 1

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": ["string", "null"]}

_FORECAST = {
    "type": "object",
    "required": ["mse", "mae", "ic", "rank_ic", "icir", "rank_icir", "dir_acc", "n", "n_dates", "n_ic_dates"],
    "properties": {
        **{k: _NUM for k in ("mse", "mae", "ic", "rank_ic", "icir", "rank_icir", "dir_acc")},
        **{k: {"type": "integer", "minimum": 0} for k in ("n", "n_dates", "n_ic_dates")},
        "monthly": {"type": "array", "items": {"type": "object", "required": ["month", "ic", "mse"]}},
        "folds": {"type": "object", "additionalProperties": {"type": "object", "required": ["ic", "mse"]}},
    },
}

_COSTS = {
    "type": "object",
    "required": ["commission", "tax", "slippage", "borrow", "total"],
    "additionalProperties": {"type": "number"},
}

_PORTFOLIO = {
    "type": "object",
    "required": ["cumulative_return", "annualised_return", "annualised_volatility", "sharpe", "information_ratio",
                 "max_drawdown", "hit_rate", "avg_turnover", "n_rebalances", "costs_krw", "cost_drag"],
    "properties": {
        **{k: _NUM for k in ("cumulative_return", "annualised_return", "annualised_volatility", "sharpe",
                             "information_ratio", "hit_rate", "hit_rate_vs_benchmark", "avg_turnover",
                             "cost_drag_annual", "avg_gross_exposure")},
        "max_drawdown": {"type": ["number", "null"], "maximum": 0},
        "n_rebalances": {"type": "integer", "minimum": 0},
        "costs_krw": _COSTS,
        "cost_drag": _COSTS,
    },
}

_MODEL = {
    "type": "object",
    "required": ["column", "forecast", "backtest", "notes"],
    "properties": {
        "column": {"type": "string"},
        "forecast": _FORECAST,
        "backtest": {
            "type": ["object", "null"],
            "properties": {"top_k": _PORTFOLIO, "long_short": _PORTFOLIO},
            "additionalProperties": False,
        },
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}

_STAGE = {
    "type": "object",
    "required": ["stage", "wall_s"],
    "properties": {
        "stage": {"type": "string"},
        "wall_s": _NUM,
        "items": _NUM,
        "unit": _STR,
        "per_s": _NUM,
        "requests": _NUM,
        "requests_per_s": _NUM,
        "rate_limit": _NUM,
        "peak_rss_mb": _NUM,
        "driver_peak_rss_mb": _NUM,
        "gpu_peak_mb": _NUM,
    },
}

_SECRET_KEY_PATTERN = "(?i)(secret|token|password|passwd|app_?key|api_?key|credential)"

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": REPORT,
    "type": "object",
    "required": ["schema_version", "generated_at", "run", "config", "data", "stages", "resources",
                 "training", "evaluation", "plots", "notes"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "generated_at": {"type": "string"},
        "run": {"type": "object", "required": ["dir", "name"], "properties": {"dir": {"type": "string"}, "name": {"type": "string"}}},
        "config": {
            "type": "object",
            "required": ["digest", "resolved", "redacted_keys"],
            "properties": {
                "digest": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
                "resolved": {"type": ["object", "null"], "propertyNames": {"not": {"pattern": _SECRET_KEY_PATTERN}}},
                "redacted_keys": {"type": "array", "items": {"type": "string"}},
            },
        },
        "data": {"type": ["object", "null"]},
        "data_source": {
            "type": ["object", "null"], "required": ["kind", "label"],
            "properties": {"kind": {"enum": ["sim", "kis", "file"]}, "label": {"type": "string"}},
        },
        "stages": {"type": "array", "items": _STAGE},
        "resources": {
            "type": "object",
            "required": ["peak_rss_mb", "gpu"],
            "properties": {"peak_rss_mb": _NUM, "gpu": {"type": ["object", "null"]}},
        },
        "training": {"type": ["object", "null"]},
        "environment": {"type": ["object", "null"]},  # environment.json (docs/environment.md)
        "evaluation": {
            "type": ["object", "null"],
            "required": ["splits", "period", "benchmark", "models", "notes"],
            "properties": {
                "splits": {"type": "array", "items": {"type": "string"}},
                "benchmark": {"oneOf": [_PORTFOLIO, {"type": "null"}]},
                "models": {"type": "object", "required": ["model"], "additionalProperties": _MODEL},
                "notes": {"type": "array", "items": {"type": "string"}},
            },
        },
        "sweep": {
            "type": ["object", "null"],
            "required": ["metric", "mode", "n_trials", "stopped_early", "best_trial", "best_value", "best_values"],
            "properties": {"n_trials": {"type": "integer"}, "best_values": {"type": "object"}},
        },
        "plots": {"type": "object", "additionalProperties": {"type": "string"}},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}


def _secret_paths(value: Any, path: str = "") -> list[str]:
    """Dotted paths of secret-looking keys anywhere under ``value`` (the schema only sees the top level)."""
    from app.report.sources import SECRET_KEY

    if isinstance(value, dict):
        found = [f"{path}.{k}".lstrip(".") for k in value if SECRET_KEY.search(str(k))]
        return found + [p for k, v in value.items() for p in _secret_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for v in value for p in _secret_paths(v, f"{path}[]")]
    return []


def validate_report(doc: dict) -> None:
    """Raise DataError naming the first place where ``doc`` breaks the schema (or holds a secret-like key)."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema ships with ray[default]
        raise DataError("jsonschema is not installed", "pip install jsonschema into the venv") from None
    validator = jsonschema.Draft202012Validator(REPORT_SCHEMA)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise DataError(f"performance report is invalid at {where}: {first.message}",
                        "see the schema in docs/report.md")
    leaked = _secret_paths((doc.get("config") or {}).get("resolved"))
    if leaked:
        raise DataError(f"performance report config holds secret-like key(s) {', '.join(leaked)}",
                        "redact the config (app.report.sources.redact) before building the report")
