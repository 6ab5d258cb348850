"""A fast, exact scanner for text files of plain decimal numbers (hkl tables).

``scan_decimals`` reads whitespace-separated tokens such as ``-12``, ``31.39``
or ``4.5e-3`` and returns exactly the doubles Python's ``float`` gives, or
``None`` as soon as one token lies outside what it handles, so callers fall
back to their general (and slower) reader.  Exactness comes from Clinger's
fast path: a decimal whose digits form an integer m < 2**53 and whose
power of ten 10**e has |e| ≤ 22 is m·10**e or m/10**-e, one correctly
rounded IEEE operation on two exact doubles, hence the correctly rounded
value that ``float`` returns.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_POW10 = np.array([10.0**k for k in range(23)])
_MAX_MANTISSA = 2**53


@njit(cache=True, error_model="numpy")
def _scan(buf, pow10, values, integer):
    """Tokens of ``buf`` (uint8) into ``values``; ``integer`` marks tokens without '.'/'e'.

    Returns the token count, or -1 when a token is not a plain decimal in
    Clinger's exact range (the caller then falls back).
    """
    size = buf.size
    n = 0
    i = 0
    while True:
        while i < size and (buf[i] == 32 or (9 <= buf[i] <= 13)):
            i += 1
        if i >= size:
            return n
        negative = False
        if buf[i] == 43 or buf[i] == 45:  # + -
            negative = buf[i] == 45
            i += 1
        mantissa = 0
        digits = 0
        fraction = 0
        dot = False
        while i < size:
            c = buf[i]
            if 48 <= c <= 57:
                if mantissa >= (_MAX_MANTISSA - 9) // 10:
                    return -1
                mantissa = mantissa * 10 + (c - 48)
                digits += 1
                if dot:
                    fraction += 1
            elif c == 46 and not dot:  # .
                dot = True
            else:
                break
            i += 1
        if digits == 0:
            return -1
        exponent = 0
        has_exponent = False
        if i < size and (buf[i] == 101 or buf[i] == 69):  # e E
            has_exponent = True
            i += 1
            exp_negative = False
            if i < size and (buf[i] == 43 or buf[i] == 45):
                exp_negative = buf[i] == 45
                i += 1
            exp_digits = 0
            while i < size and 48 <= buf[i] <= 57:
                if exponent < 10000:
                    exponent = exponent * 10 + (buf[i] - 48)
                exp_digits += 1
                i += 1
            if exp_digits == 0:
                return -1
            if exp_negative:
                exponent = -exponent
        if i < size and not (buf[i] == 32 or (9 <= buf[i] <= 13)):
            return -1
        power = exponent - fraction
        if power < -22 or power > 22:
            return -1
        value = float(mantissa)
        if power < 0:
            value = value / pow10[-power]
        else:
            value = value * pow10[power]
        values[n] = -value if negative else value
        integer[n] = not dot and not has_exponent
        n += 1


def scan_decimals(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """Every whitespace-separated token of ``data`` as ``float`` reads it, plus a mask of
    the tokens written as plain integers (digits with an optional sign); ``None`` when a
    token is anything else (then read the file the general way)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    capacity = buf.size // 2 + 1
    values = np.empty(capacity, dtype=np.float64)
    integer = np.empty(capacity, dtype=np.bool_)
    n = _scan(buf, _POW10, values, integer)
    if n < 0:
        return None
    return values[:n], integer[:n]
