"""Search space, sweep settings, best-config overrides and the sweep's sizing: no Ray needed."""
from __future__ import annotations

import math

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from app.errors import ConfigError
from app.train.config import TrainConfig
from app.typed import typed
from app.tune.config import TuneConfig
from app.tune.overrides import best_overrides, hydra_value
from app.tune.space import apply_params, parse_space
from app.tune.sweep import size_trials, trial_mode
from app.tune.ranking import running_best
from tests.conftest import ROOT

MODELS = ("lstm", "gru", "alstm", "transformer", "tcn")
LSTM = {"_target_": "app.models.lstm.LSTMModel", "n_features": None, "hidden_size": 64, "num_layers": 2,
        "dropout": 0.0, "pooling": "last"}  # fmt: skip


def model_node(name: str) -> dict:
    return yaml.safe_load((ROOT / "conf" / "model" / f"{name}.yaml").read_text())


def tune_file(name: str) -> dict:
    node = yaml.safe_load((ROOT / "conf" / "tune" / f"{name}.yaml").read_text())
    node.pop("defaults", None)
    return node


@pytest.mark.parametrize("model", MODELS)
def test_every_model_has_a_default_space_that_fits_it(model):
    base = tune_file("base") | {"seed": 0}
    cfg = typed(TuneConfig, base | tune_file(model), "tune")
    space = parse_space(cfg.search_space, model_node(model))
    assert {p.group for p in space} == {"train", "model", "windows"}
    width = space.by_path(next(p.path for p in space if p.name == "hidden"))
    assert width.key in model_node(model)  # "hidden" maps onto this model's own width key
    assert space.seq_lens(20) == [10, 20, 40]


def test_paths_resolve_from_explicit_path_alias_or_the_one_owning_group():
    raw = {
        "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},  # only train has lr
        "hidden": {"type": "choice", "values": [16, 32]},  # alias of the model's width
        "dropout": {"type": "uniform", "low": 0.0, "high": 0.3},  # only the model has dropout
        "seq_len": {"type": "choice", "values": [5, 10]},  # windows.seq_len
        "clip": {"path": "train.clip_grad_norm", "type": "uniform", "low": 0.5, "high": 2.0},
    }
    space = parse_space(raw, LSTM)
    assert [p.path for p in space] == ["train.lr", "model.hidden_size", "model.dropout", "windows.seq_len",
                                       "train.clip_grad_norm"]  # fmt: skip
    out = apply_params({"train": {"lr": 1.0}, "model": LSTM, "windows": {"seq_len": 20}}, space,
                       {"lr": 0.003, "hidden": 16.0, "seq_len": 10.0, "dropout": 0.1, "clip": 1.5})  # fmt: skip
    assert out["train"]["lr"] == 0.003 and out["model"]["hidden_size"] == 16 and out["windows"]["seq_len"] == 10
    assert isinstance(out["windows"]["seq_len"], int) and out["model"]["num_layers"] == 2


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ({"seed": {"type": "int", "low": 1, "high": 5}}, "more than one"),  # train.seed and windows.seed
        ({"epochs": {"type": "int", "low": 1, "high": 5}}, "cannot vary"),
        ({"scaler": {"type": "choice", "values": ["robust", "zscore"]}}, "only windows.seq_len"),
        ({"seq_len": {"type": "int", "low": 5, "high": 40}}, "choice of positive integers"),
        ({"lr": {"type": "loguniform", "low": 0.0, "high": 1e-2}}, "low > 0"),
        ({"lr": {"type": "uniform", "low": 1e-2, "high": 1e-3}}, "low < high"),
        ({"lr": {"type": "normal", "low": 0, "high": 1}}, "type='normal' is unknown"),
        ({"lr": {"type": "uniform", "low": 0, "high": 1, "step": 2}}, "unknown keys step"),
        ({"nope": {"type": "choice", "values": [1]}}, "matches no config key"),
        ({"x": {"path": "data.limit", "type": "choice", "values": [1]}}, "is not under train, model, windows"),
        ({"lr": 0.001}, "not a distribution"),
    ],
)
def test_bad_entries_fail_with_one_line_naming_the_entry(entry, fragment):
    with pytest.raises(ConfigError) as err:
        parse_space(entry, LSTM)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert f"tune.search_space.{next(iter(entry))}" in str(err.value)


def test_tune_settings_are_checked():
    assert TuneConfig(metric="val_ic").metric_mode == "max"
    assert TuneConfig(metric="val_loss").metric_mode == "min"
    assert TuneConfig(num_samples=40).startup_trials == 10 and TuneConfig(num_samples=6).startup_trials == 2
    for bad in ({"metric": "train_loss"}, {"reduction_factor": 1}, {"max_t": 2, "grace_period": 3},
                {"scheduler": "pbt"}, {"name": "../x"}, {"num_sample": 3}):  # fmt: skip
        with pytest.raises(ConfigError):
            typed(TuneConfig, bad, "tune")


def test_override_values_read_back_unchanged_by_hydra():
    parser = OverridesParser.create()
    for value in (0.0012345678901234567, 1e-05, 64, True, "last", "a b", [10, 20], None):
        (parsed,) = parser.parse_overrides([f"x={hydra_value(value)}"])
        assert parsed.value() == (list(value) if isinstance(value, list) else value)


def test_best_overrides_keep_the_run_and_set_the_best_values():
    space = parse_space({"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
                         "hidden": {"type": "choice", "values": [16, 32]}}, LSTM)  # fmt: skip
    base = ["+experiment=tune_lstm", "data.limit=8", "tune.num_samples=4", "hydra.run.dir=/tmp/x",
            "stage=[tune]", "train.lr=0.1"]  # fmt: skip
    lines = best_overrides(base, space, {"lr": 0.002, "hidden": 32}, epochs=6, metric="val_ic",
                           experiment_name="tune_lstm")  # fmt: skip
    assert lines == ["+experiment=tune_lstm", "data.limit=8", "stage=[collect,features,train,evaluate,report]",
                     "experiment_name=tune_lstm_best", "train.epochs=6", "train.monitor=val_ic", "train.lr=0.002",
                     "model.hidden_size=32"]  # fmt: skip


def test_trials_are_sized_so_their_workers_fit_the_cpus():
    one = TrainConfig(num_workers=1)
    two = TrainConfig(num_workers=2)
    assert trial_mode(TuneConfig(), one) == "direct" and trial_mode(TuneConfig(), two) == "trainer"
    direct = size_trials("direct", one, TuneConfig(num_samples=8), 2)
    assert direct.resources == {"CPU": 1.0} and direct.max_concurrent == 2
    nested = size_trials("trainer", two, TuneConfig(num_samples=8, max_concurrent_trials=4), 2)
    assert nested.resources["CPU"] == 0 and nested.resources["memory"] > 0  # the trial's own process
    assert nested.max_concurrent == 1  # 2 workers x 1 CPU each: one trial at a time on 2 CPUs
    with pytest.raises(ConfigError):
        size_trials("trainer", TrainConfig(num_workers=3), TuneConfig(), 2)
    with pytest.raises(ConfigError):
        size_trials("direct", two, TuneConfig(), 2)


def test_running_best_ignores_nan_and_ranks_no_value_last():
    assert running_best(None, float("nan"), "min") == math.inf
    assert running_best(None, None, "max") == -math.inf
    assert running_best(0.5, 0.4, "min") == 0.4 and running_best(0.5, 0.4, "max") == 0.5
    assert running_best(0.5, float("nan"), "min") == 0.5


def test_seeded_optuna_search_repeats_its_proposals_and_other_seeds_differ():
    from ray.tune.search.optuna import OptunaSearch  # noqa: F401 - checks the integration imports

    from app.tune.sweep import searcher

    space = parse_space({"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
                         "hidden": {"type": "choice", "values": [16, 32, 64]}}, LSTM)  # fmt: skip

    def proposals(seed: int) -> list[dict]:
        s = searcher(TuneConfig(seed=seed, num_samples=8))
        s.set_search_properties(None, None, space.param_space())
        return [s.suggest(f"t{i}") for i in range(4)]

    first = proposals(3)
    assert first == proposals(3)
    assert first != proposals(4)
    assert len({(round(p["lr"], 12), p["hidden"]) for p in first}) == 4


def test_a_resume_must_match_the_interrupted_sweep(tmp_path):
    import json

    from app.tune.sweep import SWEEP_FILE, prepare_experiment

    fingerprint = {"tune": {"num_samples": 4, "metric": "val_loss"}, "model": LSTM}
    exp = prepare_experiment(TuneConfig(), tmp_path, fingerprint)
    assert json.loads((exp.parent / SWEEP_FILE).read_text())["tune"]["num_samples"] == 4
    (exp / "tuner.pkl").parent.mkdir(parents=True)
    (exp / "tuner.pkl").write_bytes(b"x")  # what Tune.can_restore looks for
    with pytest.raises(ConfigError, match="already holds a sweep"):
        prepare_experiment(TuneConfig(), tmp_path, fingerprint)
    changed = {"tune": {"num_samples": 8, "metric": "val_loss"}, "model": LSTM}
    with pytest.raises(ConfigError, match="different tune.num_samples than"):
        prepare_experiment(TuneConfig(resume=True), tmp_path, changed)
    assert prepare_experiment(TuneConfig(resume=True), tmp_path, fingerprint) == exp
    with pytest.raises(ConfigError, match="holds no sweep"):
        prepare_experiment(TuneConfig(resume=True), tmp_path / "other", fingerprint)


def test_a_bad_search_space_fails_when_the_config_is_checked_not_after_collection():
    from tests.conftest import compose_config

    cfg = compose_config("+experiment=tune_lstm", "tune.num_samples=4")
    assert "tune" in list(cfg.stage)
    with pytest.raises(ConfigError, match=r"tune.search_space.lr.*low < high"):
        compose_config("+experiment=tune_lstm", "tune.search_space.lr.low=0.1", "tune.search_space.lr.high=0.01")
    compose_config("stage=features", "+tune.search_space.lr={type: uniform, low: 0.1, high: 0.01}")  # no sweep


@pytest.mark.parametrize("model", ["lstm", "transformer", "tcn"])
def test_a_tune_experiment_sweeps_the_model_on_its_training_experiments_market(model):
    from tests.conftest import compose_config

    train, sweep = compose_config(f"+experiment={model}"), compose_config(f"+experiment=tune_{model}")
    assert sweep.data == train.data
    assert sweep.model["_target_"] == train.model["_target_"] and sweep.train.epochs == train.train.epochs
    assert sweep.tune.metric == sweep.train.monitor == train.train.monitor
    space = sweep.tune.search_space  # the training experiment's hand-picked values can be proposed
    assert space["dropout"]["low"] <= train.model["dropout"] <= space["dropout"]["high"]
    assert space["weight_decay"]["low"] <= train.train.weight_decay <= space["weight_decay"]["high"]


def test_a_resume_with_nothing_to_resume_fails_before_collection(tmp_path):
    from app.stages import run_stages
    from tests.conftest import compose_config

    cfg = compose_config("+experiment=tune_lstm", "tune.resume=true", f"store.root={tmp_path / 'store'}")
    with pytest.raises(ConfigError, match="holds no sweep"):
        run_stages(cfg, tmp_path / "run")
    assert not (tmp_path / "store").exists() and not (tmp_path / "run" / "data_manifest.json").exists()


def test_resumable_asha_rebuilds_its_rungs_from_a_restored_trials_results(tmp_path):
    """Tune saves no scheduler state: the rungs come back from each restored trial's result.json."""
    import json
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from app.tune.asha import ResumableASHA

    def trial(tid: str, losses: list[float]) -> SimpleNamespace:
        folder = tmp_path / f"trial_{tid}"
        folder.mkdir()
        rows = [json.dumps({"trial_id": tid, "epoch": e, "val_loss": v}) for e, v in enumerate(losses, 1)]
        (folder / "result.json").write_text("\n".join(rows) + '\n{"trial_id": "' + tid + '", "epo')  # killed mid-line
        return SimpleNamespace(trial_id=tid, path=str(folder))

    asha = ResumableASHA(time_attr="epoch", metric="val_loss", mode="min", max_t=3, grace_period=1, reduction_factor=2)
    for t in (trial("a", [0.5, 0.4, 0.3]), trial("b", [0.9]), trial("c", [0.6, 0.55])):
        asha.on_trial_add(None, t)
    assert asha.rungs()[0] == {2: {"a": -0.4, "c": -0.55}, 1: {"a": -0.5, "b": -0.9, "c": -0.6}}
    # A trial after the restart is judged against them: worse than the rung's cutoff, it stops.
    class NewTrial:  # as Tune's Trial before it starts: no folder name yet
        trial_id = "d"

        @property
        def path(self) -> str:
            raise RuntimeError("Should not access `trial_fs_path` without setting `trial_dir_name`")

    late = NewTrial()
    asha.on_trial_add(None, late)
    assert asha.on_trial_result(None, late, {"epoch": 1, "val_loss": 0.95}) == TrialScheduler.STOP
