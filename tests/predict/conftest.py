"""One small training run (embedded simulator → features → Ray Train) shared by the predict tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.predict.predict_testutil import TRAIN_ARGS, cli


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("predict")
    run, store = base / "train", base / "store"
    proc = cli(*TRAIN_ARGS, f"store.root={store}", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"run": run, "store": store, "base": base}
