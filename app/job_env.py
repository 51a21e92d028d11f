"""The job's own ``runtime_env``: what Ray keeps of it, and the secrets that must not be there.

Ray stores a submitted job's ``runtime_env`` (``env_vars`` included) in the job's info and shows it
in the dashboard and the jobs API; it redacts nothing but passwords inside URLs. KIS credentials put
there (``ray job submit --runtime-env-json '{"env_vars": {"KIS_APP_KEY": ...}}'``) are readable by
anyone who can open the dashboard, for as long as the cluster keeps the job. The job still runs (the
values are already stored), but says so once, with the fix.
"""
from __future__ import annotations

import json
import logging
import os

from app.kis.credentials import ENV_CREDENTIALS_FILE, SECRET_NAMES
from app.storage import RAY_JOB_ENV

log = logging.getLogger(__name__)


def runtime_env_vars(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The ``env_vars`` of this job's ``runtime_env`` as Ray recorded it ({} outside a Ray job)."""
    env = os.environ if environ is None else environ
    try:
        job = json.loads(env.get(RAY_JOB_ENV) or "{}")
    except ValueError:
        return {}
    runtime_env = job.get("runtime_env") if isinstance(job, dict) else None
    env_vars = (runtime_env or {}).get("env_vars") if isinstance(runtime_env, dict) else None
    return {str(k): str(v) for k, v in env_vars.items()} if isinstance(env_vars, dict) else {}


def secrets_in_runtime_env(environ: dict[str, str] | None = None) -> list[str]:
    """Names (never values) of the KIS secrets this job's ``runtime_env`` carries."""
    found = runtime_env_vars(environ)
    return [name for name in SECRET_NAMES if found.get(name)]


def warn_if_secrets_in_runtime_env(environ: dict[str, str] | None = None) -> bool:
    """One warning line when the job's ``runtime_env`` holds KIS secrets; True when it did."""
    names = secrets_in_runtime_env(environ)
    if names:
        log.warning(
            "%s in this job's runtime_env: Ray stores it with the job and shows it in the dashboard and the "
            "jobs API (fix: drop it from --runtime-env-json, export it on every node before `ray start` or "
            "name a file of them with %s, and rotate the key)", " and ".join(names), ENV_CREDENTIALS_FILE)
    return bool(names)
