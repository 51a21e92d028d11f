"""Every architecture: shapes, one optimisation run on a tiny batch, configs, causality, bad input."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from app.errors import ConfigError, DataError
from app.models.factory import build_model

CONF = Path(__file__).resolve().parents[2] / "conf" / "model"
N_FEATURES = 5


def conf(name: str, **overrides) -> dict:
    cfg = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    return cfg | overrides


VARIANTS = {
    "lstm": conf("lstm"),
    "lstm_mean": conf("lstm", pooling="mean"),
    "gru": conf("gru"),
    "alstm": conf("alstm"),
    "alstm_gru": conf("alstm", rnn_type="gru"),
    "transformer": conf("transformer"),
    "transformer_learned_causal_mean": conf("transformer", positional="learned", causal=True, pooling="mean"),
    "tcn": conf("tcn"),
}


@pytest.fixture(params=sorted(VARIANTS))
def model_cfg(request) -> dict:
    return VARIANTS[request.param]


def test_every_group_file_leaves_n_features_to_the_data():
    names = sorted(p.stem for p in CONF.glob("*.yaml"))
    assert names == ["alstm", "gru", "lstm", "tcn", "transformer"]
    for name in names:
        cfg = conf(name)
        assert cfg["n_features"] is None and cfg["_target_"].startswith(f"app.models.{name}.")


@pytest.mark.parametrize("batch,seq_len", [(1, 1), (7, 12), (3, 60)])
def test_forward_maps_each_window_to_one_value(model_cfg, batch, seq_len):
    torch.manual_seed(0)
    model = build_model(model_cfg, N_FEATURES)
    out = model(torch.randn(batch, seq_len, N_FEATURES))
    assert out.shape == (batch,)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_gradient_steps_reduce_the_loss_on_a_tiny_batch(model_cfg):
    torch.manual_seed(0)
    model = build_model(model_cfg, N_FEATURES)
    x = torch.randn(16, 10, N_FEATURES)
    y = x[:, -1, 0] - 0.5 * x[:, -1, 1]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert losses[-1] < 0.5 * losses[0]


def test_bf16_autocast_on_cpu_runs_forward_and_backward(model_cfg):
    from app.train.amp import cpu_has_bf16

    model = build_model(model_cfg, N_FEATURES)
    x = torch.randn(4, 9, N_FEATURES)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
    except RuntimeError as exc:  # oneDNN's LSTM refuses bf16 on CPUs without bf16 support
        if cpu_has_bf16() or "primitive descriptor" not in str(exc):
            raise
        pytest.skip("this CPU has no bf16 support: amp=auto trains this model in fp32 here")
    out.float().pow(2).mean().backward()
    assert out.shape == (4,)


@pytest.mark.parametrize("name", ["tcn", "transformer"])
def test_causal_encoders_do_not_look_ahead(name):
    torch.manual_seed(0)
    model = build_model(conf(name, causal=True) if name == "transformer" else conf(name), N_FEATURES).eval()
    x = torch.randn(2, 10, N_FEATURES)
    x_future = x.clone()
    x_future[:, -1] += 5.0  # change only the last step

    def states(inp: torch.Tensor) -> torch.Tensor:
        if name == "tcn":
            return model.blocks(inp.transpose(1, 2)).transpose(1, 2)
        mask = torch.triu(torch.ones(10, 10, dtype=torch.bool), diagonal=1)
        return model.encoder(model.project(inp) + model.pos[:10], mask=mask, is_causal=True)

    with torch.no_grad():
        a, b = states(x), states(x_future)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-5)
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_full_attention_transformer_sees_the_whole_window():
    torch.manual_seed(0)
    model = build_model(conf("transformer", pooling="mean", dropout=0.0), N_FEATURES).eval()
    x = torch.randn(2, 10, N_FEATURES)
    with torch.no_grad():
        h1 = model.encoder(model.project(x) + model.pos[:10])
        x[:, -1] += 5.0
        h2 = model.encoder(model.project(x) + model.pos[:10])
    assert not torch.allclose(h1[:, 0], h2[:, 0])  # step 0 attends to the changed last step


def test_tcn_receptive_field_covers_a_60_bar_window():
    assert build_model(conf("tcn"), N_FEATURES).receptive_field >= 60


def test_wrong_feature_count_is_a_data_error(model_cfg):
    model = build_model(model_cfg, N_FEATURES)
    with pytest.raises(DataError, match=rf"expects \(batch, seq_len, {N_FEATURES}\)"):
        model(torch.randn(2, 8, N_FEATURES + 1))


def test_transformer_window_longer_than_max_len_is_a_data_error():
    model = build_model(conf("transformer", max_len=8), N_FEATURES)
    with pytest.raises(DataError, match="max_len=8"):
        model(torch.randn(1, 9, N_FEATURES))


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({"hidden_size": 16}, "no _target_"),
        (conf("lstm", pooling="max"), "pooling='max' is unknown"),
        (conf("lstm", hiddensize=3), "cannot build model app.models.lstm.LSTMModel"),
        (conf("transformer", d_model=10, nhead=3), "not divisible by nhead=3"),
        (conf("alstm", rnn_type="rnn"), "rnn_type='rnn' is unknown"),
    ],
)
def test_bad_model_configs_are_config_errors(cfg, message):
    with pytest.raises(ConfigError, match=message):
        build_model(cfg, N_FEATURES)


def test_direct_construction_without_n_features_names_the_fix():
    from app.models.lstm import LSTMModel

    with pytest.raises(ConfigError, match="n_features=None"):
        LSTMModel(None)


def test_group_files_repeat_the_constructor_defaults():
    import importlib
    import inspect

    for path in CONF.glob("*.yaml"):
        cfg = conf(path.stem)
        module, cls = cfg.pop("_target_").rsplit(".", 1)
        params = inspect.signature(getattr(importlib.import_module(module), cls)).parameters
        assert set(cfg) == set(params), path.name
        assert {k: v for k, v in cfg.items() if k != "n_features"} == {
            k: p.default for k, p in params.items() if k != "n_features"
        }, path.name
