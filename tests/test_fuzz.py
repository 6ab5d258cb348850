"""Fuzzing the command line: whatever argv, one error line or a complete run.

Command lines are drawn from nanoBragg.c's real flag vocabulary (the table of
specs/cli.md, plus -mask and our own flags), with good and bad numbers, words,
input files and output paths, flags repeated, left without their values or
cut off at the end, on detectors of 1 to 8 pixels a side.  Every run must end
with an exit code from the documented set (never 1, an internal error), no
traceback, no temporary file, and after a failure no output image.  Runs whose
estimated work is large (a flag that asks for 1024x1024 pixels or thousands of
steps) are skipped so that each example takes milliseconds.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from nbnumba.cargs import OWN_FLAGS, parse_args
from nbnumba.cli.main import EXIT_CODES, EXIT_INTERNAL, main
from nbnumba.validate import estimate_work, validate

SPEC = Path(__file__).resolve().parents[1] / "specs" / "cli.md"


def _spec_flags() -> list[str]:
    """The flag patterns of specs/cli.md's table of C's argv loop."""
    text = SPEC.read_text()
    table = text[text.index("## 2."):text.index("## 3.")]
    flags: set[str] = set()
    for line in table.splitlines():
        if re.match(r"\|\s*\d", line):
            flags.update(re.findall(r"`(-[A-Za-z0-9_]+)", line.split("|")[2]))
    # written as "_roty", "_rotz" in the table; -mask lives in C's pre-pass only
    return sorted(flags | {"-detector_roty", "-detector_rotz", "-mask", *OWN_FLAGS})


FLAGS = _spec_flags()
IN_FLAGS = {"-mat", "-hkl", "-sourcefile", "-img", "-mask", "-stol", "-4stol", "-Q", "-dump"}
OUT_FLAGS = {"-floatfile", "-floatimage", "-intfile", "-intimage", "-pgmfile", "-pgmimage",
             "-noisefile", "-noiseimage", "-stolout"}
WORDS = {"-pivot": ["sample", "beam", "xyz"], "-misset": ["random", "rand", "10"],
         "-device": ["cpu", "auto", "cuda", "gpu", "tpu"],
         "-precision": ["single", "double", "quad"]}
GOOD_NUMBERS = ["1", "2", "3", "0.5", "0.1", "10", "90", "2.5", "+4", " 7"]
ODD_NUMBERS = ["0", "-1", "-5", "-0", "1e-3", "nan", "inf", "-inf", "1e400", "0x10", "100mm",
               "abc", ""]
NUMBERS = GOOD_NUMBERS + ODD_NUMBERS

INPUTS = {
    "good.hkl": "0 0 1 10\n1 0 0 20\n0 1 0 30\n-1 0 0 5\n",
    "word.hkl": "0 0 1 10\n1 0 x 20\n",
    "empty.hkl": "",
    "five_columns.hkl": "0 0 1 10 1\n1 0 0 20 1\n",
    "good.mat": "0.0214 0 0\n0 0.0188 0\n0 0 0.0167\n",
    "short.mat": "0.0214 0 0\n0 0.0188\n",
    "sources.txt": "-10 0 0 1 1e-10\n-10 0.01 0 1 1.01e-10\n",
    "bad_sources.txt": "# comment\n",
    "stol.txt": "0.1 5\n0.2 6\n",
}


def _smv(width: int, height: int, missing: int = 0, extra: str = "") -> bytes:
    head = ("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
            f"SIZE1={width};\nSIZE2={height};\nPIXEL_SIZE=0.1;\nDISTANCE=100;\n{extra}}}\f")
    raw = head.encode("ascii").ljust(512, b" ")
    data = b"\1\0" * (width * height)
    return raw + data[:len(data) - missing]


SMV = {"mask4.img": _smv(4, 4), "img6.img": _smv(6, 5, extra="WAVELENGTH=1.2;\n"),
       "short.img": _smv(4, 4, missing=3), "nosize.img": _smv(4, 4).replace(b"SIZE1", b"SIZEX")}
IN_VALUES = [*INPUTS, *SMV, "missing.file", "adir", ""]
# good.mat: an output that is an input of the run is refused (issue 18)
OUT_VALUES = ["out.bin", "out.img", "adir/out.img", "nodir/out.img", "adir", "", "good.mat"]
IMAGES = {"floatimage.bin", "intimage.img", "image.pgm", "noiseimage.img", "out.bin", "out.img",
          "adir/out.img", "output.stol"}

BASES = [
    ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100"],
    ["-mat", "good.mat", "-hkl", "good.hkl"],
    ["-cell", "70", "80", "90", "75", "85", "95", "-hkl", "good.hkl", "-default_F", "1"],
    [],
]
# a run may compute at most this many sub-pixel steps (a few ms)
WORK_BUDGET = 3e5


def _value(flag: str) -> st.SearchStrategy[str]:
    if flag in IN_FLAGS:
        return st.sampled_from(IN_VALUES)
    if flag in OUT_FLAGS:
        return st.sampled_from(OUT_VALUES)
    if flag in WORDS:
        return st.sampled_from(WORDS[flag] + ODD_NUMBERS[:2])
    # half of the values are plausible, so that many runs get through to the kernel
    return st.one_of(st.sampled_from(GOOD_NUMBERS), st.sampled_from(ODD_NUMBERS))


@st.composite
def flag_group(draw) -> list[str]:
    """A flag with 0 to 4 values of the kind it takes (too few, too many, or right)."""
    flag = draw(st.sampled_from(FLAGS))
    n = draw(st.integers(0, 4))
    return [flag, *(draw(_value(flag)) for _ in range(n))]


@st.composite
def command_lines(draw) -> list[str]:
    argv = list(draw(st.sampled_from(BASES)))
    argv += ["-detpixels", str(draw(st.integers(1, 8))), "-N", draw(st.sampled_from("0123"))]
    for group in draw(st.lists(flag_group(), max_size=6)):
        argv += group
    if draw(st.booleans()):
        argv.append(draw(st.sampled_from(FLAGS)))  # a flag cut off at the end
    if draw(st.integers(0, 4)) == 0:
        argv = draw(st.permutations(argv))  # values land after the wrong flags
    return ["-noprogress", *argv]


def _setup(folder: Path) -> None:
    for name, text in INPUTS.items():
        (folder / name).write_text(text)
    for name, data in SMV.items():
        (folder / name).write_bytes(data)
    (folder / "adir").mkdir()


def _estimated_work(argv: list[str]) -> float:
    """Sub-pixel steps the run would compute; 0 when it is refused before computing."""
    try:
        o, warnings = parse_args(argv)
        validate(o, warnings)
        return estimate_work(o)
    except Exception:
        return 0.0


def _run_inputs(argv: list[str]) -> set[str]:
    """The text input files (of INPUTS) that the run reads."""
    try:
        o = parse_args(list(argv))[0]
    except Exception:
        return set()
    names = {o.matfilename, o.hklfilename, o.sourcefilename, o.stolfilename}
    return {n for n in names if n in INPUTS}


def check_command_line(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _setup(folder)
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            assume(_estimated_work(argv) <= WORK_BUDGET)
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(argv))
        finally:
            os.chdir(cwd)
        err_text = err.getvalue()
        event(f"exit code {code}")
        for name in _run_inputs(argv):  # no output ever overwrites an input of the run
            assert (folder / name).read_text() == INPUTS[name], (argv, name)
        assert code in EXIT_CODES and code != EXIT_INTERNAL, (code, err_text)
        assert "Traceback" not in err_text, err_text
        assert not list(folder.rglob("*.tmp")), argv
        if code == 0:
            assert "nanobragg-nb: error" not in err_text, err_text
            opts = parse_args(argv)[0]
            assert (folder / opts.floatfilename).is_file(), argv
            assert (folder / opts.intfilename).is_file(), argv
            return
        lines = err_text.strip().splitlines()
        assert lines and lines[-1].startswith("nanobragg-nb: error: "), err_text
        assert sum(line.startswith("nanobragg-nb: error: ") for line in lines) == 1, err_text
        assert not [name for name in IMAGES if (folder / name).is_file()], (argv, err_text)


COMMON = dict(deadline=None, database=None, derandomize=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@settings(max_examples=200, **COMMON)
@given(command_lines())
def test_fuzz_command_line(argv):
    check_command_line(argv)


@pytest.mark.slow
@settings(max_examples=10_000, **COMMON)
@given(command_lines())
def test_fuzz_command_line_long(argv):
    check_command_line(argv)


# ------------------------------------------------------ series and tiles (issue 18)

TEMPLATE_PARTS = ["img_", "{frame}", "{frame:05d}", "{frame:>100000000}", "{frame[0]}",
                  "{frame.real}", "{}", "{0}", "{frame!r}", "{frame:q}", "{run}", "{", "}",
                  "sub/", "../", "nodir/", ".cbf", ".img", ".bin", ".h5", ".edf", ".txt",
                  "x" * 300, ""]
SERIES_VALUES = {"--frames": ["1", "2", "0", "-1", "x", "1e3", "100000000000", ""],
                 "--start-phi": ["0", "1.5", "x", "nan", ""],
                 "--content": ["auto", "float", "int", "noise", "x"],
                 "--workers": ["1", "0", "x"], "--scheduler": ["", "nowhere:1"]}
TILES_VALUES = ["1", "2", "0", "-1", "x", "100000000000", ""]


@st.composite
def cluster_lines(draw) -> list[str]:
    """``series``/``tiles`` with our options (good, odd, missing, unknown) and ARGS."""
    args = draw(command_lines())
    if draw(st.booleans()):
        own = ["--frames", draw(st.sampled_from(SERIES_VALUES["--frames"]))]
        for name in draw(st.lists(st.sampled_from([*SERIES_VALUES, "--template", "--force",
                                                   "--no-progress", "--bogus"]),
                                  max_size=4)):
            if name == "--template":
                own += [name, "".join(draw(st.lists(st.sampled_from(TEMPLATE_PARTS),
                                                    max_size=4)))]
            elif name in SERIES_VALUES:
                own += [name, draw(st.sampled_from(SERIES_VALUES[name]))]
            else:
                own.append(name)
        head = "series"
    else:
        own = ["--tiles", *draw(st.lists(st.sampled_from(TILES_VALUES), max_size=3))]
        head = "tiles"
    if draw(st.booleans()):
        own.pop()  # an option cut off before its value
    return [head, *draw(st.permutations(own)), *args]


class _WouldStartCluster(Exception):
    """Raised where a series or tiles run would start a Dask cluster: accepted."""


def check_cluster_line(argv: list[str]) -> None:
    from unittest import mock

    from nbnumba import distributed as nbseries

    def no_cluster(*args, **kwargs):
        raise _WouldStartCluster

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _setup(folder)
        cwd = os.getcwd()
        os.chdir(folder)
        out, err = io.StringIO(), io.StringIO()
        try:
            with mock.patch.object(nbseries, "_connect", no_cluster), \
                    mock.patch.object(nbseries, "client_for", no_cluster), \
                    contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(argv))
                except _WouldStartCluster:
                    code = None
        finally:
            os.chdir(cwd)
        err_text = err.getvalue()
        event(f"exit code {code}")
        assert "Traceback" not in err_text, err_text
        assert not list(folder.rglob("*.tmp")), argv
        assert not list(folder.rglob("*.lock")), argv  # a refused series holds no lock
        for name in _run_inputs([a for a in argv if not a.startswith("--")]):
            assert (folder / name).read_text() == INPUTS[name], (argv, name)
        if code is None or code == 0:
            return
        assert code in EXIT_CODES and code != EXIT_INTERNAL, (code, err_text)
        errors = [line for line in err_text.splitlines() if ": error: " in line]
        assert len(errors) == 1, err_text
        assert errors[0].startswith("nanobragg-nb"), err_text
        assert len(errors[0]) < 1200, len(errors[0])


@settings(max_examples=25, **COMMON)
@given(cluster_lines())
def test_fuzz_series_and_tiles(argv):
    check_cluster_line(argv)


@pytest.mark.slow
@settings(max_examples=3000, **COMMON)
@given(cluster_lines())
def test_fuzz_series_and_tiles_long(argv):
    check_cluster_line(argv)
