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
        value, i, plain = _number(buf, i, pow10)
        if i < 0:
            return -1
        if i < size and not (buf[i] == 32 or (9 <= buf[i] <= 13)):
            return -1
        values[n] = value
        integer[n] = plain
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


@njit(cache=True, error_model="numpy")
def _number(buf, i, pow10):
    """(value, end, integer) of the plain decimal at ``buf[i:]``, end = -1 if it is not
    one in Clinger's exact range (a sign, digits, one '.', an exponent); ``integer``:
    written without '.' and exponent."""
    size = buf.size
    negative = False
    if i < size and (buf[i] == 43 or buf[i] == 45):  # + -
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
                return 0.0, -1, False
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
        return 0.0, -1, False
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
            return 0.0, -1, False
        if exp_negative:
            exponent = -exponent
    power = exponent - fraction
    if power < -22 or power > 22:
        return 0.0, -1, False
    value = float(mantissa)
    if power < 0:
        value = value / pow10[-power]
    else:
        value = value * pow10[power]
    return (-value if negative else value), i, not dot and not has_exponent


@njit(cache=True, error_model="numpy")
def _is_delim(c):
    return c == 32 or c == 9 or c == 44 or c == 59 or c == 58 or c == 33  # " \t,;:!"


@njit(cache=True, error_model="numpy")
def _scan_rows2(buf, pow10, first, second, max_line):
    """Rows ``number delims number [delim or CR, then anything]`` of ``buf`` into
    ``first``/``second``; lines of delimiters only are skipped (as C's read_text_file
    skips them). Returns the row count, or -1 at the first line that is anything else
    or longer than ``max_line`` bytes (the caller then reads the file C's way)."""
    size = buf.size
    n = 0
    i = 0
    while i < size:
        start = i
        while i < size and _is_delim(buf[i]):
            i += 1
        if i < size and buf[i] == 10:  # a blank line
            i += 1
            if i - start > max_line:
                return -1
            continue
        if i >= size:
            return -1 if i > start else n  # delimiters without a newline: C reads a row
        a, i, _ = _number(buf, i, pow10)
        if i < 0 or i >= size or not _is_delim(buf[i]):
            return -1
        while i < size and _is_delim(buf[i]):
            i += 1
        b, i, _ = _number(buf, i, pow10)
        if i < 0:
            return -1
        if i < size and not (buf[i] == 10 or buf[i] == 13 or _is_delim(buf[i])):
            return -1
        while i < size and buf[i] != 10:  # the rest of the line: C reads no more of it
            i += 1
        if i - start + 1 > max_line:
            return -1
        i += 1
        first[n] = a
        second[n] = b
        n += 1
    return n


def scan_two_columns(data: bytes, max_line: int = 10239
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """The two columns C's ``read_text_file(name, 2, ...)`` reads from ``data`` when every
    line is ``number delimiters number [anything]`` or blank (plain decimals, each as
    ``float``/``strtod`` reads it); ``None`` for anything else (then read it C's way).
    ``max_line``: C's ``fgets`` buffer; a longer line is split by C, so not taken here.
    Lean: two float64 arrays of the line count, no per-line Python objects."""
    if b"\0" in data:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    lines = data.count(b"\n") + 1
    first = np.empty(lines, dtype=np.float64)
    second = np.empty(lines, dtype=np.float64)
    n = _scan_rows2(buf, _POW10, first, second, max_line)
    if n < 0:
        return None
    return first[:n], second[:n]
