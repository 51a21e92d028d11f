"""Running figures of a collection: the live progress line, the summary and the data manifest."""
from __future__ import annotations

import time
from dataclasses import asdict

from app.collect.collect_symbol import CollectSpec
from app.collect.store import BarStore


class CollectTally:
    def __init__(self, total: int, limit: float) -> None:
        self.total, self.limit = total, limit
        self.started = time.perf_counter()
        self.outcomes: dict[str, dict] = {}
        self.api: dict[str, int] = {}
        self.span = (float("inf"), float("-inf"))  # first batch start, last batch end (epoch seconds)

    def add(self, batch: dict) -> None:
        """Fold one actor batch (columns of SymbolOutcome fields plus ``api_*`` counters) in."""
        symbols = list(batch["symbol"])
        skip = ("api_", "span_")
        for i, symbol in enumerate(symbols):
            self.outcomes[str(symbol)] = {k: _py(batch[k][i]) for k in batch if not k.startswith(skip)}
        if "span_start" in batch and len(symbols):
            self.span = (min(self.span[0], float(min(batch["span_start"]))),
                         max(self.span[1], float(max(batch["span_end"]))))
        for k in batch:
            if k.startswith("api_"):
                self.api[k[4:]] = self.api.get(k[4:], 0) + int(sum(_py(v) for v in batch[k]))

    def elapsed(self) -> float:
        return max(time.perf_counter() - self.started, 1e-9)

    def totals(self) -> dict:
        rows = self.outcomes.values()
        secs = self.elapsed()
        fetched = sum(int(r["fetched"]) for r in rows)
        requests = self.api.get("requests", 0)
        active = self.span[1] - self.span[0] if self.span[1] > self.span[0] else secs
        return {
            "symbols": self.total,
            "symbols_done": len(self.outcomes),
            "symbols_ok": sum(r["status"] != "failed" for r in rows),
            "symbols_unchanged": sum(r["status"] == "unchanged" for r in rows),
            "bars_fetched": fetched,
            "rows_added": sum(int(r["rows_added"]) for r in rows),
            "requests": requests,
            "retries": self.api.get("retries", 0),
            "rate_limited": self.api.get("rate_limited", 0),
            "seconds": round(secs, 3),
            "bars_per_s": round(fetched / secs, 1),
            "requests_per_s": round(requests / secs, 2),
            "active_seconds": round(active, 3),  # from the first actor batch: Ray start-up excluded
            "requests_per_s_active": round(requests / active, 2),
            "rate_limit": self.limit,
        }

    def line(self) -> str:
        t = self.totals()
        failed = t["symbols_done"] - t["symbols_ok"]
        limit = f" of {t['rate_limit']:g}" if t["rate_limit"] else ""
        return (f"collect {t['symbols_done']}/{t['symbols']} symbols | {t['bars_per_s']:,.0f} bars/s | "
                f"{t['requests_per_s']:.1f} req/s{limit} | {t['retries']} retries | {failed} failed")

    @staticmethod
    def summary(t: dict) -> str:
        return (f"{t['symbols_ok']}/{t['symbols']} symbols ok ({t.get('symbols_unchanged', 0)} already complete), "
                f"{t['rows_added']:,} new bars, {t['bars_fetched']:,} fetched in {t['seconds']:.1f} s "
                f"({t['bars_per_s']:,.0f} bars/s, {t.get('requests_per_s', 0):.1f} req/s, "
                f"{t.get('retries', 0)} retries)")

    def manifest(self, spec: CollectSpec, store: BarStore, api) -> dict:
        entries = store.manifest(spec.freq)
        out = {
            "source": spec.source, "data_source": api.description, "freq": spec.freq, "start": spec.start, "end": spec.end,
            "adjusted": spec.adjusted, "store_root": spec.store_root,
            "symbols": {s: {**o, **({"stored": asdict(entries[s])} if s in entries else {})}
                        for s, o in sorted(self.outcomes.items())},
            "failed": {s: o["error"] for s, o in sorted(self.outcomes.items()) if o["status"] == "failed"},
            "transient_failures": [s for s, o in sorted(self.outcomes.items())
                                   if o["status"] == "failed" and o.get("transient")],
            "totals": self.totals(),
        }
        if api.handle is not None:
            out["server_stats"] = api.handle.stats()
        return out


def _py(value):
    return value.item() if hasattr(value, "item") else value
