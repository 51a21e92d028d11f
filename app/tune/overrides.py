"""The best trial as Hydra overrides: the sweep's own command line, training instead of tuning.

``best_overrides.txt`` holds one override per line: the run's command-line overrides (from
Hydra's ``.hydra/overrides.yaml``) minus ``hydra.*``, ``tune.*``, ``stage`` and
``experiment_name``, then the train stage, the best values at their config paths and the
epoch budget the trial was trained with. Run it with
``xargs -d '\\n' -a best_overrides.txt .venv/bin/python -m app.main``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from app.run_folder import BEST_OVERRIDES, RunFolder
from app.run_folder import OVERRIDES as HYDRA_OVERRIDES
from app.tune.space import SearchSpace

OVERRIDES_FILE = BEST_OVERRIDES
TRAIN_STAGES = "stage=[collect,features,train,evaluate,report]"
DROPPED = re.compile(r"^[+~]*(hydra\.|hydra=|tune\.|tune=|stage=|experiment_name=)")
PLAIN = re.compile(r"^[A-Za-z0-9_.:/-]+$")


def run_overrides(run_dir: Path, experiment_name: str) -> list[str]:
    """The command-line overrides of this run, or ``+experiment=<name>`` when Hydra saved none."""
    path = Path(run_dir) / HYDRA_OVERRIDES
    if path.exists():
        return [str(o) for o in (yaml.safe_load(path.read_text()) or [])]
    return [f"+experiment={experiment_name}"]


def hydra_value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back unchanged."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    text = str(value)
    if PLAIN.match(text) and text not in ("true", "false", "null"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def best_overrides(base: list[str], space: SearchSpace, values: dict[str, Any], *, epochs: int, metric: str,
                   experiment_name: str) -> list[str]:  # fmt: skip
    kept = [o for o in base if not DROPPED.match(o)]
    tuned = {p.path for p in space}
    kept = [o for o in kept if o.lstrip("+~").split("=", 1)[0] not in tuned]
    lines = [*kept, TRAIN_STAGES, f"experiment_name={experiment_name}_best", f"train.epochs={epochs}",
             f"train.monitor={metric}"]  # fmt: skip
    for p in space:
        value = values[p.name]
        value = int(value) if p.type == "int" or p.path == "windows.seq_len" else value
        lines.append(f"{p.path}={hydra_value(value)}")
    return lines


def write_overrides(run_dir: Path, lines: list[str]) -> Path:
    return RunFolder(run_dir).write_text(OVERRIDES_FILE, "\n".join(lines) + "\n")


def read_overrides(path: Path) -> list[str]:
    return [line for line in Path(path).read_text().splitlines() if line.strip()]
