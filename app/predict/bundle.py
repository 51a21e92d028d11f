"""The model bundle: ``model/`` in a training or tuning run folder, everything scoring needs.

``model/model.pt`` holds the weights (a state dict, loadable with ``weights_only=True``) and
``model/bundle.json`` everything else: the model's ``_target_`` and arguments, the complete
features config and the model's feature columns, the fitted scaler, ``seq_len``, the warm-up
that makes trailing-bar features equal full-history ones, the label and target, the bar
frequency, the training period and symbols, the data the run was trained on (the defaults of
``stage=predict``), the package version, the config digest and the weights' SHA-256. Nothing
else is read, so a bundle copied to another machine scores bars there.

:func:`write_bundle` is the one writer (the train stage and the tune stage's best trial both
call it); :func:`read_bundle` refuses an older or damaged bundle in one line.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from app.errors import DataError
from app.run_folder import DATA_MANIFEST, MODEL_BUNDLE, RunFolder

BUNDLE_DIR = MODEL_BUNDLE
BUNDLE_FILE = "bundle.json"
WEIGHTS_FILE = "model.pt"
FORMAT = 1
REQUIRED = ("model", "features", "model_columns", "scaler", "seq_len", "warmup_bars", "label", "target", "freq",
            "train_period", "symbols", "data", "run", "package_version", "config_digest", "weights_sha256")  # fmt: skip


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_version() -> str:
    try:
        return metadata.version("krx-ray-pipeline")
    except metadata.PackageNotFoundError:  # a checkout used without installing it
        return "unknown"


def config_digest(plain_cfg: dict[str, Any]) -> str:
    """SHA-256 of the resolved run config (sorted JSON): which config produced the model."""
    text = json.dumps(plain_cfg, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def bundle_dir(path: str | Path) -> Path:
    """``path`` itself when it holds a bundle, else ``path/model`` (a run folder)."""
    path = Path(path).expanduser()
    return path if (path / BUNDLE_FILE).exists() else path / BUNDLE_DIR


def has_bundle(path: str | Path) -> bool:
    return (bundle_dir(path) / BUNDLE_FILE).is_file()


def _atomic_dir(target: Path, fill) -> None:
    """Build the folder beside ``target`` and swap it in, so a crash never leaves half a bundle."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-model-", dir=target.parent))
    try:
        fill(tmp)
        old = target.with_name(f".old-{tmp.name}")
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class BundleSource:
    """What the run was trained on, gathered by the stage that writes the bundle."""

    run: str  # "<experiment>/<run folder>", the signals' model_run
    data: dict[str, Any]  # the run's data node (no secrets live there)
    store_root: str
    source: str | None  # what collection recorded (sim, kis, file:<name>)
    config_digest: str


def bundle_document(checkpoint: Path, data: Any, src: BundleSource) -> dict[str, Any]:
    """The bundle.json content of a best checkpoint and its windows (:class:`app.features.windows.WindowData`)."""
    from app.features.feature_compute import warmup_bars
    from app.features.feature_config import FeaturesConfig
    from app.typed import typed
    from app.features.features import read_manifest
    from app.features.warmup import DEFAULT_RTOL
    from app.models.factory import read_meta

    meta, info = read_meta(checkpoint), read_manifest(data.features_path)
    features = asdict(typed(FeaturesConfig, {**info.features, "path": None}))  # the path is this machine's
    return {
        "format": FORMAT, "run": src.run, "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "package_version": package_version(), "config_digest": src.config_digest,
        "model": {**meta["model_cfg"], "n_features": int(meta["n_features"])}, "best_epoch": meta.get("epoch"),
        "features": features, "feature_columns": list(info.feature_columns), "model_columns": list(data.feature_names),
        "scaler": data.scaler.to_dict(), "seq_len": int(data.seq_len),
        "warmup_bars": warmup_bars(typed(FeaturesConfig, features), DEFAULT_RTOL, defined=info.warmup_bars),
        "warmup_rtol": DEFAULT_RTOL,
        "label": dict(info.label), "target": data.target, "freq": info.freq,
        "train_period": {k: v for k, v in data.split.train.to_dict().items() if k in ("start", "end")},
        "split": data.split.to_dict(), "symbols": sorted(info.symbols),
        "data": src.data, "store_root": src.store_root, "source": src.source,
    }  # fmt: skip


def write_bundle(run_dir: str | Path, checkpoint: str | Path, data: Any, src: BundleSource) -> Path:
    """Write ``run_dir/model/`` from the best checkpoint folder and the run's windows; returns the folder."""
    checkpoint, target = Path(checkpoint), Path(run_dir) / BUNDLE_DIR
    doc = bundle_document(checkpoint, data, src)

    def fill(tmp: Path) -> None:
        shutil.copyfile(checkpoint / WEIGHTS_FILE, tmp / WEIGHTS_FILE)
        doc["weights_sha256"] = _sha256(tmp / WEIGHTS_FILE)
        (tmp / BUNDLE_FILE).write_text(json.dumps(doc, indent=1))

    _atomic_dir(target, fill)
    return target


def _damaged(where: Path, what: str) -> DataError:
    return DataError(f"the model bundle at {where} is damaged ({what})",
                     "copy the whole model/ folder again, or re-train the run")  # fmt: skip


def read_bundle(path: str | Path) -> tuple[dict[str, Any], Path]:
    """The checked bundle.json of a bundle or run folder, and the weights file it vouches for."""
    where = bundle_dir(path)
    file = where / BUNDLE_FILE
    if not file.is_file():
        raise DataError(f"{Path(path).expanduser()} has no model bundle ({BUNDLE_DIR}/{BUNDLE_FILE})",
                        "pass run_dir= of a training or tuning run made by this version, or re-train it")  # fmt: skip
    try:
        doc = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _damaged(where, f"{BUNDLE_FILE} is not JSON: {type(exc).__name__}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise DataError(f"the model bundle at {where} has format {found}; this version reads format {FORMAT}",
                        "re-train the run with this version (stage=train or a sweep) for a new bundle")  # fmt: skip
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise _damaged(where, f"{BUNDLE_FILE} lacks {', '.join(missing)}")
    weights = where / WEIGHTS_FILE
    if not weights.is_file() or _sha256(weights) != doc["weights_sha256"]:
        raise _damaged(where, f"{WEIGHTS_FILE} is missing or does not match its checksum")
    return doc, weights


def save_run_bundle(cfg: Any, run_dir: str | Path, checkpoint: str | Path, data: Any) -> Path:
    """The bundle of a finished run: what train and tune call once their best checkpoint is final."""
    run_dir = Path(run_dir)
    plain = asdict(cfg)
    source = (RunFolder(run_dir).read_json(DATA_MANIFEST) or {}).get("source")
    store_root = str(Path(str(plain["store"]["root"])).expanduser().resolve())
    src = BundleSource(f"{run_dir.parent.name}/{run_dir.name}", plain["data"], store_root, source,
                       config_digest(plain))  # fmt: skip
    return write_bundle(run_dir, checkpoint, data, src)
