"""Injected faults, drawn per quotation request from a dedicated seeded RNG (reproducible runs)."""
from __future__ import annotations

import random

from app.sim.config import FaultConfig

KINDS = ("drop", "server_error_html", "spurious_rate_limit", "malformed_json", "slow")

HTML_ERROR = {
    502: b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
    503: b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n",
}


class FaultInjector:
    def __init__(self, cfg: FaultConfig):
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.active = any(getattr(cfg, k) > 0 for k in KINDS)

    def draw(self) -> str | None:
        """The fault for this request, or None; one uniform draw per kind in a fixed order."""
        if not self.active:
            return None
        hit = None
        for kind in KINDS:
            if self.rng.random() < getattr(self.cfg, kind) and hit is None:
                hit = kind
        return hit

    def html_status(self) -> int:
        return 502 if self.rng.random() < 0.5 else 503
