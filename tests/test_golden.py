"""Every golden case from serial nanoBragg.c, in both φ modes where they differ."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import GOLDEN, golden_case_names, load_case
from golden import (
    assert_float_parity,
    assert_int_file_parity,
    normalise_stdout,
    pgm_header_size,
    read_reference,
    run_nb,
)

# the supervisor case takes seconds and is the one that matters most: it runs by default
CASES = golden_case_names()


def _run_case(name: str, workdir, c_parity: bool):
    case = load_case(name)
    for before in case.get("before", []):
        res = run_nb(before, workdir)
        assert res.code == 0, res.stderr
    args = list(case["args"]) + (["-c_parity"] if c_parity else [])
    res = run_nb(args, workdir)
    assert res.code == case.get("exit_code", 0), res.stderr
    return case, res


def _float_image(workdir, case) -> np.ndarray:
    shape = tuple(case["shape"])
    return np.fromfile(workdir / case["float"], dtype="<f4").reshape(shape)


@pytest.mark.parametrize("name", CASES)
def test_case_c_mode(name, case_workdir):
    """Against C's own files and stdout: -c_parity where the φ=0 defect matters."""
    case = load_case(name)
    case, res = _run_case(name, case_workdir, c_parity=bool(case["carryover"]))
    ref_dir = GOLDEN / name
    ours = _float_image(case_workdir, case)
    ref = np.frombuffer(read_reference(ref_dir, case["float"]), dtype="<f4").reshape(ours.shape)
    metrics = assert_float_parity(ours, ref, name)
    if case["carryover"]:
        # -c_parity runs the exact engine: serial C's float image bit for bit
        assert metrics["identical_fraction"] == 1.0, metrics
    for kept in case["keep"]:
        if kept == case["float"]:
            continue
        data = (case_workdir / kept).read_bytes()
        ref_data = read_reference(ref_dir, kept)
        if kept.endswith(".pgm"):
            assert_int_file_parity(data, ref_data, pgm_header_size(ref_data), np.uint8, kept)
        else:
            assert_int_file_parity(data, ref_data, 512, "<u2", kept)
    # the stdout summary matches what nanoBragg.c printed, line for line
    # (the clock seed of runs without -seed differs run to run)
    ours_out = [x for x in normalise_stdout(res.stdout) if not x.startswith("  seed: ")]
    ref_out = [x for x in normalise_stdout((ref_dir / "c_stdout.txt").read_text())
               if not x.startswith("  seed: ")]
    assert ours_out == ref_out


@pytest.mark.parametrize("name", [n for n in CASES if load_case(n)["carryover"]])
def test_case_correct_rotation(name, case_workdir):
    """Default mode rotates at φ=0 too: compare with float_nocarry.bin."""
    case, res = _run_case(name, case_workdir, c_parity=False)
    ours = _float_image(case_workdir, case)
    ref = np.frombuffer(read_reference(GOLDEN / name, case["nocarry"]["file"]),
                        dtype="<f4").reshape(ours.shape)
    assert_float_parity(ours, ref, name + " (no carry-over)")
