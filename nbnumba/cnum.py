"""C's arithmetic where Python's differs: IEEE division by zero gives inf or NaN.

nanoBragg.c, nonBragg.c and noisify.c divide doubles without checks; a zero
divisor gives ±inf (or NaN for 0/0), which C then carries on with.  Python
raises ``ZeroDivisionError`` instead, so the C rules that can divide by zero
use :func:`c_div`.
"""

from __future__ import annotations

import math

__all__ = ["c_div"]


def c_div(a: float, b: float) -> float:
    """``a / b`` as C computes it for doubles (IEEE 754: x/±0 is ±inf, 0/0 and NaN/0 NaN)."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
