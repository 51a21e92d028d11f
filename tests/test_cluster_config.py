"""ray_cluster.yaml is a valid Ray cluster-launcher config for the on-prem provider."""
from __future__ import annotations

import copy

import yaml

from tests.conftest import ROOT


def test_cluster_yaml_validates_against_rays_schema():
    from ray.autoscaler._private.util import validate_config

    raw = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    validate_config(copy.deepcopy(raw))
    prepared = raw
    assert prepared["provider"]["type"] == "local"
    # Ray's GCS must not take the Redis port that holds the shared KIS limiter.
    assert "--port=6380" in " ".join(prepared["head_start_ray_commands"])
    assert any("torch==2.13.0" in c for c in prepared["setup_commands"])
