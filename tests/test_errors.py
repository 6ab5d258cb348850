"""Bad input, faults and interruptions: one error line, a documented exit code, no output.

The table runs ``main(argv)`` in-process (fast); a few rows, the signal tests
and the thread-count test run real subprocesses.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN, load_case

from nbnumba import io as nbio
from nbnumba import simulate
from nbnumba.cli.main import EXIT_CODES, main
from nbnumba.errors import Terminated

OUTPUTS = ("float.bin", "int.img", "img.pgm", "noise.img")
BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "2",
        "-lambda", "1", "-detpixels", "8", "-pixel", "0.1", "-distance", "100",
        "-floatfile", "float.bin", "-intfile", "int.img", "-pgmfile", "img.pgm",
        "-noisefile", "noise.img", "-seed", "1", "-noprogress"]
NO_CELL = BASE[7:]  # from -default_F on


def _permissions_enforced() -> bool:
    """False for root (or CAP_DAC_OVERRIDE), who reads and writes anything."""
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe"
        probe.write_text("x")
        probe.chmod(0)
        try:
            probe.read_text()
        except PermissionError:
            return True
        return False


PERMISSIONS = _permissions_enforced()


def smv_bytes(fields: str | None = None, width: int = 8, height: int = 8,
              missing: int = 0) -> bytes:
    """A small SMV file; ``fields`` replaces the geometry lines, ``missing`` cuts the data."""
    if fields is None:
        fields = "PIXEL_SIZE=0.1;\nDISTANCE=100;\nWAVELENGTH=1;\n"
    head = ("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
            f"SIZE1={width};\nSIZE2={height};\n{fields}}}\f").encode("ascii")
    head += b" " * (512 - len(head))
    data = np.ones(width * height, dtype="<u2").tobytes()
    return head + data[:len(data) - missing]


FILES = {
    "good.hkl": "0 0 1 10\n1 0 0 20\n0 1 0 30\n",
    "empty.hkl": "",
    "blank.hkl": "\n  \n",
    "word.hkl": "0 0 1 10\n1 0 x 20\n",
    "nan.hkl": "0 0 1 10\n1 0 0 nan\n",
    "inf.hkl": "0 0 1 inf\n",
    "good.mat": "0.0214 0 0\n0 0.0188 0\n0 0 0.0167\n",
    "short.mat": "0.0214 0 0\n0 0.0188 0\n0 0\n",
    "word.mat": "0.0214 0 0\n0 abc 0\n0 0 0.0167\n",
    "nan.mat": "0.0214 0 0\n0 nan 0\n0 0 0.0167\n",
    "flat.mat": "1 2 3\n4 5 6\n7 8 9\n",
    "good_sources.txt": "-10 0 0 1 1e-10\n-10 0.01 0 1 1e-10\n",
    "comment_sources.txt": "# X Y Z weight lambda\n-10 0 0 1 1e-10\n",
    "nan_sources.txt": "-10 0 0 1 nan\n",
    "zero_sources.txt": "0 0 0 1 1e-10\n",
    "negative_lambda_sources.txt": "-10 0 0 1 -1e-10\n",
    "empty_sources.txt": "\n\n",
    "comment_only.txt": "# X Y Z weight lambda\n",
    "word.stol": "0.1 5\n0.2 x\n",
}
SMV_FILES = {
    "good8.img": smv_bytes(),
    "nosize.img": smv_bytes().replace(b"SIZE1=8;", b"SIZEX=8;"),
    "noorder.img": smv_bytes().replace(b"BYTE_ORDER", b"BYTE_XXXXX"),
    "short.img": smv_bytes(missing=10),
    "nanpixel.img": smv_bytes("PIXEL_SIZE=nan;\nDISTANCE=100;\n"),
    "tiny.img": b"{\nHEADER_BYTES=512;\n",
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    for name, data in SMV_FILES.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "adir").mkdir()
    (tmp_path / "rodir").mkdir()
    (tmp_path / "rodir").chmod(0o555)
    (tmp_path / "unreadable.hkl").write_text(FILES["good.hkl"])
    (tmp_path / "unreadable.hkl").chmod(0)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    (tmp_path / "rodir").chmod(0o755)


def run_in_process(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def leftovers(folder: Path) -> list[str]:
    """Output images and temporary files that a failed run must not leave."""
    found = [name for name in OUTPUTS if (folder / name).exists()]
    found += [str(p.relative_to(folder)) for p in folder.rglob("*.tmp")]
    return found


def assert_one_error_line(err: str, text: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("nanobragg-nb: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert text in errors[0], (text, errors[0])


# (id, argv, exit code, part of the error line)
BAD_INPUT = [
    # files that are missing or cannot be read
    ("missing -mat", NO_CELL + ["-mat", "missing.mat"], 3,
     "-mat missing.mat: cannot read it: No such file"),
    ("missing -hkl", BASE + ["-hkl", "missing.hkl"], 3, "-hkl missing.hkl: cannot read it"),
    ("missing -sourcefile", BASE + ["-sourcefile", "missing.txt"], 3,
     "-sourcefile missing.txt: cannot read it"),
    ("missing -stol", BASE + ["-stol", "missing.stol"], 3, "-stol missing.stol: cannot read it"),
    ("-hkl is a folder", BASE + ["-hkl", "adir"], 3, "-hkl adir: is a folder"),
    ("unreadable -hkl", BASE + ["-hkl", "unreadable.hkl"], 3, "Permission denied"),
    # malformed contents
    ("empty hkl", BASE + ["-hkl", "empty.hkl"], 3, "-hkl empty.hkl: holds no h k l F record"),
    ("blank hkl", BASE + ["-hkl", "blank.hkl"], 3, "holds no h k l F record"),
    ("hkl with NaN", BASE + ["-hkl", "nan.hkl"], 3, "nan.hkl line 2: 'nan' is not a finite"),
    ("hkl with inf", BASE + ["-hkl", "inf.hkl"], 3, "inf.hkl line 1: 'inf' is not a finite"),
    ("truncated matrix", NO_CELL + ["-mat", "short.mat"], 3,
     "-mat short.mat: the file ends after 8 numbers; a matrix needs 9"),
    ("matrix with a word", NO_CELL + ["-mat", "word.mat"], 3,
     "-mat word.mat line 2: 'abc' is not a number"),
    ("matrix with NaN", NO_CELL + ["-mat", "nan.mat"], 3, "-mat nan.mat: the matrix holds NaN"),
    ("singular matrix", NO_CELL + ["-mat", "flat.mat"], 3, "singular matrix"),
    ("empty source file", BASE + ["-sourcefile", "empty_sources.txt"], 3, "holds no source lines"),
    ("source file with a comment only", BASE + ["-sourcefile", "comment_only.txt"], 3,
     "holds no source lines"),
    ("source wavelength 0, N 2", BASE + ["-c_parity", "-sourcefile", "comment_sources.txt"], 3,
     "image would be NaN"),
    ("SMV header without SIZE1", BASE + ["-img", "nosize.img"], 3,
     "-img nosize.img: SMV header has no SIZE1"),
    ("SMV header without BYTE_ORDER", BASE + ["-mask", "noorder.img"], 3, "no BYTE_ORDER"),
    ("SMV header value NaN", BASE + ["-img", "nanpixel.img"], 3,
     "header value PIXEL_SIZE is not a finite number"),
    ("not an SMV file", BASE + ["-img", "good.mat"], 3, "shorter than 512"),
    ("Fdump.bin too short", ["-cell", "100", "100", "100", "90", "90", "90", *NO_CELL[2:]], 3,
     "-dump Fdump.bin: dump file is"),
    # values that are missing or not numbers
    ("our flag without its value", BASE + ["-precision"], 2, "-precision needs a value"),
    ("our flag with a bad value", BASE + ["-trace_pixel", "1", "x"], 2,
     "-trace_pixel: expected two integer pixel indices"),
    ("NaN value", BASE + ["-osc", "nan"], 2, "-osc: nan is not a finite number"),
    ("inf value", BASE + ["-mosaic", "inf"], 2, "-mosaic: inf is not a finite number"),
    # values with which C computes garbage
    ("zero pixel", BASE + ["-pixel", "0"], 2,
     "-pixel: the pixel size must be a finite non-zero number, not 0 mm"),
    ("pixel not a number", BASE + ["-pixel", "abc"], 2, "-pixel: the pixel size must be"),
    ("empty value", BASE + ["-lambda", ""], 2, "the wavelength must be a finite non-zero"),
    ("zero wavelength", BASE + ["-lambda", "0"], 2, "writes a NaN image"),
    ("zero energy", BASE + ["-energy", "0"], 2, "non-zero number, not inf A"),
    ("zero cell edge", NO_CELL + ["-cell", "0", "0", "0", "90", "90", "90"], 2,
     "-cell: the cell edge a must be > 0"),
    ("impossible cell angles", BASE + ["-cell", "100", "100", "100", "90", "90", "180"], 2,
     "give no unit cell"),
    ("zero phi steps", BASE + ["-osc", "0", "-phistep", "0.1"], 2, "0 phi steps"),
    ("negative detector size", BASE + ["-detpixels", "-4"], 2,
     "the detector would have -4x-4 pixels"),
    ("empty detector", BASE + ["-detpixels", "0", "-detsize", "0"], 2, "would have 0x0 pixels"),
    ("zero beam size", BASE + ["-flux", "1e12", "-beamsize", "0"], 2, "-beamsize 0"),
    ("crystal too large", BASE + ["-xtalsize", "1e300"], 2, "is too many"),
    ("mask of another size", BASE + ["-mask", "good8.img", "-detpixels", "16"], 2,
     "the mask has 64 pixels but the detector 16x16; nanoBragg.c would read past the end"),
    ("trace pixel outside", BASE + ["-trace_pixel", "100", "0"], 2, "outside the 8x8"),
    ("no crystal", NO_CELL, 2, "need -hkl"),
    # resources
    ("detector too large for memory", BASE + ["-detpixels", "2000000"], 4,
     "the run needs about 160000314"),
    # outputs that cannot be written
    ("output folder missing", BASE + ["-floatfile", "nodir/float.bin"], 3,
     "-floatfile nodir/float.bin: folder nodir does not exist"),
    ("output is a folder", BASE + ["-pgmfile", "adir"], 3, "-pgmfile adir: is a folder"),
    ("output name ends in /", BASE + ["-intfile", "new/"], 3, "is a folder"),
    ("empty output name", BASE + ["-noisefile", ""], 2, "-noisefile: empty file name"),
    ("output folder read-only", BASE + ["-noisefile", "rodir/noise.img"], 3,
     "folder rodir is not writable"),
]


# permissions mean nothing to root
NEEDS_NON_ROOT = {"unreadable -hkl", "output folder read-only"}


def _rows() -> list:
    skip = pytest.mark.skipif(not PERMISSIONS, reason="file permissions are not enforced")
    return [pytest.param(*row, id=row[0], marks=[skip] if row[0] in NEEDS_NON_ROOT else [])
            for row in BAD_INPUT]


@pytest.mark.parametrize("label, args, code, text", _rows())
def test_bad_input(label, args, code, text, workdir, capsys):
    if label == "Fdump.bin too short":
        (workdir / "Fdump.bin").write_bytes(b"0 1 0 1 0 1\n\f" + b"\0" * 10)
    got, out, err = run_in_process(args, capsys)
    assert got == code, err
    assert_one_error_line(err, text)
    assert leftovers(workdir) == []


def test_table_codes_are_documented():
    assert {row[2] for row in BAD_INPUT} <= set(EXIT_CODES) - {0, 1}


def test_no_cuda_device(workdir, capsys):
    from nbnumba import engines

    if engines.get("cuda").available():
        pytest.skip("a CUDA GPU is available here")
    code, _, err = run_in_process(BASE + ["-device", "cuda"], capsys)
    assert code == 4
    assert_one_error_line(err, "-device cuda: no usable CUDA GPU")


# ------------------------------------------------------------ kept, with warnings

def test_baseline_writes_every_output(workdir, capsys):
    code, out, err = run_in_process(BASE, capsys)
    assert code == 0, err
    assert all((workdir / name).is_file() for name in OUTPUTS)
    assert not list(workdir.rglob("*.tmp"))


@pytest.mark.parametrize("extra, warning", [
    (["-distance"], "warning: -distance needs 1 argument after it but 0 follow"),
    (["-phisteps", "0"], "warning: -phisteps 0: not a positive count"),
    (["-N", "0"], None),  # C clamps N to 1 (golden case N0_saxs)
    (["-N", "2.5"], "reads '2.5' as 2"),
    (["-distance", "100mm"], "ignores 'mm'"),
    (["-mask", "good8.img"], None),
    # C runs these (issue 14; tests/test_refusals.py compares the images with C's)
    (["-distance", "abc"], "nanoBragg.c's atof() reads 'abc' as 0"),
    (["-N", "x"], "nanoBragg.c's atoi() reads 'x' as 0"),
    (["-distance", "-100"], "detector distance -100 mm"),
    (["-close_distance", "0"], "detector distance 0 mm"),
    (["-lambda", "-1"], "negative wavelength"),
    (["-pixel", "-0.1"], "negative pixel size"),
    (["-N", "-1"], "a negative number of unit cells"),
    (["-dispersion", "250"], "200% or more makes some wavelengths <= 0"),
    (["-fluence", "-1"], "a negative fluence"),
    (["-water", "-5"], "a negative droplet size"),
    (["-hkl", "word.hkl"], "nanoBragg.c stops reading the file there (1 records read)"),
    (["-sourcefile", "comment_sources.txt"], "1 comment line (line 1) skipped"),
    (["-sourcefile", "zero_sources.txt"], None),
    (["-sourcefile", "nan_sources.txt"], None),  # C's NaN means "the default wavelength"
    (["-sourcefile", "negative_lambda_sources.txt"], None),
    (["-stol", "word.stol"], None),
    (["-img", "missing.img"], "-img missing.img: cannot read it (No such file or directory); "
                              "nanoBragg.c goes on without it"),
    (["-mask", "missing.img"], "nanoBragg.c goes on without it"),
    (["-beam_vector", "0", "0", "0"], "-beam_vector 0 0 0: a zero direction"),
    (["-img", "short.img"], "the file ends 10 bytes short of its pixels"),
    (["-sourcefile", "good_sources.txt", "-hkl", "good.hkl"], None),
])
def test_kept_with_warning(extra, warning, workdir, capsys):
    code, out, err = run_in_process(BASE + extra, capsys)
    assert code == 0, err
    assert "error" not in err and "Traceback" not in err
    if warning is not None:
        assert err.count(warning) == 1, err
    assert (workdir / "float.bin").is_file()


def test_warnings_once_each(workdir, capsys):
    code, _, err = run_in_process(BASE + ["-nosuch", "-nosuch", "-N", "2.5", "-N", "2.5"],
                                  capsys)
    assert code == 0
    lines = err.strip().splitlines()
    assert lines and len(lines) == len(set(lines)), err


def test_quiet_silences_all_but_errors(workdir, capsys):
    code, out, err = run_in_process(BASE + ["-quiet", "-nosuch", "-N", "2.5", "-distance"],
                                    capsys)
    assert (code, out, err) == (0, "", "")
    code, out, err = run_in_process(BASE + ["-quiet", "-nosuch", "-pixel", "0"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("nanobragg-nb: error: -pixel") and err.count("\n") == 1
    # a trace was asked for by name: -quiet keeps it, and only it
    code, out, err = run_in_process(BASE + ["-quiet", "-trace_pixel", "1", "2"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines and all(line.startswith("TRACE_") for line in lines), lines[:3]


# ------------------------------------------------- faults during the run (in-process)

def _failing_smv_writer(exc: BaseException):
    """write_smv that dies after the header, inside atomic_write."""

    def write_smv(path, header_bytes, image):
        def chunks():
            yield header_bytes
            raise exc

        nbio.atomic_write(path, chunks())

    return write_smv


@pytest.mark.parametrize("exc, code, text", [
    (KeyboardInterrupt(), 130, "interrupted (SIGINT)"),
    (Terminated(), 143, "terminated (SIGTERM)"),
    (OSError(errno.ENOSPC, "No space left on device", "int.img"), 4,
     "cannot write int.img: No space left on device"),
    (OSError(errno.EIO, "Input/output error", "int.img"), 3, "cannot write int.img"),
    (MemoryError(), 4, "out of memory"),
])
def test_fault_while_writing_leaves_nothing(exc, code, text, workdir, capsys, monkeypatch):
    monkeypatch.setattr(nbio, "write_smv", _failing_smv_writer(exc))
    got, out, err = run_in_process(BASE, capsys)
    assert got == code
    assert "writing float.bin" in out  # the float image was complete before the fault
    assert_one_error_line(err, text)
    assert leftovers(workdir) == []


def test_sigterm_in_process(workdir, capsys, monkeypatch):
    real_render = simulate.render

    def render_then_sigterm(*args, **kwargs):
        rendered = real_render(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        return rendered

    monkeypatch.setattr(simulate, "render", render_then_sigterm)
    code, _, err = run_in_process(BASE, capsys)
    assert code == 143
    assert_one_error_line(err, "terminated (SIGTERM)")
    assert leftovers(workdir) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_internal_error_is_one_line(workdir, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something nobody expected")

    from nbnumba import api

    monkeypatch.setattr(api.Result, "report", broken)
    code, _, err = run_in_process(BASE, capsys)
    assert code == 1
    assert_one_error_line(err, "internal error: RuntimeError: something nobody expected")
    assert leftovers(workdir) == []


def test_an_older_output_is_replaced_not_kept_on_failure(workdir, capsys, monkeypatch):
    """A failed run removes what it wrote; files it never touched stay."""
    (workdir / "noise.img").write_bytes(b"from an earlier run")
    monkeypatch.setattr(nbio, "write_smv", _failing_smv_writer(KeyboardInterrupt()))
    code, _, _ = run_in_process(BASE, capsys)
    assert code == 130
    assert (workdir / "noise.img").read_bytes() == b"from an earlier run"
    assert not (workdir / "float.bin").exists()


# ---------------------------------------------------------------- real processes

def _nb_process(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "nbnumba.cli.main", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell without job control starts children with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


@pytest.mark.parametrize("args, code, text", [
    (BASE + ["-pixel", "0"], 2, "-pixel: the pixel size must be a finite non-zero number"),
    (BASE + ["-hkl", "nan.hkl"], 3, "-hkl nan.hkl line 2"),
    (BASE + ["-detpixels", "2000000"], 4, "the run needs about"),
    (BASE + ["-floatfile", "nodir/f.bin"], 3, "does not exist"),
])
def test_exit_codes_of_a_real_process(args, code, text, workdir):
    proc = _nb_process(args, workdir)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert_one_error_line(err, text)
    assert leftovers(workdir) == []


@pytest.mark.parametrize("command", [
    ["-m", "nbnumba.cli.main", "series", "--help"],
    ["-m", "nbnumba.cli.compare", "--help"],
])
def test_closed_stdout_is_not_a_traceback(command, tmp_path):
    """`... --help | head`: the reader has gone before we print."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, *command], cwd=tmp_path, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


# a run of many minutes on any machine: 1024x1024 pixels, 20000 phi steps
LONG_RUN = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
            "-lambda", "1", "-detpixels", "1024", "-pixel", "0.1", "-distance", "100",
            "-phisteps", "20000", "-osc", "1", "-oversample", "1", "-floatfile", "float.bin",
            "-intfile", "int.img", "-nopgm", "-nonoise", "-noprogress"]


@pytest.mark.parametrize("signum, code, text", [
    (signal.SIGINT, 130, "interrupted (SIGINT)"),
    (signal.SIGTERM, 143, "terminated (SIGTERM)"),
])
def test_signal_stops_a_long_run(signum, code, text, tmp_path):
    proc = _nb_process(LONG_RUN, tmp_path)
    try:
        # the last line of the setup summary: the pixel loop starts next
        for line in proc.stdout:
            if "pixel oversample steps" in line:
                break
        time.sleep(1.5)
        assert proc.poll() is None, "the run ended before the signal"
        started = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
        stopped_after = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert_one_error_line(err, text)
    assert stopped_after < 30, stopped_after  # seen between slices of the image
    assert leftovers(tmp_path) == []


# ----------------------------------------------------- results vs thread count

THREAD_CASES = ("phi_from_zero_coarse", "pattern_hkl_interp_fallback")
_DRIVER = """
import contextlib, hashlib, io, json, os, sys
from nbnumba.cli.main import main
results = {}
for name, workdir, args in json.loads(sys.argv[1]):
    os.chdir(workdir)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    files = {f: hashlib.sha256(open(f, "rb").read()).hexdigest()
             for f in ("float.bin", "int.img") if os.path.exists(f)}
    results[name] = [code, out.getvalue(), files]
print(json.dumps(results))
"""


def test_outputs_do_not_depend_on_thread_count(golden_dir, tmp_path):
    """NUMBA_NUM_THREADS=1 and 2 give identical files and stdout, with and without
    -c_parity, on the cases that exercise the host-side sequential effects."""
    results = {}
    for threads in ("1", "2"):
        jobs = []
        for case_name in THREAD_CASES:
            case = load_case(case_name)
            for parity in (False, True):
                workdir = tmp_path / f"{case_name}-{parity}-{threads}"
                shutil.copytree(GOLDEN / "inputs", workdir)
                args = [*case["args"], "-intfile", "int.img", "-noprogress", "-seed", "1"]
                jobs.append((f"{case_name} c_parity={parity}", str(workdir),
                             args + (["-c_parity"] if parity else [])))
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        proc = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(jobs)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        results[threads] = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (code, out, files) in results["1"].items():
        assert code == 0 and set(files) == {"float.bin", "int.img"}
        assert results["2"][name] == [code, out, files], name
