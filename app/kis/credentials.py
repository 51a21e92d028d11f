"""KIS credentials: read from the environment (or a file it names) or passed in, never shown.

On a Ray cluster every process that talks to KIS reads them on its own node: from ``KIS_APP_KEY`` /
``KIS_APP_SECRET`` exported before ``ray start``, or from the file ``KIS_CREDENTIALS_FILE`` names
(``KIS_APP_KEY=...`` lines, readable by the node's user only). They never travel as actor or task
arguments, which Ray keeps to restart an actor, nor in a job's ``runtime_env``, which Ray shows.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import ConfigError
from app.kis.redact import register_secret

ENV_APP_KEY = "KIS_APP_KEY"
ENV_APP_SECRET = "KIS_APP_SECRET"
ENV_ACCOUNT = "KIS_ACCOUNT"
ENV_CREDENTIALS_FILE = "KIS_CREDENTIALS_FILE"
SECRET_NAMES = (ENV_APP_KEY, ENV_APP_SECRET)


def read_credentials_file(path: str) -> dict[str, str]:
    """``NAME=value`` lines (``#`` comments, optional ``export``, optional quotes) of a credentials file."""
    try:
        text = Path(os.path.expanduser(path)).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{ENV_CREDENTIALS_FILE}={path} cannot be read ({exc.strerror or type(exc).__name__})",
                          f"create it on this node with {ENV_APP_KEY}=... and {ENV_APP_SECRET}=... lines") from None
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.removeprefix("export ").split("=", 1)
        values[name.strip()] = value.strip().strip("'\"")
    return values


def node_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The credential variables of this node: the environment's, else those of ``KIS_CREDENTIALS_FILE``."""
    env = dict(os.environ if environ is None else environ)
    if all(env.get(n) for n in SECRET_NAMES) or not env.get(ENV_CREDENTIALS_FILE):
        return env
    found = read_credentials_file(env[ENV_CREDENTIALS_FILE])
    return {**env, **{n: found[n] for n in (*SECRET_NAMES, ENV_ACCOUNT) if found.get(n)}}


def credentials_available(environ: dict[str, str] | None = None) -> bool:
    """Whether this node has KIS credentials (what ``data.source=auto`` decides on)."""
    try:
        env = node_environment(environ)
    except ConfigError:
        return True  # a named file that cannot be read: say so when the credentials are read
    return all(env.get(n) for n in SECRET_NAMES)


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
        env = node_environment(environ)
        missing = [n for n in (ENV_APP_KEY, ENV_APP_SECRET) if not env.get(n)]
        if missing:
            where = f" (nor in {env[ENV_CREDENTIALS_FILE]})" if env.get(ENV_CREDENTIALS_FILE) else ""
            raise ConfigError(
                f"KIS credentials missing: {', '.join(missing)} not set{where}",
                f"export {ENV_APP_KEY} and {ENV_APP_SECRET} (and {ENV_ACCOUNT} if needed) on every node, "
                f"or name a file of them with {ENV_CREDENTIALS_FILE}, or use the simulator (data=sim)",
            )
        return cls(env[ENV_APP_KEY], env[ENV_APP_SECRET], env.get(ENV_ACCOUNT) or None)

    def key_id(self, base_url: str) -> str:
        """A stable, non-reversible id of (server, app key) for Redis keys and file names."""
        return hashlib.sha256(f"{base_url}\n{self.app_key}".encode()).hexdigest()[:24]

    def __repr__(self) -> str:
        return f"Credentials(app_key=***{', account=***' if self.account else ''})"

    __str__ = __repr__
