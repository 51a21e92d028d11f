"""The ``Tuner``: OptunaSearch (seeded TPE) + ASHA over ``run_trial``, sized to the cluster, resumable.

Resources on a small machine: a ``direct`` trial reserves the CPUs of its one worker; a
``trainer`` trial reserves no CPU for itself (only a little memory: a Tune resource request
cannot be empty) and its ``TorchTrainer`` reserves the workers' CPUs, so the number of trials
running at once is the number of trials whose workers fit on the cluster's CPUs. Anything more
and the nested trainers wait for each other's CPUs until "worker group startup timed out".
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import ray
from ray import tune

from app import console, storage
from app.errors import ConfigError
from app.train.config import TrainConfig
from app.typed import typed
from app.train.device import resolve_use_gpu
from app.train.fit import worker_resources
from app.tune.callbacks import EpochBudget, TrialLogCallback
from app.tune.cleanup import ReleaseWorkerGroups, release_orphaned_groups
from app.tune.config import TuneConfig
from app.tune.place import holds_anything, storage_place
from app.tune.ranking import best_key
from app.tune.records import KeepTrialRecords
from app.tune.trial import TrialSpec, run_trial

log = logging.getLogger(__name__)

TRAINER_TRIAL_MEMORY = 64 * 1024**2  # bytes: the trial process of a trainer trial (no CPU)
SWEEP_FILE = "sweep.json"  # what the sweep was started with; a resume must match it
TIMES_FILE = "trial_times.jsonl"  # wall-clock start and end of every trial (per-trial overhead)
#: Tune's settings for a sweep's saved state, read from the environment when a sweep starts.
#: TUNE_GLOBAL_CHECKPOINT_S: how often the state (trial statuses, checkpoints, searcher, results)
#: is saved; Tune's default is every 10 s or more, and what a killed driver had not saved is
#: trained again. The excessive-snapshot warning: Tune also saves the state whenever a trial has
#: written `checkpoints_to_keep` checkpoints since the last save, so the checkpoint the state points
#: to is never deleted; with epochs of a second or two that is every few seconds, and the warning
#: would repeat all sweep long. Each save writes ~30 KB per trial to the local run folder; a save
#: that is really slow still warns (TUNE_WARN_SLOW_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S).
SWEEP_ENV = {"TUNE_GLOBAL_CHECKPOINT_S": "2", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}


def trial_mode(tcfg: TuneConfig, train: TrainConfig) -> str:
    """``auto``: a single-worker trial runs the loop itself (see docs/tuning.md for the measurement)."""
    if tcfg.trial_mode != "auto":
        return tcfg.trial_mode
    return "direct" if train.num_workers == 1 else "trainer"


@dataclass(frozen=True)
class Sizing:
    resources: dict[str, float]  # the trial process's own reservation
    cpus_per_trial: float  # what a running trial holds in all (its workers included)
    max_concurrent: int
    gpus_per_worker: float = 0.0  # each training worker's GPU share (0: the trial trains on CPUs)


def gpu_share(train: TrainConfig, cpu_fits: int, cluster_gpus: float) -> float:
    """A worker's GPU share: ``train.gpus_per_worker``, else one that lets every trial the CPUs allow
    run at once (small models share a GPU: 1/k of one, whole GPUs when there are enough)."""
    if train.use_gpu is not True:  # False, or "auto" not resolved against a cluster
        return 0.0
    if train.gpus_per_worker:
        return float(train.gpus_per_worker)
    workers = max(1, cpu_fits * train.num_workers)
    return 1.0 / math.ceil(workers / cluster_gpus - 1e-9) if cluster_gpus < workers else 1.0


def _fits(per_trial: float, available: float, what: str) -> int:
    fits = math.floor(available / per_trial + 1e-9)
    if fits < 1:
        raise ConfigError(f"a trial needs {per_trial:g} {what}, the cluster has {available:g}",
                          f"lower train.num_workers or train.{'cpus' if what == 'CPUs' else 'gpus'}_per_worker")
    return fits


def size_trials(mode: str, train: TrainConfig, tcfg: TuneConfig, cluster_cpus: float,
                cluster_gpus: float = 0.0) -> Sizing:
    """Per-trial resources and how many trials may run at once without starving each other.

    ``train.use_gpu`` must be resolved (a bool): a GPU trial's workers hold a share of a GPU each,
    and the trials that fit are the fewer of those the CPUs and those the GPUs allow.
    """
    if mode == "direct" and train.num_workers != 1:
        raise ConfigError(f"tune.trial_mode=direct trains one worker, train.num_workers={train.num_workers}",
                          "set train.num_workers=1 or tune.trial_mode=trainer")  # fmt: skip
    per_trial = float(train.num_workers * train.cpus_per_worker)
    fits = _fits(per_trial, cluster_cpus, "CPUs")
    share = gpu_share(train, fits, cluster_gpus)
    if share:
        fits = min(fits, _fits(share * train.num_workers, cluster_gpus, "GPUs"))
    if mode == "direct":
        resources = {"CPU": per_trial, **({"GPU": share} if share else {})}
    else:  # the trial's TorchTrainer reserves its workers' CPUs and GPUs
        resources = {"CPU": 0, "memory": TRAINER_TRIAL_MEMORY}
    wanted = tcfg.max_concurrent_trials or fits
    if wanted > fits and mode == "trainer":
        log.warning("tune.max_concurrent_trials=%d would starve the trainers' workers; running %d at once",
                    wanted, fits)
    concurrent = min(wanted, fits, tcfg.num_samples)
    return Sizing(resources, per_trial, max(1, concurrent), share)


def searcher(tcfg: TuneConfig) -> Any:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    if tcfg.search == "random":
        sampler = optuna.samplers.RandomSampler(seed=tcfg.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=tcfg.seed, n_startup_trials=tcfg.startup_trials)
    return OptunaSearch(metric=best_key(tcfg.metric), mode=tcfg.metric_mode, sampler=sampler)


def scheduler(tcfg: TuneConfig, max_t: int) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    from app.tune.asha import ResumableASHA

    if tcfg.scheduler == "fifo":
        return FIFOScheduler()
    return ResumableASHA(time_attr="epoch", metric=tcfg.metric, mode=tcfg.metric_mode, max_t=max_t,
                         grace_period=tcfg.grace_period, reduction_factor=tcfg.reduction_factor)  # fmt: skip


def trial_dirname(trial: Any) -> str:
    """Short, stable trial folders (module level: Tune pickles it with the sweep for resuming)."""
    return f"trial_{trial.trial_id}"


def experiment_dir(run_dir: Path, tcfg: TuneConfig) -> Path:
    return Path(run_dir).resolve() / "tune" / tcfg.name


def _callbacks(tcfg: TuneConfig, exp: Path, mode: str, train: TrainConfig) -> list:
    callbacks: list = [KeepTrialRecords(), TrialLogCallback(tcfg.metric, str(exp.parent / TIMES_FILE))]
    if mode == "trainer":
        callbacks.append(ReleaseWorkerGroups(worker_resources(train), train.num_workers))
    return callbacks


def _storage(exp: Path, remote: str | None) -> dict[str, Any]:
    """``storage_path`` (and ``storage_filesystem`` on a URI) of the sweep's experiment."""
    if remote is None:
        return {"storage_path": str(exp.parent)}  # absolute: Ray refuses relative storage paths
    fs, path = storage_place(remote)
    return {"storage_path": path, "storage_filesystem": fs}


def _run_config(tcfg: TuneConfig, exp: Path, callbacks: list, remote: str | None = None) -> tune.RunConfig:
    stop = EpochBudget(tcfg.max_trial_epochs, remote or str(exp)) if tcfg.max_trial_epochs else None
    return tune.RunConfig(
        name=exp.name,
        **_storage(exp, remote),
        stop=stop,
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=tcfg.checkpoints_to_keep, checkpoint_score_attribute="score", checkpoint_score_order="max"
        ),
        failure_config=tune.FailureConfig(max_failures=tcfg.max_failures),
        callbacks=callbacks,
        verbose=0 if console.routing() else 1,  # no status tables: the console has a line per finished trial
    )


def _differences(now: dict[str, Any], saved: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (one level into nested settings)."""
    out = []
    for key in sorted(set(now) | set(saved)):
        a, b = now.get(key), saved.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and not prefix:
            out += _differences(a, b, f"{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def _can_restore(exp: Path, remote: str | None) -> bool:
    if remote is None:
        return tune.Tuner.can_restore(str(exp))
    fs, path = storage.filesystem(remote)
    return tune.Tuner.can_restore(path, storage_filesystem=fs)


def _check_resume(exp: Path, fingerprint: dict[str, Any], remote: str | None = None) -> None:
    if not _can_restore(exp, remote):
        raise ConfigError(f"tune.resume=true but {remote or exp} holds no sweep",
                          "re-run in the interrupted run folder (hydra.run.dir=...) or set tune.resume=false")
    saved = json.loads((exp.parent / SWEEP_FILE).read_text()) if (exp.parent / SWEEP_FILE).exists() else fingerprint
    changed = _differences(json.loads(json.dumps(fingerprint, default=str)), saved)
    if changed:
        raise ConfigError(f"tune.resume=true with a different {', '.join(changed)} than the interrupted sweep",
                          "resume with the original overrides, or start a new sweep (tune.resume=false)")  # fmt: skip


def _restore(exp: Path, remote: str | None, trainable: Any) -> tune.Tuner:
    if remote is None:
        return tune.Tuner.restore(str(exp), trainable, resume_unfinished=True, resume_errored=True)
    fs, path = storage.filesystem(remote)
    return tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True, storage_filesystem=fs)


@contextlib.contextmanager
def sweep_environment() -> Iterator[None]:
    """Set :data:`SWEEP_ENV` for the sweep; a value the user set in the environment wins."""
    added = {k: v for k, v in SWEEP_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def check_experiment(tcfg: TuneConfig, run_dir: Path, fingerprint: dict[str, Any], remote: str | None = None) -> Path:
    """A resume needs the same sweep in the folder, a new sweep an empty one; writes nothing.
    ``remote``: the experiment's URI when storage.root is one (:func:`app.tune.place.experiment_uri`)."""
    exp = experiment_dir(run_dir, tcfg)
    if tcfg.resume:
        _check_resume(exp, fingerprint, remote)
    elif (exp.exists() and any(exp.iterdir())) or (remote is not None and holds_anything(remote)):
        raise ConfigError(f"{remote or exp} already holds a sweep",
                          "continue it with tune.resume=true or name a new one with tune.name=...")  # fmt: skip
    return exp


def prepare_experiment(tcfg: TuneConfig, run_dir: Path, fingerprint: dict[str, Any],
                       remote: str | None = None) -> Path:  # fmt: skip
    """Check the folder before any work and record what a new sweep was started with."""
    exp = check_experiment(tcfg, run_dir, fingerprint, remote)
    if tcfg.resume:
        return exp
    exp.parent.mkdir(parents=True, exist_ok=True)
    (exp.parent / SWEEP_FILE).write_text(json.dumps(fingerprint, indent=1, default=str))
    return exp


def run_sweep(spec: TrialSpec, tcfg: TuneConfig, exp: Path, remote: str | None = None) -> tune.ResultGrid:
    """Start (or with ``tune.resume`` continue) the sweep in ``exp``, or on ``remote`` (its URI) when
    given; Ray must be up."""
    total = ray.cluster_resources()
    gpus = float(total.get("GPU", 0))
    train = resolve_use_gpu(typed(TrainConfig, spec.base["train"], "train"), gpus)
    sizing = size_trials(spec.mode_of_trial, train, tcfg, float(total.get("CPU", 1)), gpus)
    train = dataclasses.replace(train, gpus_per_worker=sizing.gpus_per_worker or None)
    spec = dataclasses.replace(spec, base={**spec.base, "train": train.to_dict()})  # every trial trains alike
    trainable = tune.with_resources(tune.with_parameters(run_trial, spec=spec), sizing.resources)
    if tcfg.resume:
        log.info("resuming the sweep in %s", remote or exp)
        tuner = _restore(exp, remote, trainable)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=spec.space.param_space(),
            tune_config=tune.TuneConfig(
                search_alg=searcher(tcfg), scheduler=scheduler(tcfg, spec.epochs), num_samples=tcfg.num_samples,
                max_concurrent_trials=sizing.max_concurrent, time_budget_s=tcfg.time_budget_s,
                trial_dirname_creator=trial_dirname,
            ),
            run_config=_run_config(tcfg, exp, _callbacks(tcfg, exp, spec.mode_of_trial, train), remote),
        )  # fmt: skip
    log.info("sweep %s: %d trials, %s trials, %d at once, %s per trial; TensorBoard: tensorboard --logdir %s",
             remote or exp, tcfg.num_samples, spec.mode_of_trial, sizing.max_concurrent, sizing.resources,
             remote or exp)  # fmt: skip
    with sweep_environment():
        grid = tuner.fit()
    if spec.mode_of_trial == "trainer":
        time.sleep(2.0)  # the last killed trainers' workers exit
        release_orphaned_groups(worker_resources(train), train.num_workers, grace_s=0.0)
    return grid
