"""Helpers to run a golden case with nanobragg-nb and compare with nanoBragg.c's files."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nbnumba.cli.main import main

# ../shared/golden/README.md
MAX_ABS_FRACTION = 1e-5
MIN_CORRELATION = 0.999999
SUM_RATIO_TOL = 1e-6
EDGE_PIXEL_FRACTION = 1e-4


@dataclass
class RunResult:
    code: int
    stdout: str
    stderr: str
    workdir: Path


def run_nb(args: list[str], workdir: Path) -> RunResult:
    """Run nanobragg-nb in-process in ``workdir`` (compiled kernels stay warm)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(list(args) + ["-noprogress"])
    finally:
        os.chdir(cwd)
    return RunResult(code, stdout.getvalue(), stderr.getvalue(), workdir)


def read_reference(case_dir: Path, name: str) -> bytes:
    """A kept C output file, gunzipped when stored as NAME.gz."""
    path = case_dir / name
    if path.is_file():
        return path.read_bytes()
    return gzip.decompress((case_dir / (name + ".gz")).read_bytes())


def float_metrics(ours: np.ndarray, ref: np.ndarray) -> dict:
    """The README's three parity numbers for two float images."""
    a = ours.astype(np.float64).ravel()
    b = ref.astype(np.float64).ravel()
    ref_max = float(np.max(np.abs(b)))
    max_abs = float(np.max(np.abs(a - b)))
    if np.std(a) > 0 and np.std(b) > 0:
        corr = float(np.corrcoef(a, b)[0, 1])
    else:
        corr = 1.0 if np.array_equal(a, b) else 0.0
    sum_b = float(b.sum())
    sum_ratio = float(a.sum()) / sum_b if sum_b != 0 else (1.0 if a.sum() == 0 else np.inf)
    return {"max_abs_rel": max_abs / ref_max if ref_max > 0 else max_abs,
            "corr": corr, "sum_ratio": sum_ratio,
            "identical_fraction": float(np.mean(a == b))}


def assert_float_parity(ours: np.ndarray, ref: np.ndarray, label: str) -> dict:
    m = float_metrics(ours, ref)
    assert m["max_abs_rel"] <= MAX_ABS_FRACTION, (label, m)
    assert m["corr"] >= MIN_CORRELATION, (label, m)
    assert abs(m["sum_ratio"] - 1.0) <= SUM_RATIO_TOL, (label, m)
    return m


def assert_int_file_parity(ours: bytes, ref: bytes, header_bytes: int, dtype, label: str):
    """Identical headers; pixels identical except ±1 on at most 0.01% of them."""
    assert ours[:header_bytes] == ref[:header_bytes], (label, "header differs")
    a = np.frombuffer(ours[header_bytes:], dtype=dtype).astype(np.int64)
    b = np.frombuffer(ref[header_bytes:], dtype=dtype).astype(np.int64)
    assert a.shape == b.shape, (label, a.shape, b.shape)
    diff = np.abs(a - b)
    assert diff.max(initial=0) <= 1, (label, int(diff.max()))
    assert np.count_nonzero(diff) <= EDGE_PIXEL_FRACTION * a.size, (label,
                                                                      int(np.count_nonzero(diff)))


def pgm_header_size(data: bytes) -> int:
    """Bytes before the pixels of a P5 file with C's one comment line."""
    newlines = 0
    for i, ch in enumerate(data):
        if ch == 0x0A:
            newlines += 1
            if newlines == 4:
                return i + 1
    raise ValueError("not a nanoBragg PGM")


def normalise_stdout(text: str) -> list[str]:
    """Lines C and we both print, without blank lines and C's pointer dump."""
    lines = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("mmap("):
            continue
        if line.rstrip().endswith("% done"):
            continue
        lines.append(line.rstrip())
    return lines
