"""The run folder's one writer: whole-file replacement, ledgers merged, names defined once."""
from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

from app import run_folder
from app.run_folder import RunFolder

APP = Path(__file__).resolve().parents[1] / "app"


def test_files_are_replaced_whole_and_ledgers_merged(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.merge_json(run_folder.STAGE_TIMINGS, {"collect": {"wall_s": 1.0}})
    folder.merge_json(run_folder.STAGE_TIMINGS, {"train": {"wall_s": 2.0}})
    assert folder.read_json(run_folder.STAGE_TIMINGS) == {"collect": {"wall_s": 1.0}, "train": {"wall_s": 2.0}}
    frame = pd.DataFrame({"symbol": ["005930"], "prediction": [0.5]})
    folder.write_frame(run_folder.PREDICTIONS, frame)
    folder.write_frame(run_folder.SIGNALS_CSV, frame)
    assert pd.read_parquet(folder.path(run_folder.PREDICTIONS)).equals(frame)
    assert pd.read_csv(folder.path(run_folder.SIGNALS_CSV), dtype={"symbol": str}).equals(frame)
    with pytest.raises(ValueError):
        folder.write_json(run_folder.EVALUATION, {"ic": float("nan")}, allow_nan=False)
    assert sorted(p.name for p in folder.root.iterdir()) == sorted(
        [run_folder.STAGE_TIMINGS, run_folder.PREDICTIONS, run_folder.SIGNALS_CSV])  # no temporary left behind


def _names() -> set[str]:
    return {str(v) for k, v in vars(run_folder).items() if k.isupper() and isinstance(v, (str, Path))
            and "." in str(v)}


def test_run_folder_file_names_are_written_out_only_in_run_folder_py():
    names = _names()
    assert {"predictions.parquet", "metrics.json", "stage_timings.json"} <= names
    found = []
    for path in APP.rglob("*.py"):
        if path.name == "run_folder.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                      and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings:
                found.append(f"{path.relative_to(APP)}:{node.lineno} {node.value}")
    assert found == []
