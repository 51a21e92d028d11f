"""Import path for the training tests (Ray itself comes from the session fixture in tests/conftest.py)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The crashing test model is imported by dotted path (tests.train...) in the driver and in Ray
# workers alike; workers already have the repo root on sys.path, the driver may not.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

