"""The three OAuth calls (docs/kis.md §2): tokenP, revokeP, Approval.

Their error shape differs from the quotation APIs (HTTP 403 with ``error_code`` /
``error_description``); tokenP is tried once per call, since the token manager decides when an
issuance may be attempted at all (at most one a minute per app key).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from app.kis import endpoints as ep
from app.kis.credentials import Credentials
from app.kis.errors import TOKEN_THROTTLED, KisAuthError, KisRequest
from app.kis.redact import register_secret
from app.kis.retry import Retryable, TokenRejected
from app.kis.tokens import Token, TokenThrottled
from app.kis.transport import Transport, raise_failure

_JSON = {"content-type": "application/json; charset=utf-8"}


class OAuth:
    def __init__(self, transport: Transport, credentials: Credentials, env: str) -> None:
        self._transport, self._creds, self._env = transport, credentials, env

    async def issue_token(self) -> Token:
        """One POST /oauth2/tokenP."""
        body = {"grant_type": "client_credentials", "appkey": self._creds.app_key,
                "appsecret": self._creds.app_secret}
        issued_at = time.time()
        status, data = await self._transport.once(
            "POST", ep.TOKEN_PATH, headers={"content-type": "application/json"}, body=body)
        if status == 200 and data.get("access_token"):
            return Token.from_response(data, issued_at)
        code = str(data.get("error_code") or data.get("msg_cd") or "")
        text = str(data.get("error_description") or data.get("msg1") or "")
        if code == TOKEN_THROTTLED:
            raise TokenThrottled("token issuance throttled", status=status, msg_cd=code, msg1=text)
        if status >= 500 and not code.startswith("EGW001"):
            raise Retryable(f"token issuance failed (HTTP {status})", status=status, msg_cd=code, msg1=text)
        raise KisAuthError("access token refused", request=KisRequest("POST", ep.TOKEN_PATH),
                           status=status, msg_cd=code, msg1=text,
                           hint=f"check KIS_APP_KEY and KIS_APP_SECRET for env={self._env}")

    async def revoke(self, access_token: str) -> bool:
        """POST /oauth2/revokeP; False when the server no longer knows the token."""
        body = {"appkey": self._creds.app_key, "appsecret": self._creds.app_secret, "token": access_token}
        return bool(await self._post(ep.REVOKE_PATH, body, ok=lambda d: str(d.get("code")) == "200"))

    async def approval_key(self) -> str:
        """POST /oauth2/Approval (note ``secretkey``): a websocket approval key."""
        body = {"grant_type": "client_credentials", "appkey": self._creds.app_key,
                "secretkey": self._creds.app_secret}
        key = str((await self._post(ep.APPROVAL_PATH, body, ok=lambda d: bool(d.get("approval_key"))))["approval_key"])
        register_secret(key)
        return key

    async def _post(self, path: str, body: dict, ok: Callable[[dict], bool]) -> dict:
        """A POST with the retry policy; {} when the server refuses the token it is about."""
        request, policy = KisRequest("POST", path), self._transport.retry
        for attempt in range(1, policy.attempts + 1):
            try:
                status, data = await self._transport.once("POST", path, headers=_JSON, body=body)
                if status == 200 and ok(data):
                    return data
                raise_failure(status, data, request, "", attempt)
            except TokenRejected:
                return {}
            except Retryable as exc:
                last = exc
                if attempt < policy.attempts:
                    await asyncio.sleep(policy.delay(attempt))
        raise KisAuthError(f"gave up: {last.reason}", request=request, status=last.status,
                           msg_cd=last.msg_cd, msg1=last.msg1, attempts=policy.attempts)
