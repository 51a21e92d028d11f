"""Credentials come only from the environment or code, and never show up in text."""
from __future__ import annotations

import logging

import pytest

from app.errors import ConfigError
from app.kis.credentials import Credentials
from app.kis.errors import KisError, KisRequest
from app.kis.redact import MASK, RedactingFilter, get_logger, redact


def test_missing_env_names_the_variables():
    with pytest.raises(ConfigError, match="missing: KIS_APP_SECRET not set"):
        Credentials.from_env({"KIS_APP_KEY": "x" * 36})
    with pytest.raises(ConfigError, match="KIS_APP_KEY, KIS_APP_SECRET"):
        Credentials.from_env({})


def test_repr_and_str_redact():
    creds = Credentials.from_env({"KIS_APP_KEY": "KEY-SENTINEL-123", "KIS_APP_SECRET": "SECRET-SENTINEL-456",
                                  "KIS_ACCOUNT": "ACCT-SENTINEL-789"})
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "SENTINEL" not in text
    assert creds.account == "ACCT-SENTINEL-789"


def test_key_id_is_a_hash_not_the_key():
    creds = Credentials("KEY-SENTINEL-abc", "SECRET-SENTINEL-def")
    kid = creds.key_id("http://127.0.0.1:1")
    assert "SENTINEL" not in kid and len(kid) == 24
    assert kid != creds.key_id("http://127.0.0.1:2")
    assert kid == Credentials("KEY-SENTINEL-abc", "other-secret").key_id("http://127.0.0.1:1")


def test_redaction_of_messages_logs_and_errors(caplog):
    Credentials("APPKEY-SENTINEL-42", "APPSECRET-SENTINEL-42")
    assert redact("key=APPKEY-SENTINEL-42") == f"key={MASK}"
    log = get_logger("app.kis.test_redaction")
    with caplog.at_level(logging.DEBUG, logger="app.kis.test_redaction"):
        log.info("sending %s / %s", "APPKEY-SENTINEL-42", "APPSECRET-SENTINEL-42")
        try:
            raise RuntimeError("boom APPSECRET-SENTINEL-42")
        except RuntimeError:
            log.exception("failed")
    assert "SENTINEL" not in caplog.text
    assert MASK in caplog.text
    err = KisError("bad APPSECRET-SENTINEL-42", request=KisRequest("GET", "/x", {"a": "1"}), msg_cd="OPSQ2002")
    assert "SENTINEL" not in str(err) and "SENTINEL" not in repr(err)


def test_filter_on_a_foreign_handler():
    Credentials("APPKEY-SENTINEL-77", "APPSECRET-SENTINEL-77")
    record = logging.LogRecord("other", logging.INFO, __file__, 1, "token %s", ("APPSECRET-SENTINEL-77",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == f"token {MASK}"
