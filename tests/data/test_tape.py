"""Traced formulas replayed by the compiled tape give numpy's results, element for element: every
instruction against its numpy operation on awkward values (NaN, ±inf, zeros, negatives), and the
derived series and rolling features of the newest-bar path against the same formulas on numpy."""
from __future__ import annotations

import numpy as np
import pytest

from app.features import tape as tp
from app.features.alpha import DERIVED
from app.features.panel import Rolling, safe_div, shift

AWKWARD = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.5, -3.0, 1e-300, 1e300, 7.0])


def pairs() -> tuple[np.ndarray, np.ndarray]:
    x, y = np.meshgrid(AWKWARD, AWKWARD)
    return x.reshape(-1), y.reshape(-1)


def replay(tape: tp.Tape, inputs: dict[int, np.ndarray], out: tp.Traced, rows: int = 1) -> np.ndarray:
    width = len(next(iter(inputs.values())))
    regs = np.full((tape.n_regs, width), -12345.0)  # anything the tape failed to write shows
    consts, values = tape.constants()
    regs[consts] = values[:, None]
    for reg, values in inputs.items():
        regs[reg] = values
    tp.run(tape.program(), regs, rows)
    return regs[out.reg]


BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "max": np.maximum, "min": np.minimum, "pow": lambda a, b: a**b, "gt": lambda a, b: (a > b).astype(np.float64),
    "lt": lambda a, b: (a < b).astype(np.float64), "safe_div": safe_div, "radd": lambda a, b: 2.0 + b,
    "rsub": lambda a, b: 1 - b, "rmul": lambda a, b: 3 * a, "rdiv": lambda a, b: 1.0 / b, "square": lambda a, b: a**2,
}  # fmt: skip
UNARY = {"neg": lambda a: -a, "log": np.log, "sqrt": np.sqrt, "abs": np.abs,
         "isnan": lambda a: np.isnan(a).astype(np.float64)}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BINARY))
def test_every_binary_instruction_gives_numpys_result(name):
    x, y = pairs()
    tape = tp.Tape()
    a, b = tape.register(), tape.register()
    with np.errstate(all="ignore"):
        want = BINARY[name](x, y)
        got = replay(tape, {a.reg: x, b.reg: y}, BINARY[name](a, b))
    np.testing.assert_array_equal(got, want)  # NaN where numpy has NaN, ±0 and ±inf alike


@pytest.mark.parametrize("name", sorted(UNARY))
def test_every_unary_instruction_gives_numpys_result(name):
    tape = tp.Tape()
    a = tape.register()
    with np.errstate(all="ignore"):
        want = UNARY[name](AWKWARD)
        got = replay(tape, {a.reg: AWKWARD}, UNARY[name](a))
    np.testing.assert_array_equal(got, want)


def test_where_and_shift_follow_numpy_and_stay_within_a_symbols_block():
    rows, m = 5, 3
    x = np.arange(rows * m, dtype=np.float64)
    x[4] = np.nan
    tape = tp.Tape()
    a = tape.register()
    kept = np.where(np.isnan(shift(a, 2)), np.nan, a - shift(a, 1))
    panel = x.reshape(m, rows).T  # (rows, symbols): each symbol's block is a column
    want = np.where(np.isnan(shift(panel, 2)), np.nan, panel - shift(panel, 1)).T.reshape(-1)
    np.testing.assert_array_equal(replay(tape, {a.reg: x}, kept, rows=rows), want)


def test_tracing_refuses_what_it_cannot_replay():
    tape = tp.Tape()
    a = tape.register()
    with pytest.raises(TypeError, match="cannot trace ndarray"):
        a + np.ones(3)
    with pytest.raises(TypeError, match="float64"):
        a.astype(np.int32)
    with pytest.raises(TypeError):
        np.cumsum(a)  # not an elementwise instruction: numpy refuses, nothing is recorded wrongly
    with pytest.raises(TypeError, match="no truth value"):
        max(a, 0.0)  # a Python branch would trace one side only


def test_the_derived_series_traced_equal_numpys():
    """Every series of :data:`DERIVED` (shifts, NaN-keeping comparisons, logs, safe quotients)."""
    rng = np.random.default_rng(5)
    rows, m = 30, 4
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, (rows, m)), axis=0))
    close[:7, 1] = np.nan  # a short history
    panels = {"open": close * 1.01, "high": close * 1.02, "low": close * 0.98, "close": close,
              "volume": rng.integers(0, 5, (rows, m)).astype(np.float64)}  # fmt: skip  (zeros: 0/0, log 0)
    panels["value"] = panels["volume"] * close
    numpy_ctx = Rolling(panels, DERIVED)
    tape = tp.Tape()
    regs = {k: tape.register() for k in panels}

    class Traced(Rolling):
        def __getitem__(self, name):
            if name not in self._series:
                self._series[name] = self._derived[name](self)
            return self._series[name]

    traced_ctx = Traced({}, DERIVED)
    traced_ctx._series = dict(regs)
    inputs = {r.reg: panels[k].T.reshape(-1) for k, r in regs.items()}
    for name in DERIVED:
        with np.errstate(all="ignore"):
            got = replay(tape, inputs, traced_ctx[name], rows=rows).reshape(m, rows).T
            want = numpy_ctx[name]
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=0, equal_nan=True, err_msg=name)
