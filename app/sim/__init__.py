"""A KIS-compatible exchange on localhost with a deterministic synthetic Korean market.

See docs/simulator.md. The client reaches it over HTTP exactly as it reaches the real KIS API.
"""
from app.sim.config import FaultConfig, MarketConfig, SimConfig

__all__ = ["FaultConfig", "MarketConfig", "SimConfig"]
