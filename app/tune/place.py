"""Where Tune keeps a sweep's experiment when ``storage.root`` is a URI: the run folder's place on it.

With a local (or NFS) root the experiment is ``<run_dir>/tune/<name>`` and none of this is used.
With an ``s3://`` / ``gs://`` root it is ``<run folder's URI>/tune/<name>``: every node's trials
write their checkpoints there and a resumed sweep restores from there, so a sweep over several
nodes needs no shared mount. The driver's own small files (``sweep.json``, ``trial_times.jsonl``)
stay in the local run folder, which :func:`app.storage.publish` copies to the URI at the end.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from app import storage

if TYPE_CHECKING:
    from app.config import AppConfig


def experiment_uri(run_dir: Path, cfg: AppConfig, name: str) -> str | None:
    """The experiment's URI for a URI storage root, else None (the experiment stays in ``run_dir``)."""
    if not storage.is_uri(cfg.storage.root):
        return None
    return storage.join(storage.location(Path(run_dir), cfg), "tune", name)


def storage_place(uri: str) -> tuple[Any, str]:
    """Tune's ``(storage_filesystem, storage_path)`` for an experiment URI: its parent folder on the fs."""
    fs, path = storage.filesystem(uri)
    return fs, path.rstrip("/").rsplit("/", 1)[0]


def is_dir(fs: Any, path: str) -> bool:
    import pyarrow.fs as pafs

    return fs.get_file_info(path).type == pafs.FileType.Directory


def entries(fs: Any, path: str) -> list[str]:
    """The direct children of ``path`` on ``fs`` (none when it does not exist)."""
    import pyarrow.fs as pafs

    return sorted(i.path for i in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)))


def holds_anything(uri: str) -> bool:
    fs, path = storage.filesystem(uri)
    return bool(entries(fs, path))


def read_text(fs: Any, path: str) -> str | None:
    """A small object's text, or None when it is missing."""
    try:
        with fs.open_input_stream(path) as f:
            return f.read().decode("utf-8")
    except (FileNotFoundError, OSError):
        return None


#: The driver's per-trial records: one JSON line per result it received.
RESULT_FILE = "result.json"


def parse_results(text: str) -> Iterator[dict[str, Any]]:
    """The rows of a ``result.json`` text, oldest first, skipping the line the driver was writing
    when it was killed."""
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            yield row


def result_rows(uri: str) -> Iterator[dict[str, Any]]:
    """Every row of every trial's ``result.json`` under the experiment URI."""
    fs, path = storage.filesystem(uri)
    for trial in entries(fs, path):
        yield from parse_results(read_text(fs, f"{trial}/{RESULT_FILE}") or "")


def download(fs: Any, path: str, target: Path) -> Path:
    """Copy a folder from ``fs`` to the local ``target`` (replaced)."""
    import shutil

    import pyarrow.fs as pafs

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(path, str(target), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    return target
