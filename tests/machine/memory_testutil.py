"""A child process that holds 80 MB for two seconds: what process-tree memory must count."""
from __future__ import annotations

import subprocess
import sys
import time

HOLD = "import time; x = bytearray(80 * 1024**2); x[::4096] = b'1' * len(x[::4096]); time.sleep(3)"


def hold_80mb_child(seconds: float = 2.0) -> None:
    """Run the holding child for ``seconds``, then kill it (by PID, even on failure)."""
    child = subprocess.Popen([sys.executable, "-c", HOLD])
    try:
        time.sleep(seconds)
    finally:
        child.kill()
        child.wait(timeout=10)
