"""nbnumba.textscan: exactly Python's float on plain decimals, or a refusal."""

from __future__ import annotations

import numpy as np
import pytest

from nbnumba.textscan import scan_decimals


def _tokens(rng: np.random.Generator, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        kind = rng.integers(5)
        sign = rng.choice(["", "-", "+"])
        if kind == 0:
            out.append(f"{sign}{rng.integers(0, 10**6)}")
        elif kind == 1:
            out.append(f"{sign}{rng.uniform(0, 1000):.{rng.integers(0, 9)}f}")
        elif kind == 2:
            out.append(f"{sign}{rng.uniform(0, 10):.{rng.integers(1, 12)}e}")
        elif kind == 3:
            out.append(f"{sign}{rng.integers(0, 10**14)}.{rng.integers(0, 10)}")
        else:
            out.append(f"{sign}.{rng.integers(0, 10**8):08d}")
    return [t.encode() for t in out]


def test_matches_float_exactly():
    rng = np.random.default_rng(4)
    tokens = _tokens(rng, 20000)
    seps = [b" ", b"\t", b"\n", b"  \r\n", b"\v", b"\f"]
    data = b"".join(t + seps[i % len(seps)] for i, t in enumerate(tokens))
    got = scan_decimals(b"\n  " + data)
    assert got is not None
    values, integer = got
    want = np.array([float(t) for t in tokens])
    assert np.array_equal(values.view(np.int64), want.view(np.int64))  # bit for bit, -0.0 too
    assert np.array_equal(integer, [t.lstrip(b"+-").isdigit() for t in tokens])


@pytest.mark.parametrize("text", [b"1 2 x", b"1e", b"e5", b"+-3", b"1.2.3", b"-", b".", b"1,5",
                                  b"12345678901234567890", b"1e400", b"1.5e-30", b"nan",
                                  b"3 4-5"])
def test_refuses_what_it_does_not_handle(text):
    assert scan_decimals(text) is None


def test_empty_and_whitespace():
    for text in (b"", b" \n\t "):
        values, integer = scan_decimals(text)
        assert values.size == 0 and integer.size == 0


def test_hkl_file_layout():
    values, integer = scan_decimals(b"  23  15  -1   23.00\n  23  14  -1   31.39\n")
    assert values.tolist() == [23, 15, -1, 23.0, 23, 14, -1, 31.39]
    assert integer.tolist() == [True, True, True, False] * 2
