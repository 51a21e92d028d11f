"""KIS error taxonomy: which failures are retried, which mean "new token", which are final.

Gateway codes come from docs/kis.md §5.2. A :class:`KisError` carries what the server said and
the request that failed (method, path, query), never a header or a body: those hold secrets.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import AppError
from app.kis.redact import redact

#: Transient gateway errors: retried with back-off (EGW00201 = per-second limit).
RETRYABLE_CODES = frozenset({"EGW00201", "EGW00215", "EGW00001", "EGW00002", "EGW00202", "EGW00203", "EGW00300"})
#: The access token is invalid or expired: drop it, get another, retry.
TOKEN_CODES = frozenset({"EGW00121", "EGW00122", "EGW00123"})
#: tokenP refused because a token was issued less than a minute ago.
TOKEN_THROTTLED = "EGW00133"

_HINTS = {
    "EGW00102": "check KIS_APP_KEY", "EGW00103": "check KIS_APP_KEY",
    "EGW00104": "check KIS_APP_SECRET", "EGW00105": "check KIS_APP_SECRET",
    "EGW00205": "the access token was rejected; delete the cached token and retry",
    "EGW00206": "this app key has no permission for the API; enable it on the KIS portal",
    "EGW00207": "register this machine's IP address on the KIS portal",
    "EGW00208": "custtype must be P (individual) or B (corporate)",
    "EGW00213": "this TR is not available on the paper host; use env=real",
    "OPSQ0002": "unknown tr_id for this path; check app/kis/endpoints.py",
    "OPSQ2001": "FID_COND_MRKT_DIV_CODE must be J, NX or UN",
    "OPSQ2002": "a request field is missing or too long; check the symbol and dates",
}


@dataclass(frozen=True)
class KisRequest:
    """What was asked, safe to show: no headers, no body."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.method} {self.path}{'?' + query if query else ''}"


class KisError(AppError):
    """A KIS call that failed for good (final error or retries exhausted)."""

    def __init__(
        self,
        message: str,
        *,
        request: KisRequest,
        tr_id: str = "",
        status: int | None = None,
        msg_cd: str = "",
        msg1: str = "",
        attempts: int = 1,
        hint: str | None = None,
        transient: bool = False,
    ) -> None:
        self.request, self.tr_id, self.status = request, tr_id, status
        self.transient = transient  # retries ran out on a fault that may pass: a later run may succeed
        self.msg_cd, self.msg1, self.attempts = msg_cd, msg1.strip(), attempts
        parts = [f"KIS {tr_id or request.path}: {message}"]
        if status is not None:
            parts.append(f"HTTP {status}")
        if msg_cd:
            parts.append(f"{msg_cd} {self.msg1}".strip())
        parts.append(f"after {attempts} attempt{'s' if attempts != 1 else ''}; request {request}")
        super().__init__(redact(", ".join(parts)), hint or _HINTS.get(msg_cd))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.one_line()!r})"

    def __reduce__(self):  # picklable across Ray workers
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type, state: dict) -> "KisError":
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err.one_line())
    return err


class KisAuthError(KisError):
    """Token issuance failed or credentials were refused."""
