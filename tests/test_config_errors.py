"""Mistakes a user can make on the command line fail at the config check, before any work starts:
one line on stderr, exit 2, no traceback, nothing started."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.main import precheck
from tests.conftest import ROOT


def _checked(capsys, *overrides: str) -> str:
    with pytest.raises(SystemExit) as info:
        precheck(list(overrides))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.mark.parametrize("overrides, expected", [
    (["stage=report", "run_dir=/nonexistent/run"], "run folder /nonexistent/run does not exist"),
    (["runs=[/nonexistent/a]", "stage=compare"], "run folder /nonexistent/a does not exist"),
    (["train.amp=fp16"], "train.amp=fp16 needs training on a CUDA GPU"),
    (["model.hidden_size=0"], "model hidden_size=0 must be >= 1"),
    (["model=transformer", "model.nhead=3"], "not divisible by nhead=3"),
    (["data=file", "data.path=/nonexistent/bars.csv"], "data.path=/nonexistent/bars.csv is not a file"),
    (["data.on_bad_rows=drop"], "data.on_bad_rows='drop' is unknown"),
])
def test_config_mistakes_are_one_line_before_any_work(capsys, overrides, expected):
    assert expected in _checked(capsys, *overrides)


def test_fp16_without_cuda_fails_however_the_gpu_is_asked_for(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: fp16 can run here")
    assert "train.amp=fp16 needs training on a CUDA GPU" in _checked(capsys, "train.amp=fp16", "train.use_gpu=auto")
    assert "train.amp=fp16 needs training on a CUDA GPU" in _checked(capsys, "train.amp=fp16", "train.use_gpu=true")
    assert "train.use_gpu=true but this machine has no CUDA GPU" in _checked(capsys, "train.use_gpu=true")


def test_the_cli_prints_only_the_error_line(tmp_path: Path):
    """As a user sees it: no environment block, no Ray start-up, no traceback."""
    done = subprocess.run([sys.executable, "-m", "app.main", "stage=report", "run_dir=/nonexistent/run",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == "" and done.stderr.strip().splitlines() == [
        "error: run folder /nonexistent/run does not exist (fix: pass an existing run folder, e.g. "
        "run_dir=experiments/lstm/<YYYY-MM-DD_HH-MM-SS>)"]
    assert not (tmp_path / "run").exists()
