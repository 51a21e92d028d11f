"""A job's runtime_env as Ray recorded it: KIS secrets there are named, by name only, in one warning."""
from __future__ import annotations

import json
import logging

from app.job_env import secrets_in_runtime_env, warn_if_secrets_in_runtime_env
from app.storage import RAY_JOB_ENV


def job_env(env_vars: dict | None) -> dict[str, str]:
    runtime_env = {"working_dir": "gcs://_ray_pkg_x.zip", **({"env_vars": env_vars} if env_vars is not None else {})}
    return {RAY_JOB_ENV: json.dumps({"runtime_env": runtime_env, "metadata": {}})}


def test_secrets_are_found_by_name_in_the_jobs_runtime_env():
    assert secrets_in_runtime_env(job_env({"KIS_APP_SECRET": "s", "KIS_APP_KEY": "k"})) == ["KIS_APP_KEY",
                                                                                            "KIS_APP_SECRET"]
    assert secrets_in_runtime_env(job_env({"KIS_ACCOUNT": "1", "OTHER": "x"})) == []
    assert secrets_in_runtime_env(job_env(None)) == [] and secrets_in_runtime_env({}) == []
    assert secrets_in_runtime_env({RAY_JOB_ENV: "not json"}) == []


def test_the_warning_is_one_line_with_the_fix_and_no_value(caplog):
    caplog.set_level(logging.WARNING, logger="app.job_env")
    assert warn_if_secrets_in_runtime_env(job_env({"KIS_APP_KEY": "VALUE-SENTINEL"}))
    (record,) = caplog.records
    text = record.getMessage()
    assert "\n" not in text and "VALUE-SENTINEL" not in text
    assert text.startswith("KIS_APP_KEY in this job's runtime_env") and "(fix: drop it from --runtime-env-json" in text
    assert not warn_if_secrets_in_runtime_env(job_env({"PATH": "/bin"}))
