"""ray_cluster.yaml (on-premise) and ray_cluster_aws.yaml (cloud) are valid Ray cluster-launcher configs."""
from __future__ import annotations

import copy
import re

import yaml

from tests.conftest import ROOT


def validated(name: str) -> dict:
    """The file as ``ray up`` reads it, after Ray's own schema validation."""
    from ray.autoscaler._private.util import validate_config

    raw = yaml.safe_load((ROOT / name).read_text())
    validate_config(copy.deepcopy(raw))
    return raw


def test_cluster_yaml_validates_against_rays_schema():
    prepared = validated("ray_cluster.yaml")
    assert prepared["provider"]["type"] == "local"
    # Ray's GCS must not take the Redis port that holds the shared KIS limiter.
    assert "--port=6380" in " ".join(prepared["head_start_ray_commands"])
    assert any("torch==2.13.0" in c for c in prepared["setup_commands"])


def test_aws_yaml_validates_and_has_a_cpu_and_a_gpu_worker_group_on_spot():
    cfg = validated("ray_cluster_aws.yaml")
    assert cfg["provider"]["type"] == "aws"
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] == "head" and types["head"]["resources"] == {"CPU": 0}
    for group in ("cpu_workers", "gpu_workers"):
        node = types[group]
        assert 0 <= node["min_workers"] <= node["max_workers"] <= cfg["max_workers"]
        assert node["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    cpu_torch = [c for c in cfg["setup_commands"] if "torch==2.13.0" in c]
    gpu_torch = [c for c in types["gpu_workers"]["worker_setup_commands"] if "torch==2.13.0" in c]
    assert len(cpu_torch) == 1 and "/whl/cpu" in cpu_torch[0]
    assert len(gpu_torch) == 1 and re.search(r"/whl/cu\d+", gpu_torch[0])
    assert any("pip install -q -e ." in c for c in types["gpu_workers"]["worker_setup_commands"])
    assert "--port=6380" in " ".join(cfg["head_start_ray_commands"])
    for start in (cfg["head_start_ray_commands"][-1], cfg["worker_start_ray_commands"][-1]):
        assert "KIS_CREDENTIALS_FILE=" in start and "KIS_APP_KEY" not in start  # a file on the node, no value


def test_every_placeholder_of_the_aws_yaml_is_marked_for_editing():
    lines = (ROOT / "ray_cluster_aws.yaml").read_text().splitlines()
    placeholders = [ln for ln in lines if not ln.lstrip().startswith("#") and re.search(r"<[^>]+>", ln)]
    assert len(placeholders) >= 5  # the AMIs, the instance profiles, the EFS id, the secret
    assert [ln for ln in placeholders if "# EDIT" not in ln] == []
