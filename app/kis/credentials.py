"""KIS credentials: read from the environment or passed in, never shown."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from app.errors import ConfigError
from app.kis.redact import register_secret

ENV_APP_KEY = "KIS_APP_KEY"
ENV_APP_SECRET = "KIS_APP_SECRET"
ENV_ACCOUNT = "KIS_ACCOUNT"


@dataclass(frozen=True)
class Credentials:
    """An app key/secret pair (and optional account); ``repr``/``str`` never show them."""

    app_key: str = field(repr=False)
    app_secret: str = field(repr=False)
    account: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.app_key or not self.app_secret:
            raise ConfigError(
                "KIS credentials are empty",
                f"set {ENV_APP_KEY} and {ENV_APP_SECRET}, or pass a non-empty Credentials",
            )
        for value in (self.app_key, self.app_secret, self.account):
            register_secret(value)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Credentials":
        env = os.environ if environ is None else environ
        missing = [n for n in (ENV_APP_KEY, ENV_APP_SECRET) if not env.get(n)]
        if missing:
            raise ConfigError(
                f"KIS credentials missing: {', '.join(missing)} not set",
                f"export {ENV_APP_KEY} and {ENV_APP_SECRET} (and {ENV_ACCOUNT} if needed), "
                "or use the simulator (data=sim)",
            )
        return cls(env[ENV_APP_KEY], env[ENV_APP_SECRET], env.get(ENV_ACCOUNT) or None)

    def key_id(self, base_url: str) -> str:
        """A stable, non-reversible id of (server, app key) for Redis keys and file names."""
        return hashlib.sha256(f"{base_url}\n{self.app_key}".encode()).hexdigest()[:24]

    def __repr__(self) -> str:
        return f"Credentials(app_key=***{', account=***' if self.account else ''})"

    __str__ = __repr__
