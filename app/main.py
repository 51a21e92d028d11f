"""Hydra entry point: ``python -m app.main [overrides]`` composes the config and runs its stages.

The config is composed once up front with Hydra's compose API so that a bad key, a wrong type or
an impossible value fails with one clear line before anything is written; then Hydra's own
``main`` runs the stages with its run folder under ``experiments/``.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from app import config as schema
from app import storage
from app import console
from app.errors import AppError, ConfigError
from app.job_env import warn_if_secrets_in_runtime_env
from app.predict.inputs import folder_overrides
from app.stages import run_stages

#: conf/ beside app/ in the project (a checkout, or Ray's copy of it under ``--working-dir``), or the
#: package data app/conf of an installed pipeline (a node with the package and no working dir).
_PACKAGED = Path(__file__).resolve().parent / "conf"
CONF_DIR = str(_PACKAGED if (_PACKAGED / "config.yaml").is_file() else _PACKAGED.parent.parent / "conf")
log = logging.getLogger("app")

schema.register()


def precheck(overrides: list[str]) -> None:
    """Compose and validate without side effects; exit 2 with one line on a config error."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            cfg = compose(config_name="config", overrides=overrides)
        schema.validate(cfg)
    except AppError as exc:
        fail(exc)
    except Exception as exc:  # Hydra/OmegaConf composition and validation errors
        fail(ConfigError(_first_line(exc), "check the key names and types in conf/ or run with --help"))
    finally:
        GlobalHydra.instance().clear()


def _first_line(exc: BaseException) -> str:
    """One line from Hydra/OmegaConf's multi-line errors: the sentence, its cause, the options."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 3:
        lines = [ln.strip() for ln in str(seen).splitlines() if ln.strip()]
        if lines and lines[0] not in parts:
            parts.append(lines[0].rstrip("."))
        if "Available options" in str(seen):
            idx = lines.index(next(ln for ln in lines if ln.startswith("Available")))
            opts = [ln for ln in lines[idx + 1 :] if not ln.startswith(("provider=", "Config search path"))]
            parts.append("available: " + ", ".join(opts))
        seen = seen.__cause__
    return "; ".join(parts) or repr(exc)


def fail(exc: AppError, code: int = 2) -> None:
    print(f"error: {exc.one_line()}", file=sys.stderr)
    raise SystemExit(code)


def mask_secrets() -> None:
    """Every log handler masks the secrets of this environment, whoever logs them."""
    import os
    from urllib.parse import urlsplit

    from app.kis import redact

    for name in ("KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ACCOUNT"):
        redact.register_secret(os.environ.get(name))
    if os.environ.get("REDIS_URL"):
        redact.register_secret(urlsplit(os.environ["REDIS_URL"]).password)
    redact.install()


@hydra.main(config_path=CONF_DIR, config_name="config", version_base=None)
def hydra_main(composed: DictConfig) -> None:
    mask_secrets()
    cfg = schema.typed(composed)  # the one conversion: every stage gets these typed sections
    console.install(debug=bool(cfg.debug))
    warn_if_secrets_in_runtime_env()
    root = storage.resolve_paths(cfg)  # every path absolute now: no stage resolves against the current directory
    storage.leave_job_copy(root)
    run_dir = Path(HydraConfig.get().runtime.output_dir).absolute()
    where = storage.location(run_dir, cfg)
    console.say("run folder: %s", where)  # first and last line, so `ray job logs` says where to look
    try:
        run_stages(cfg, run_dir)
    except AppError as exc:
        log.error("%s", exc.one_line(), extra=console.RUN_LOG_ONLY)  # the console gets it from fail()
        _close(run_dir, cfg, where)
        if cfg.debug:
            raise
        fail(exc, code=exc.exit_code)  # the error stays the run's last line
    except BaseException:
        _close(run_dir, cfg, where)
        raise
    _close(run_dir, cfg, where)


def _close(run_dir: Path, cfg: schema.AppConfig, where: str) -> None:
    """Copy the run folder to a URI storage root, and say once more where it is."""
    storage.publish(run_dir, cfg)
    console.say("run folder: %s", where)


def exit_on_sigterm() -> None:
    """SIGTERM (``ray job stop``, a pod's end) unwinds like an exception: the simulator stops, the run
    folder is named once more, and the store keeps only whole files (each is renamed into place)."""
    import signal

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def main() -> None:
    storage.run_from_own_copy()  # under `ray job submit --working-dir`: never from Ray's deletable copy
    exit_on_sigterm()
    overrides = [a for a in sys.argv[1:] if not a.startswith("-")]
    extra = folder_overrides(overrides)  # stage=predict runs in experiments/predict/<time>
    sys.argv += extra
    overrides += extra
    if not any(a in ("--help", "-h", "--hydra-help", "--info", "--cfg", "-c") for a in sys.argv[1:]):
        precheck(overrides)
    hydra_main()


if __name__ == "__main__":
    main()
