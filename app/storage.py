"""Where a run's outputs go: one storage root, chosen by the user, resolved once at config time.

Every relative path of the config is made absolute before the first stage runs, so no stage ever
resolves a path against the process's current directory. That matters under ``ray job submit
--working-dir``: the driver's current directory is Ray's unpacked copy of the project
(``.../runtime_resources/working_dir_files/_ray_pkg_<hash>/``), which Ray deletes when the job's
runtime environment is released, so outputs written there are lost.

- outputs (the run folder, the Parquet store, the features dataset, the token file store) resolve
  against the storage root: ``storage.root`` if set; otherwise the current directory on a laptop
  (today's ``experiments/`` and ``data/`` in the project) and ``storage.job_root`` (``~/krx-ray``)
  on the node running the driver of a Ray job;
- inputs the user names (``data.path``, ``data.master_dir``, ``run_dir``, ``runs``) resolve against
  the current directory, once, as the user typed them.

``storage.root`` may also be an ``s3://``, ``gs://`` or ``file://`` URI (pyarrow's filesystems;
options such as ``?endpoint_override=host:port&scheme=http`` for an S3-compatible server ride in its
query). Then what several nodes must see lives on the URI while the run goes on: the Parquet store
(``<uri>/data``), the features dataset and Ray Train's checkpoints
(``<uri>/experiments/<experiment>/<time>/checkpoints``). The run folder's own files (``run.log``,
Hydra's config, reports) are written by the driver under a local staging root (the default above) and
copied to ``<uri>/experiments/<experiment>/<time>/`` when the run ends (:func:`publish`).
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from app.errors import ConfigError

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)

URI_SCHEMES = ("s3", "gs", "gcs", "file")
#: Set by Ray's job supervisor in the environment of a submitted job's entrypoint.
RAY_JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
#: Outputs every node must see resolve against the storage root (a URI included); the token files,
#: which hold secrets, against the local root; inputs the user names, against the current directory.
OUTPUT_KEYS = ("store.root", "features.path")
LOCAL_OUTPUT_KEYS = ("kis.token_dir",)
INPUT_KEYS = ("data.path", "data.master_dir", "run_dir")
DEFAULT_JOB_ROOT = "~/krx-ray"
SECRET_WORDS = ("key", "secret", "token", "password", "credential")  # query options that are credentials


@dataclass
class StorageConfig:
    # None = the current directory, or job_root when the run is a Ray job; or an s3:// / gs:// URI
    root: Optional[str] = None
    job_root: str = DEFAULT_JOB_ROOT  # the default root on the driver's node under `ray job submit`
    shared: bool = False  # true when root is on storage every node sees (an NFS mount)


def is_uri(value: str | None) -> bool:
    return bool(value) and "://" in str(value)


def join(root: str, *parts: str) -> str:
    """``root``/``parts``: for a URI the parts go into its path, before any ``?query``."""
    if not is_uri(root):
        return os.path.join(root, *parts)
    u = urlsplit(str(root))
    path = "/".join([u.path.rstrip("/"), *(p.strip("/") for p in parts)])
    return urlunsplit((u.scheme, u.netloc, path, u.query, u.fragment))


@lru_cache(maxsize=32)
def _from_uri(uri: str):
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(uri)


def filesystem(root: str | os.PathLike):
    """``(pyarrow filesystem, path on it)`` for a local path or a storage URI (one filesystem per URI)."""
    import pyarrow.fs as pafs

    if is_uri(str(root)):
        return _from_uri(str(root))
    return pafs.LocalFileSystem(), str(Path(os.path.expanduser(str(root))).absolute())


def put_object(fs, path: str, data) -> None:
    """One object written whole: on an object store it becomes visible only when the upload completes."""
    with fs.open_output_stream(path) as out:
        out.write(data)


def in_ray_job() -> bool:
    """True in the entrypoint of ``ray job submit`` (its current directory is Ray's temporary copy)."""
    return RAY_JOB_ENV in os.environ


def local_root(root: str | None, job_root: str = DEFAULT_JOB_ROOT) -> Path:
    """The local folder outputs are written under (for a URI root: the staging folder)."""
    if root and not is_uri(root):
        return Path(os.path.expanduser(root)).absolute()
    if in_ray_job():
        return Path(os.path.expanduser(job_root)).absolute()
    return Path.cwd()


def _root_resolver(root: str | None = None, job_root: str = DEFAULT_JOB_ROOT) -> str:
    """``${storage_root:${storage.root},${storage.job_root}}`` in ``hydra.run.dir``."""
    return str(local_root(root, job_root))


def register_resolver() -> None:
    from omegaconf import OmegaConf  # here, not at import: a feature worker imports this module, never OmegaConf

    if not OmegaConf.has_resolver("storage_root"):
        OmegaConf.register_new_resolver("storage_root", _root_resolver)


def validate(cfg: AppConfig) -> None:
    """A URI root must name a scheme pyarrow can write to, without credentials; job_root must be set."""
    root = cfg.storage.root
    if is_uri(root):
        parts = urlsplit(str(root))
        if parts.username or parts.password:  # checked first: the messages below echo the URI
            raise ConfigError(
                "storage.root carries credentials, which would be saved with the run",
                "drop them from the URI and export them on every node (AWS_* or GOOGLE_APPLICATION_CREDENTIALS)",
            )
        secret = [k for k, _ in parse_qsl(parts.query) if any(w in k.lower() for w in SECRET_WORDS)]
        if secret:
            raise ConfigError(
                f"storage.root carries {', '.join(secret)} in its query, which would be saved with the run",
                "drop them from the URI and export them on every node (AWS_* or GOOGLE_APPLICATION_CREDENTIALS)",
            )
        if parts.scheme not in URI_SCHEMES or (not parts.netloc and parts.scheme != "file"):
            raise ConfigError(
                f"storage.root={root!r} is not a storage URI this pipeline can write to",
                "use a local or NFS path, or s3://bucket/prefix, gs://bucket/prefix, file:///abs/path",
            )
    if not str(cfg.storage.job_root).strip():
        raise ConfigError("storage.job_root is empty", "give a folder, e.g. storage.job_root=~/krx-ray")


def absolute(value: str | os.PathLike) -> str:
    """A storage location as stages use it: a URI unchanged, a local path made absolute."""
    return str(value) if is_uri(str(value)) else str(Path(os.path.expanduser(str(value))).resolve())


def _get(cfg: AppConfig, dotted: str) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        node = getattr(node, key, None)
    return node


def _set(cfg: AppConfig, dotted: str, value: Any) -> None:
    *parents, key = dotted.split(".")
    node: Any = cfg
    for name in parents:
        node = getattr(node, name)
    setattr(node, key, value)


def _absolute(value: str, base: Path | str) -> str:
    path = Path(os.path.expanduser(str(value)))
    if path.is_absolute():
        return str(path)
    return join(base, path.as_posix()) if is_uri(str(base)) else str(Path(base) / path)


def resolve_paths(cfg: AppConfig) -> Path:
    """Make every path of ``cfg`` absolute (in place); returns the local storage root."""
    root = local_root(cfg.storage.root, cfg.storage.job_root)
    uri = str(cfg.storage.root) if is_uri(cfg.storage.root) else None
    cwd = Path.cwd()
    for keys, base in ((OUTPUT_KEYS, uri or root), (LOCAL_OUTPUT_KEYS, root), (INPUT_KEYS, cwd)):
        for dotted in keys:
            value = _get(cfg, dotted)
            if value is not None and not is_uri(value):
                _set(cfg, dotted, _absolute(value, base))
    cfg.runs = [_absolute(r, cwd) for r in cfg.runs]
    return root


def leave_job_copy(root: Path) -> None:
    """Under a Ray job, move the driver out of Ray's copy of the working dir into the storage root.

    Each node's runtime-env agent unpacks the working dir by deleting any copy at its path first; when
    nodes share a temp dir (two ``ray start`` on one machine, or a temp dir on a shared mount) the next
    node to start a job worker deletes the directory the driver stands in, and every later ``getcwd``
    (``Path.resolve`` of a relative path, a library locating its files) fails with FileNotFoundError.
    """
    if in_ray_job():
        root.mkdir(parents=True, exist_ok=True)
        os.chdir(root)


#: The folder of Ray's per-node copies of a job's ``--working-dir`` (``.../working_dir_files/_ray_pkg_<hash>``).
RAY_COPIES = "working_dir_files"


#: The folder this code was imported from (Ray's copy of the working dir, under a job).
CODE_ROOT = Path(__file__).resolve().parents[1]


def _unpack_lock(copy: Path) -> Any:
    """The file lock Ray's runtime-env agents hold while they delete and unpack ``copy``."""
    from filelock import FileLock

    return FileLock(str(copy.parent / f"{copy.name}.zip.lock"), timeout=120)


def _job_dir() -> Path:
    """The current directory; if another node's agent has just deleted it to unpack the same code at
    the same path again, the folder this code was imported from, once that unpack is done."""
    try:
        return Path.cwd()
    except FileNotFoundError:
        if RAY_COPIES not in CODE_ROOT.parts:
            raise
        with _unpack_lock(CODE_ROOT):
            os.chdir(CODE_ROOT)
        return CODE_ROOT


def run_from_own_copy() -> None:
    """Under a Ray job started in Ray's copy of the working dir, re-run this command from a copy of
    that code of our own (``<user cache>/krx-ray/code/_ray_pkg_<hash>``), made once per code version.

    Another node's runtime-env agent that shares the temp dir deletes and re-unpacks Ray's copy when
    it starts the job's first worker there (see :func:`leave_job_copy`); a module imported after
    that, or the simulator started from that code, would then not be found. Nothing has been run
    yet when this is called, so the command starts over unchanged, relative paths included.
    """
    cwd = _job_dir()
    if not in_ray_job() or RAY_COPIES not in cwd.parts or os.environ.get("KRX_OWN_COPY"):
        return
    from platformdirs import user_cache_dir

    own = Path(user_cache_dir("krx-ray")) / "code" / cwd.name
    if not own.is_dir():
        import shutil
        import uuid

        tmp = own.with_name(f".{own.name}-{uuid.uuid4().hex[:8]}")
        with _unpack_lock(cwd):  # no agent deletes or re-unpacks Ray's copy while it is read
            shutil.copytree(cwd, tmp, symlinks=True)
        try:
            os.rename(tmp, own)
        except OSError:  # another job of the same code made it first
            shutil.rmtree(tmp, ignore_errors=True)
    env = {**os.environ, "KRX_OWN_COPY": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(own), os.environ.get("PYTHONPATH")) if p)}
    os.chdir(own)
    os.execve(sys.executable, [sys.executable, "-m", "app.main", *sys.argv[1:]], env)


def is_shared(storage_cfg: StorageConfig) -> bool:
    """Whether every node sees the storage root: a URI, or a mount the user marked shared."""
    return bool(storage_cfg.shared) or is_uri(storage_cfg.root)


def warn_if_unshared(nodes: int, storage_cfg: StorageConfig) -> None:
    """Ray Train/Tune checkpoint to ``storage_path``; on several nodes that must be shared storage."""
    if nodes > 1 and not is_shared(storage_cfg):
        log.warning(
            "this Ray cluster has %d nodes but storage is local to each: checkpoints need shared storage "
            "(fix: storage.root=<an NFS mount every node sees> storage.shared=true, or an s3:// / gs:// URI)", nodes,
        )


def location(run_dir: Path, cfg: AppConfig) -> str:
    """Where the user finds the run folder: its URI when storage.root is one, else its absolute path."""
    root = cfg.storage.root
    if not is_uri(root):
        return str(run_dir)
    base = local_root(None, cfg.storage.job_root)
    rel = run_dir.relative_to(base) if run_dir.is_relative_to(base) else Path(*run_dir.parts[-3:])
    return join(str(root), rel.as_posix())


def checkpoint_root(run_dir: Path, cfg: AppConfig) -> str:
    """Ray Train's ``storage_path`` for this run: ``checkpoints/`` of the run folder, on the URI when
    storage.root is one (so every node's workers write and restore from the same place)."""
    return join(location(run_dir, cfg), "checkpoints")


def publish(run_dir: Path, cfg: AppConfig) -> str | None:
    """Copy the finished run folder to a URI ``storage.root``; returns the URI, None when local."""
    if not is_uri(cfg.storage.root):
        return None
    import pyarrow.fs as pafs

    target = location(run_dir, cfg)
    try:
        fs, path = filesystem(target)
        fs.create_dir(path, recursive=True)
        pafs.copy_files(str(run_dir), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these; the run itself is kept
        log.error("could not copy the run folder to %s: %s (it stays at %s)", target, str(exc).splitlines()[0], run_dir)
        return None
    log.info("run folder copied to %s", target)
    return target
