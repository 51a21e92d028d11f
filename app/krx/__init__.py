"""KRX market rules shared by the simulator, the data layer and the evaluation (docs/kis.md §7).

``ticks``: the tick grid (호가가격단위) and the ±30 % daily price limits; ``calendar``: XKRX sessions
and their hours. Plain numpy/exchange_calendars, no I/O: the simulator builds its market on them and
the backtest prices its slippage with the same grid.
"""
