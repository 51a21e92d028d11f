"""Credentials come only from the environment or code, and never show up in text."""
from __future__ import annotations

import logging

import pytest

from app.errors import ConfigError
from app.kis.credentials import Credentials, credentials_available
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


def test_a_credentials_file_named_by_the_environment_is_read_on_the_node(tmp_path):
    path = tmp_path / "kis.env"
    path.write_text("# KIS, paper account\nexport KIS_APP_KEY=FILE-KEY-SENTINEL\nKIS_APP_SECRET='FILE-SECRET'\n")
    creds = Credentials.from_env({"KIS_CREDENTIALS_FILE": str(path)})
    assert (creds.app_key, creds.app_secret, creds.account) == ("FILE-KEY-SENTINEL", "FILE-SECRET", None)
    # variables exported on the node win over the file
    assert Credentials.from_env({"KIS_CREDENTIALS_FILE": str(path), "KIS_APP_KEY": "k", "KIS_APP_SECRET": "s"}
                                ).app_key == "k"
    assert credentials_available({"KIS_CREDENTIALS_FILE": str(path)}) and not credentials_available({})


def test_a_missing_or_incomplete_credentials_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"KIS_CREDENTIALS_FILE=.*nope cannot be read .*\(fix: create it"):
        Credentials.from_env({"KIS_CREDENTIALS_FILE": str(tmp_path / "nope")})
    (tmp_path / "half").write_text("KIS_APP_KEY=k\n")
    with pytest.raises(ConfigError, match=r"KIS_APP_SECRET not set \(nor in .*half\)"):
        Credentials.from_env({"KIS_CREDENTIALS_FILE": str(tmp_path / "half")})
