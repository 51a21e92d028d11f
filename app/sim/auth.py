"""OAuth state of the simulated gateway: access tokens, their reuse/throttle rules, approval keys.

Rules (docs/kis.md §2): one token answer per app key per ``token_interval_s`` (else 403
EGW00133); asking again within ``token_reuse_s`` of an issuance returns the same token while it
is valid; a token lives ``token_lifetime_s``, or ``token_expire_after`` authorised requests when
that fault is set. Token strings look like JWTs (header.payload.signature, base64url).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from app.contracts import KST
from app.sim.config import SimConfig


@dataclass
class Token:
    value: str
    app_key: str
    issued: float
    expires: float
    uses: int = 0
    revoked: bool = False


@dataclass
class KeyState:
    last_answer: float = -1e18  # monotonic time of the last tokenP success for this key
    current: Token | None = None
    last_approval: float = -1e18


class AuthError(Exception):
    """A refused credential check; ``code`` is the KIS message code."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


MESSAGES = {
    "EGW00102": "AppKey는 필수입니다.",
    "EGW00103": "유효하지 않은 AppKey입니다.",
    "EGW00104": "AppSecret는 필수입니다.",
    "EGW00105": "유효하지 않은 AppSecret입니다.",
    "EGW00121": "유효하지 않은 token 입니다.",
    "EGW00123": "기간이 만료된 token 입니다.",
    "EGW00133": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
    "EGW00205": "credentials_type이 유효하지 않습니다.(Bearer)",
    "EGW00208": "고객유형(custtype)이 유효하지 않습니다.",
    "EGW00201": "초당 거래건수를 초과하였습니다.",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class AuthState:
    cfg: SimConfig
    keys: dict[str, KeyState] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    approvals: dict[str, str] = field(default_factory=dict)  # approval_key -> app key
    issuances: int = 0
    clock: Callable[[], float] = time.monotonic

    def check_keys(self, app_key: str | None, app_secret: str | None) -> None:
        if not app_key:
            raise AuthError("EGW00102")
        if not app_secret:
            raise AuthError("EGW00104")
        known = self.cfg.app_keys
        if known and app_key not in known:
            raise AuthError("EGW00103")
        if known and known[app_key] != app_secret:
            raise AuthError("EGW00105")

    def issue(self, app_key: str, app_secret: str) -> tuple[Token, bool]:
        """The token to answer with, and whether it is new."""
        self.check_keys(app_key, app_secret)
        now = self.clock()
        st = self.keys.setdefault(app_key, KeyState())
        if now - st.last_answer < self.cfg.token_interval_s:
            raise AuthError("EGW00133")
        st.last_answer = now
        cur = st.current
        if cur and self._valid(cur, now) and now - cur.issued < self.cfg.token_reuse_s:
            return cur, False
        tok = Token(self._mint(app_key, now), app_key, now, now + self.cfg.token_lifetime_s)
        st.current = tok
        self.tokens[tok.value] = tok
        self.issuances += 1
        return tok, True

    def _valid(self, tok: Token, now: float) -> bool:
        limit = self.cfg.faults.token_expire_after
        return not tok.revoked and now < tok.expires and (limit is None or tok.uses < limit)

    def _mint(self, app_key: str, now: float) -> str:
        wall = int(time.time())
        header = _b64(json.dumps({"typ": "JWT", "alg": "HS512"}, separators=(",", ":")).encode())
        payload = _b64(json.dumps({
            "sub": "token", "aud": str(uuid.uuid4()), "prdt_cd": "", "iss": "unogw",
            "exp": wall + int(self.cfg.token_lifetime_s), "iat": wall,
            "jti": hashlib.sha256(app_key.encode()).hexdigest()[:36],
        }, separators=(",", ":")).encode())
        sig = _b64(secrets.token_bytes(64))
        return f"{header}.{payload}.{sig}"

    def expiry_text(self, tok: Token) -> str:
        """access_token_token_expired: wall-clock expiry in KST, 'YYYY-MM-DD HH:MM:SS'."""
        wall = time.time() + (tok.expires - self.clock())
        return dt.datetime.fromtimestamp(wall, KST).strftime("%Y-%m-%d %H:%M:%S")

    def authorise(self, authorization: str | None, app_key: str) -> Token:
        """Check a request's Bearer token; counts the use (for token_expire_after)."""
        if not authorization or not authorization.startswith("Bearer ") or len(authorization) <= 7:
            raise AuthError("EGW00205")
        tok = self.tokens.get(authorization[7:].strip())
        if tok is None or tok.revoked or tok.app_key != app_key:
            raise AuthError("EGW00121")
        if not self._valid(tok, self.clock()):
            raise AuthError("EGW00123")
        tok.uses += 1
        return tok

    def revoke(self, app_key: str, app_secret: str, token: str) -> None:
        self.check_keys(app_key, app_secret)
        tok = self.tokens.get(token)
        if tok is None or tok.app_key != app_key:
            raise AuthError("EGW00121")
        tok.revoked = True

    def approval(self, app_key: str, secret_key: str) -> str:
        self.check_keys(app_key, secret_key)
        now = self.clock()
        st = self.keys.setdefault(app_key, KeyState())
        if now - st.last_approval < self.cfg.approval_interval_s:
            raise AuthError("EGW00201")
        st.last_approval = now
        key = str(uuid.uuid4())
        self.approvals[key] = app_key
        return key
