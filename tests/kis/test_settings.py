"""env picks host and default limit; base_url overrides; bad values are one clear line."""
from __future__ import annotations

import pytest

from app.errors import ConfigError
from app.kis.retry import RetryPolicy
from app.kis.settings import KisSettings


def test_env_defaults_and_override():
    real, paper = KisSettings(env="real"), KisSettings(env="paper")
    assert (real.url, real.limit) == ("https://openapi.koreainvestment.com:9443", 18.0)
    assert (paper.url, paper.limit) == ("https://openapivts.koreainvestment.com:29443", 1.0)
    sim = KisSettings(env="paper", base_url="http://127.0.0.1:8080/", rate_limit=0)
    assert (sim.url, sim.limit) == ("http://127.0.0.1:8080", 0.0)


@pytest.mark.parametrize("kw, text", [
    (dict(env="live"), "env='live'"), (dict(rate_limit=-1), "rate_limit < 0"),
    (dict(market="Q"), "market='Q'"), (dict(rate_margin=0.7), "rate_margin"),
])
def test_bad_settings(kw, text):
    with pytest.raises(ConfigError, match="bad kis settings") as info:
        KisSettings(**kw)
    assert text in str(info.value) and "\n" not in str(info.value)


def test_retry_policy_full_jitter_is_bounded():
    policy = RetryPolicy(attempts=4, base_s=0.1, cap_s=0.3)
    delays = [policy.delay(n) for n in (1, 2, 3, 4) for _ in range(200)]
    assert min(delays) >= 0 and max(delays) <= 0.3
    assert max(policy.delay(1) for _ in range(200)) <= 0.1
    with pytest.raises(ConfigError):
        RetryPolicy(attempts=0)


def test_websocket_host_follows_env_base_url_or_its_own_setting():
    assert KisSettings(env="real").websocket_url == "ws://ops.koreainvestment.com:21000"
    assert KisSettings(env="paper").websocket_url == "ws://ops.koreainvestment.com:31000"
    assert KisSettings(base_url="http://127.0.0.1:8080/").websocket_url == "ws://127.0.0.1:8080"
    assert KisSettings(base_url="http://127.0.0.1:8080", ws_url="ws://10.0.0.5:21000/").websocket_url == \
        "ws://10.0.0.5:21000"


def test_a_websocket_url_that_is_not_one_fails_at_config_time():
    from tests.conftest import compose_config

    with pytest.raises(ConfigError, match="kis.ws_url='http://x:1' is not a websocket URL") as info:
        compose_config("kis.ws_url=http://x:1")
    assert "\n" not in str(info.value)
    assert compose_config("kis.ws_url=ws://x:1").kis.ws_url == "ws://x:1"
