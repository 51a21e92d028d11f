"""Elementwise formulas traced once into a tape of instructions, then replayed by one compiled loop.

The newest-bar path evaluates the same ~500 elementwise steps (the derived series, then the feature
formulas over the rolling statistics) at every call on arrays of 40 values, where numpy's fixed
cost per operation, not the arithmetic, is the time. Running the formulas once on :class:`Traced`
values records each step (``+``, ``np.log``, ``safe_div``, ``shift``...) as a row of a
:class:`Tape`; :func:`run` then executes every row for every element in one compiled call.

Each instruction gives numpy's result for that element: IEEE arithmetic (a division by zero is
``±inf`` or NaN), ``np.maximum``/``np.minimum`` propagate NaN, a comparison with NaN is 0.0
(``False``), ``np.where`` takes its first branch where the condition is non-zero.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# opcodes of :func:`run`; each row of a tape's code is (op, out, a, b, c)
ADD, SUB, MUL, DIV, NEG, LOG, SQRT, ABS, MAX, MIN, POW, GT, LT, ISNAN, WHERE, SAFEDIV, SHIFT = range(17)
_BINARY = {np.add: ADD, np.subtract: SUB, np.multiply: MUL, np.true_divide: DIV, np.maximum: MAX,
           np.minimum: MIN, np.power: POW, np.greater: GT, np.less: LT}  # fmt: skip
_UNARY = {np.negative: NEG, np.log: LOG, np.sqrt: SQRT, np.absolute: ABS, np.isnan: ISNAN}


@njit(cache=True, error_model="numpy")
def _binary(op: int, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """One instruction over a register: the branch is taken once, so each loop is a plain (SIMD) loop."""
    n = len(out)
    if op == ADD:
        for i in range(n):
            out[i] = x[i] + y[i]
    elif op == SUB:
        for i in range(n):
            out[i] = x[i] - y[i]
    elif op == MUL:
        for i in range(n):
            out[i] = x[i] * y[i]
    elif op == DIV:
        for i in range(n):
            out[i] = x[i] / y[i]
    elif op == MAX:
        for i in range(n):
            out[i] = x[i] if (x[i] >= y[i] or np.isnan(x[i])) else y[i]
    elif op == MIN:
        for i in range(n):
            out[i] = x[i] if (x[i] <= y[i] or np.isnan(x[i])) else y[i]
    elif op == POW:
        for i in range(n):
            out[i] = x[i] ** y[i]
    elif op == GT:
        for i in range(n):
            out[i] = 1.0 if x[i] > y[i] else 0.0
    elif op == LT:
        for i in range(n):
            out[i] = 1.0 if x[i] < y[i] else 0.0
    else:  # SAFEDIV: NaN where the quotient is not finite
        for i in range(n):
            q = x[i] / y[i]
            out[i] = q if np.isfinite(q) else np.nan


@njit(cache=True, error_model="numpy")
def _unary(op: int, x: np.ndarray, out: np.ndarray) -> None:
    n = len(out)
    if op == NEG:
        for i in range(n):
            out[i] = -x[i]
    elif op == LOG:
        for i in range(n):
            out[i] = np.log(x[i])
    elif op == SQRT:
        for i in range(n):
            out[i] = np.sqrt(x[i])
    elif op == ABS:
        for i in range(n):
            out[i] = abs(x[i])
    else:  # ISNAN
        for i in range(n):
            out[i] = 1.0 if np.isnan(x[i]) else 0.0


@njit(cache=True, error_model="numpy")
def run(code: np.ndarray, regs: np.ndarray, rows: int) -> None:
    """Execute ``code`` on the registers ``regs`` (registers, width) in place.

    A register holds blocks of ``rows`` values, one block per symbol: ``SHIFT`` moves values down
    within a block (NaN at its top), as :func:`app.features.panel.shift` does down a column."""
    width = regs.shape[1]
    for p in range(code.shape[0]):
        op, out, a, b, c = code[p, 0], code[p, 1], code[p, 2], code[p, 3], code[p, 4]
        if op == SHIFT:  # b: the lag
            for i in range(width):
                regs[out, i] = regs[a, i - b] if i % rows >= b else np.nan
        elif op == WHERE:
            for i in range(width):
                regs[out, i] = regs[b, i] if regs[a, i] != 0.0 else regs[c, i]
        elif op in (NEG, LOG, SQRT, ABS, ISNAN):
            _unary(op, regs[a], regs[out])
        else:
            _binary(op, regs[a], regs[b], regs[out])


class Tape:
    """Instructions recorded from :class:`Traced` values; registers are numbered in order of use."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int, int, int, int]] = []
        self.consts: dict[str, int] = {}  # float.hex(value) -> register
        self.n_regs = 0

    def register(self) -> Traced:
        """A fresh register: an input the caller fills before :func:`run`."""
        self.n_regs += 1
        return Traced(self, self.n_regs - 1)

    def const(self, value: float) -> Traced:
        """The register holding ``value`` (one per distinct value; ``float.hex`` tells -0.0 and NaN apart)."""
        key = float(value).hex()
        if key not in self.consts:
            self.consts[key] = self.register().reg
        return Traced(self, self.consts[key])

    def emit(self, op: int, *args: Traced | float) -> Traced:
        regs = [self.traced(a).reg for a in args] + [0] * (3 - len(args))
        out = self.register()
        self.code.append((op, out.reg, *regs))
        return out

    def shift(self, a: Traced, lag: int) -> Traced:
        out = self.register()
        self.code.append((SHIFT, out.reg, a.reg, int(lag), 0))
        return out

    def traced(self, value: Traced | float) -> Traced:
        """``value`` as a register of this tape (a number becomes a constant)."""
        if isinstance(value, Traced):
            if value.tape is not self:
                raise ValueError("a traced value of another tape")
            return value
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return self.const(value)
        raise TypeError(f"cannot trace {type(value).__name__} into a tape: formulas may mix traced values and scalars")

    def program(self) -> np.ndarray:
        """The code as the (instructions, 5) int64 array :func:`run` reads."""
        return np.array(self.code, np.int64).reshape(-1, 5)

    def constants(self) -> tuple[np.ndarray, np.ndarray]:
        """The constant registers and their values: ``regs[r] = v[:, None]`` fills them."""
        regs = np.array(list(self.consts.values()), np.int64)
        return regs, np.array([float.fromhex(k) for k in self.consts], np.float64)


def _operator(op: int, reflected: bool = False):
    """``Traced.__add__`` and the others: one instruction, operands in order (swapped when reflected)."""
    if reflected:
        return lambda self, other: self.tape.emit(op, other, self)
    return lambda self, other: self.tape.emit(op, self, other)


class Traced:
    """A value of a formula being traced: arithmetic and numpy's ufuncs on it append to its tape."""

    __slots__ = ("tape", "reg")
    __array_priority__ = 1000

    def __init__(self, tape: Tape, reg: int) -> None:
        self.tape, self.reg = tape, reg

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs:
            return NotImplemented
        if ufunc in _UNARY and len(inputs) == 1:
            return self.tape.emit(_UNARY[ufunc], inputs[0])
        if ufunc in _BINARY and len(inputs) == 2:
            return self.tape.emit(_BINARY[ufunc], *inputs)
        return NotImplemented

    def __array_function__(self, func, types, args, kwargs):
        if func is np.where and len(args) == 3 and not kwargs:
            return self.tape.emit(WHERE, *args)
        return NotImplemented

    def __bool__(self) -> bool:
        raise TypeError("a traced value has no truth value while tracing: use np.where, np.maximum or np.minimum")

    def astype(self, dtype, copy: bool = True) -> Traced:
        """Comparisons already give 1.0/0.0: a float64 cast changes nothing."""
        if np.dtype(dtype) != np.float64:
            raise TypeError(f"a traced value is float64, not {np.dtype(dtype)}")
        return self

    def __pow__(self, o):
        return self.tape.emit(MUL, self, self) if o == 2 else self.tape.emit(POW, self, o)  # numpy squares exactly

    def __neg__(self):
        return self.tape.emit(NEG, self)

    __add__, __radd__ = _operator(ADD), _operator(ADD, reflected=True)
    __sub__, __rsub__ = _operator(SUB), _operator(SUB, reflected=True)
    __mul__, __rmul__ = _operator(MUL), _operator(MUL, reflected=True)
    __truediv__, __rtruediv__ = _operator(DIV), _operator(DIV, reflected=True)
    __gt__, __lt__ = _operator(GT), _operator(LT)


def safe_div(num: Traced | float, den: Traced | float) -> Traced:
    """Traced :func:`app.features.panel.safe_div`: NaN where the quotient is not finite."""
    tape = num.tape if isinstance(num, Traced) else den.tape  # type: ignore[union-attr]
    return tape.emit(SAFEDIV, num, den)
