"""Each default lives in one place: the schema's dataclasses. A conf/ group file only sets what differs."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from omegaconf import OmegaConf

from app.config import AppConfig
from tests.conftest import ROOT

#: groups whose files are whole nodes of their own (a model's `_target_` node, an experiment's overrides)
NOT_SCHEMA_GROUPS = ("experiment", "model")


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}")
    else:
        yield prefix, node


def repeated_defaults(path: Path) -> list[str]:
    """Keys of a group file whose value is the schema's default for that key."""
    schema = OmegaConf.structured(AppConfig)
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    raw.pop("defaults", None)
    out = []
    for key, value in _leaves(raw, path.parent.name):
        default = OmegaConf.select(schema, key, default="<no default>")
        default = OmegaConf.to_container(default) if OmegaConf.is_config(default) else default
        if default == value:
            out.append(key)
    return out


GROUP_FILES = sorted(p for p in (ROOT / "conf").glob("*/*.yaml") if p.parent.name not in NOT_SCHEMA_GROUPS)


@pytest.mark.parametrize("path", GROUP_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_group_file_repeats_a_schema_default(path: Path) -> None:
    assert repeated_defaults(path) == [], f"{path.relative_to(ROOT)} repeats defaults of app/config.py's schema"


def test_the_check_sees_a_repeated_default(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    copy = tmp_path / "train" / "default.yaml"
    copy.write_text("lr: 0.001\nepochs: 3\nseed: ${seed}\n")
    assert repeated_defaults(copy) == ["train.lr"]
