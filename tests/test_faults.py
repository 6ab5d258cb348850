"""Faults of scripted and concurrent use (issue 18), one table per kind.

1. a failed run removes only the files it put in place itself (known by identity);
2. each input file is read once: pipes, FIFOs and /dev/fd/N work for every input flag;
3. reads are bounded (devices, NUL-padded files) and echoed tokens are cut;
4. an output that is an input of the run (however spelled) is refused, exit 2;
5. SIGINT/SIGTERM/SIGHUP stop a run within a second or two whatever the flags;
   enormous runs get a warning with their estimated time;
6. ``series``: malformed manifests (3), bad templates (2), absurd --frames (2),
   one series per template at a time (lock), SIGTERM one line;
7. messages name the right thing (full disk, memory, dangling symlink, hkl table);
8. a compiled kernel is recompiled when any kernel source changes.

In-process where that shows the fault, real processes for pipes and signals.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nbnumba import inputs as nbinputs
from nbnumba import io as nbio
from nbnumba import simulate
from nbnumba.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
MAT = "0.0214 0 0\n0 0.0188 0\n0 0 0.0167\n"
HKL = "0 0 1 10\n1 0 0 20\n0 1 0 30\n-1 0 0 5\n"
SOURCES = "-10 0 0 1 1e-10\n-10 0.01 0 1 1e-10\n"
STOL = "0 10\n0.5 5\n"
BASE = ["-mat", "A.mat", "-hkl", "s.hkl", "-lambda", "1", "-pixel", "0.1", "-distance", "100",
        "-detpixels", "8", "-N", "2", "-noprogress", "-nonoise", "-nopgm", "-seed", "1",
        "-floatfile", "float.bin", "-intfile", "int.img"]
OUTPUTS = ("float.bin", "int.img", "noise.img", "img.pgm")


def smv_bytes(width: int = 8, height: int = 8) -> bytes:
    head = ("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
            f"SIZE1={width};\nSIZE2={height};\nPIXEL_SIZE=0.1;\nDISTANCE=100;\n"
            "WAVELENGTH=1;\n}\f").encode("ascii")
    return head + b" " * (512 - len(head)) + np.ones(width * height, "<u2").tobytes()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "A.mat").write_text(MAT)
    (tmp_path / "s.hkl").write_text(HKL)
    (tmp_path / "sources.txt").write_text(SOURCES)
    (tmp_path / "stol.txt").write_text(STOL)
    (tmp_path / "mask.img").write_bytes(smv_bytes())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_in_process(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str, text: str, prog: str = "nanobragg-nb") -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith(f"{prog}")]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, err
    assert text in errors[0], (text, errors[0])
    assert len(errors[0]) < 400, len(errors[0])
    return errors[0]


def nb_process(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "nbnumba.cli.main", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


# ------------------------------------------------ 1. a failed run deletes only its own

def _replaced_by_another_process(path: str, text: bytes):
    """What another run does meanwhile: put its own complete file at ``path``."""
    other = path + ".other"
    Path(other).write_bytes(text)
    os.replace(other, path)


# (id, what happens to float.bin after this run wrote it, then the fault; float.bin after)
DATA_LOSS = [
    ("another run replaced our float.bin", "replace", b"theirs"),
    ("nobody touched our float.bin", None, None),
    ("float.bin existed and this run never got to it", "before", b"older"),
]


@pytest.mark.parametrize("label, event, kept", DATA_LOSS, ids=[r[0] for r in DATA_LOSS])
def test_failed_run_removes_only_its_own_files(label, event, kept, workdir, capsys,
                                               monkeypatch):
    real_write_float = nbio.write_float_image

    def write_float(path, image):
        if event == "before":
            raise KeyboardInterrupt  # before anything was written
        real_write_float(path, image)
        if event == "replace":
            _replaced_by_another_process(path, b"theirs")

    def write_smv(path, header, image):
        raise KeyboardInterrupt

    if event == "before":
        (workdir / "float.bin").write_bytes(b"older")
    monkeypatch.setattr(nbio, "write_float_image", write_float)
    monkeypatch.setattr(nbio, "write_smv", write_smv)
    code, _, err = run_in_process(BASE, capsys)
    assert code == 130
    one_error_line(err, "interrupted (SIGINT)")
    path = workdir / "float.bin"
    if kept is None:
        assert not path.exists()  # ours: removed
    else:
        assert path.read_bytes() == kept
    assert not list(workdir.glob("*.tmp"))


def test_issue_example_killed_run_keeps_the_other_runs_file(workdir):
    """Run A is killed while it computes; B wrote A's -floatfile meanwhile: B's file stays."""
    long_a = [*BASE[:BASE.index("-detpixels")], "-detpixels", "64", "-oversample", "400",
              "-noprogress", "-nonoise", "-nopgm", "-floatfile", "shared.bin",
              "-intfile", "a.img"]
    proc = nb_process(long_a, workdir)
    try:
        for line in proc.stdout:
            if "pixel oversample steps" in line or "oversample" in line:
                break
        time.sleep(1.0)
        assert proc.poll() is None
        _replaced_by_another_process(str(workdir / "shared.bin"), b"from run B")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert (workdir / "shared.bin").read_bytes() == b"from run B"
    assert not (workdir / "a.img").exists()


def test_failed_run_removes_our_outputs_too(workdir, capsys):
    """Trial finding 9: -expt_out (written last) fails on a full disk: every file the run
    put in place goes, -nxmx_out/-crystfel_out (+ NAME.geom)/-panels_out/-cbffile/
    -geometry_out included; what was there before stays."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    pytest.importorskip("h5py")
    pytest.importorskip("fabio")
    (workdir / "old.h5").write_bytes(b"there before")
    before = sorted(p.name for p in workdir.iterdir())
    code, _, err = run_in_process(
        [*BASE, "-floatfile", "ok.bin", "-nxmx_out", "ok.h5", "-expt_out", "/dev/full"],
        capsys)
    assert code == 4, err
    one_error_line(err, "/dev/full")
    assert not (workdir / "ok.bin").exists() and not (workdir / "ok.h5").exists()
    code, _, err = run_in_process(
        [*BASE, "-nxmx_out", "n.h5", "-crystfel_out", "cf.h5", "-panels_out", "p.json",
         "-cbffile", "c.cbf", "-geometry_out", "g", "-expt_out", "/dev/full"], capsys)
    assert code == 4, err
    left = sorted(p.name for p in workdir.iterdir() if p.name != "Fdump.bin")  # a cache, kept
    assert left == before
    assert (workdir / "old.h5").read_bytes() == b"there before"


# ------------------------------------------------------------- 2. each input read once

# (flag, file, extra args): every input flag of a single run
INPUT_FLAGS = [
    ("-mat", "A.mat", []),
    ("-hkl", "s.hkl", []),
    ("-sourcefile", "sources.txt", []),
    ("-stol", "stol.txt", []),
    ("-mask", "mask.img", []),
    ("-img", "mask.img", []),
]


@pytest.mark.parametrize("flag, name, extra", INPUT_FLAGS, ids=[r[0] for r in INPUT_FLAGS])
def test_each_input_is_opened_once(flag, name, extra, workdir, capsys, monkeypatch):
    opened: list[str] = []
    real_read = nbinputs._read

    def counting_read(path, stop_at_nul, messages):
        opened.append(os.fspath(path))
        return real_read(path, stop_at_nul, messages)

    monkeypatch.setattr(nbinputs, "_read", counting_read)
    args = list(BASE)
    if flag in ("-mat", "-hkl"):
        args[args.index(flag) + 1] = name
    else:
        args += [flag, name, *extra]
    code, _, err = run_in_process(args, capsys)
    assert code == 0, err
    assert opened.count(name) == 1, opened
    assert len(opened) == len(set(opened)), opened


def _feed_fifo(path: Path, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(path, "wb") as f:  # blocks until the reader opens it
            f.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_named_fifos_for_every_input_flag(workdir):
    """One real run with every input a FIFO: same image as with regular files (a second
    open of a FIFO would hang: the run has a timeout)."""
    plain = nb_process(BASE + ["-sourcefile", "sources.txt", "-stol", "stol.txt",
                               "-mask", "mask.img", "-floatfile", "plain.bin"], workdir)
    _, err = plain.communicate(timeout=300)
    assert plain.returncode == 0, err
    fifo_args = list(BASE)
    feeders = []
    for flag, name in (("-mat", "A.mat"), ("-hkl", "s.hkl"), ("-sourcefile", "sources.txt"),
                       ("-stol", "stol.txt"), ("-mask", "mask.img")):
        fifo = workdir / f"fifo{flag}"
        os.mkfifo(fifo)
        feeders.append(_feed_fifo(fifo, (workdir / name).read_bytes()))
        if flag in fifo_args:
            fifo_args[fifo_args.index(flag) + 1] = fifo.name
        else:
            fifo_args += [flag, fifo.name]
    proc = nb_process(fifo_args + ["-floatfile", "fifo.bin"], workdir)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert (workdir / "fifo.bin").read_bytes() == (workdir / "plain.bin").read_bytes()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_process_substitution(workdir):
    """`-mat <(cat A.mat) -hkl <(cat s.hkl)` (/dev/fd/N pipes), the issue's example: the
    same image as from the files, and a warning that nanoBragg.c misreads the hkl pipe."""
    files = nb_process(BASE + ["-floatfile", "f.bin"], workdir)
    _, err = files.communicate(timeout=300)
    assert files.returncode == 0, err
    command = (f"{sys.executable} -m nbnumba.cli.main " + " ".join(BASE[4:])
               + " -mat <(cat A.mat) -hkl <(cat s.hkl) -floatfile p.bin")
    proc = subprocess.run(["bash", "-c", command], cwd=workdir, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (workdir / "p.bin").read_bytes() == (workdir / "f.bin").read_bytes()
    assert "is a pipe or device: nanoBragg.c reads it twice" in proc.stderr
    assert proc.stderr.count("warning: -hkl /dev/fd/") == 1


def test_stream_bytes_are_shipped(workdir):
    """What a series' workers get for inputs read from pipes."""
    fifo = workdir / "m.fifo"
    os.mkfifo(fifo)
    _feed_fifo(fifo, MAT.encode())
    with nbinputs.run_inputs() as record:
        assert nbinputs.read_input(str(fifo)) == MAT.encode()
        assert nbinputs.read_input(str(fifo)) == MAT.encode()  # no second open
    assert record.streams() == {str(fifo): MAT.encode()}
    with nbinputs.run_inputs() as other:
        other.preload(record.streams())
        assert nbio.read_mat(str(fifo))[0][0] == pytest.approx(0.0214)


# ------------------------------------------------------- 3. bounded reads and messages

NUL_HKL = HKL.encode() + b"\0" * 1_000_000
HUGE_TOKEN_HKL = HKL.encode() + b"x" * 1_000_000 + b"\n"

# (id, files to write, argv changes, exit code, error text or None)
BOUNDS = [
    ("good records then 1 MB of NULs runs", {"nul.hkl": NUL_HKL}, ["-hkl", "nul.hkl"], 0,
     None),
    ("-hkl /dev/zero is refused at once", {}, ["-hkl", "/dev/zero"], 3,
     "-hkl /dev/zero: holds no h k l F record"),
    # C stops reading at the word and runs; so does -distance yyy... (as 0): warnings only
    ("a 1 MB word in an hkl file: short line", {"word.hkl": HUGE_TOKEN_HKL},
     ["-hkl", "word.hkl"], 0, None),
    ("a 1 MB flag value: short line", {}, ["-distance", "y" * 1_000_000], 0, None),
    ("a 1 MB word alone in an hkl file: short line", {"word.hkl": b"x" * 1_000_000 + b"\n"},
     ["-hkl", "word.hkl"], 3, "(1000000 bytes) is not a number"),
    ("-mat /dev/zero", {}, ["-mat", "/dev/zero"], 3, "-mat /dev/zero: the file ends after 0"),
]


@pytest.mark.parametrize("label, files, change, code, text", BOUNDS,
                         ids=[r[0] for r in BOUNDS])
def test_bounded_reads_and_messages(label, files, change, code, text, workdir, capsys):
    for name, data in files.items():
        (workdir / name).write_bytes(data)
    args = list(BASE)
    flag, value = change
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += change
    started = time.monotonic()
    got, out, err = run_in_process(args, capsys)
    assert got == code, err[-2000:]
    assert time.monotonic() - started < 60
    if text is None:
        assert "error" not in err
    else:
        one_error_line(err, text)
    assert all(len(line) < 1200 for line in (out + err).splitlines())


def test_device_without_end_is_bounded(workdir, capsys, monkeypatch):
    """A -sourcefile that never ends (fgets-based reader: NULs do not stop it)."""
    monkeypatch.setattr(nbinputs, "MAX_STREAM_BYTES", 1 << 20)
    code, _, err = run_in_process(BASE + ["-sourcefile", "/dev/zero"], capsys)
    assert code == 3
    one_error_line(err, "-sourcefile /dev/zero: gives more than 1048576 bytes")


# (id, template, exit code, error text)
TEMPLATES = [
    ("width of 1e8", "{frame:>100000000}.img", 2, "a field width or precision over 255"),
    ("width of 1e10", "{frame:>10000000000}.img", 2, "a field width or precision over 255"),
    ("an index into frame", "x_{frame[0]}.img", 2, "the only field is {frame}"),
    ("another field", "x_{run}_{frame}.img", 2, "the only field is {frame}"),
    ("a nested field", "x_{frame:{w}}.img", 2, "nested field"),
    ("an unmatched brace", "x_{frame.img", 2, "--template"),
    ("a bad format", "x_{frame:q}.img", 2, "use {frame} or {frame:05d}"),
    ("a 1 MB template", "x" * 1_000_000 + "{frame}.img", 2, "characters)"),
]


@pytest.mark.parametrize("label, template, code, text", TEMPLATES,
                         ids=[r[0] for r in TEMPLATES])
def test_series_template_refused(label, template, code, text, workdir, capsys):
    capsys.readouterr()
    got = main(["series", "--frames", "2", "--template", template, *BASE])
    err = capsys.readouterr().err
    assert got == code, err[-500:]
    one_error_line(err, text, prog="nanobragg-nb series")
    assert not list(workdir.glob("*.manifest.json"))


# ------------------------------------------------------- 4. an output over an input

# (id, files/links to make, argv additions, error text)
OVERWRITES = [
    ("-floatfile is the matrix", [], ["-floatfile", "A.mat"], "-floatfile A.mat: that is the -mat"),
    ("-intfile is the hkl file", [], ["-intfile", "./s.hkl"], "that is the -hkl input file"),
    ("through a symlink", [("link", "A.mat")], ["-floatfile", "link.mat"], "the -mat input"),
    ("through a hard link", [("hard", "s.hkl")], ["-intfile", "hard.hkl"], "the -hkl input"),
    ("through ..", [], ["-floatfile", "../{dir}/sources.txt", "-sourcefile", "sources.txt"],
     "the -sourcefile input"),
    ("-pgmfile is the mask", [], ["-pgmfile", "mask.img", "-mask", "mask.img", "-pgm"],
     "the -mask input"),
    ("-noisefile is the -img file", [], ["-noisefile", "mask.img", "-img", "mask.img",
                                         "-noise"], "the -img input"),
    ("-dump is the matrix", [], ["-dump", "A.mat"], "-dump A.mat: that is the -mat input"),
]


@pytest.mark.parametrize("label, links, extra, text", OVERWRITES,
                         ids=[r[0] for r in OVERWRITES])
def test_output_over_input_refused(label, links, extra, text, workdir, capsys):
    for kind, target in links:
        name = "link.mat" if kind == "link" else "hard.hkl"
        (os.symlink if kind == "link" else os.link)(target, workdir / name)
    before = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    extra = [a.replace("{dir}", workdir.name) for a in extra]
    code, _, err = run_in_process(BASE + extra, capsys)
    assert code == 2, err
    one_error_line(err, text)
    after = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    assert after == before


# -geom/-expt are inputs too; our outputs (-crystfel_out's NAME.geom included) are outputs
# (id, model flag and file, argv additions, error text)
MODEL_OVERWRITES = [
    ("-crystfel_out's NAME.geom is the -geom", ["-geom", "det.geom"],
     ["-crystfel_out", "det.h5"], "-crystfel_out det.h5 (its det.geom): that is the -geom"),
    ("-panels_out is the -geom", ["-geom", "det.geom"], ["-panels_out", "./det.geom"],
     "-panels_out ./det.geom: that is the -geom input file det.geom"),
    ("-floatfile is the -geom", ["-geom", "det.geom"], ["-floatfile", "det.geom"],
     "-floatfile det.geom: that is the -geom input file"),
    ("-intfile is the -expt", ["-expt", "in.expt"], ["-intfile", "in.expt"],
     "-intfile in.expt: that is the -expt input file"),
    ("-expt_out is the -expt", ["-expt", "in.expt"], ["-nxmx_out", "new.h5", "-expt_out",
                                                     "in.expt"],
     "-expt_out in.expt: that is the -expt input file"),
    ("-nxmx_out is the -expt", ["-expt", "in.expt"], ["-nxmx_out", "in.expt"],
     "-nxmx_out in.expt: that is the -expt input file"),
    ("-cbffile is the -mat", [], ["-mat", "A_0001.mat", "-cbffile", "A_0001.mat"],
     "-cbffile A_0001.mat: that is the -mat"),
    ("-geometry_out's .poni is the -hkl", [], ["-geometry_out", "s"],
     "-geometry_out s (its s.poni)"),
]


@pytest.mark.parametrize("label, model, extra, text", MODEL_OVERWRITES,
                         ids=[r[0] for r in MODEL_OVERWRITES])
def test_our_outputs_and_model_files(label, model, extra, text, workdir, capsys):
    """Trial finding 1: -geom/-expt were not inputs; an output replaced them silently."""
    pytest.importorskip("h5py")
    pytest.importorskip("fabio")
    shutil.copy(ROOT / "tests" / "data" / "epix10k_like.geom", workdir / "det.geom")
    shutil.copy(workdir / "A.mat", workdir / "A_0001.mat")
    shutil.copy(workdir / "s.hkl", workdir / "s.poni")
    code, _, err = run_in_process(BASE + ["-nxmx_out", "made.h5", "-expt_out", "in.expt"],
                                  capsys)
    assert code == 0, err
    extra = ["-hkl", "s.poni" if "poni" in label else "s.hkl", *extra]
    before = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    code, _, err = run_in_process(BASE + model + extra, capsys)
    assert code == 2, err
    one_error_line(err, text)
    assert "an output must not overwrite an input of the run" in err
    after = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    assert after == before


# (argv additions, error text): our outputs naming one of C's image files
SAME_OUTPUT = [
    (["-intfile", "x.img", "-expt_out", "x.img"], "-expt_out x.img: that is the -intfile"),
    (["-floatfile", "x.bin", "-nxmx_out", "./x.bin"], "-nxmx_out ./x.bin: that is the -floatfile"),
    (["-crystfel_out", "x.h5", "-intfile", "x.geom"], "-crystfel_out x.h5 (its x.geom): that "
                                                      "is the -intfile"),
]


@pytest.mark.parametrize("extra, text", SAME_OUTPUT, ids=[r[1].split(":")[0] for r in SAME_OUTPUT])
def test_our_output_is_not_c_image(extra, text, workdir, capsys):
    pytest.importorskip("h5py")
    before = sorted(p.name for p in workdir.iterdir())
    code, _, err = run_in_process(BASE + extra, capsys)
    assert code == 2, err
    one_error_line(err, text)
    assert "two outputs must not write one file" in err
    assert sorted(p.name for p in workdir.iterdir()) == before


def test_hdf5_output_is_not_a_device(workdir, capsys):
    """-nxmx_out/-crystfel_out rename a finished file into place: never over a device or
    FIFO (a FIFO here: the code before the fix replaced it, as it would /dev/null)."""
    pytest.importorskip("h5py")
    os.mkfifo(workdir / "pipe")
    for flag in ("-nxmx_out", "-crystfel_out"):
        code, _, err = run_in_process(BASE + [flag, "pipe"], capsys)
        assert code == 2, err
        one_error_line(err, f"{flag} pipe: not a regular file")
        assert not (workdir / "pipe").is_file()


def test_devices_may_be_both(workdir, capsys):
    """/dev/null as an output is not an input written over."""
    code, _, err = run_in_process(BASE + ["-floatfile", "/dev/null", "-intfile", "/dev/null"],
                                  capsys)
    assert code == 0, err


# ------------------------------------------------------------- 5. signals and long runs

# 64x64 pixels x 10^8 sub-pixels: hours of work, 10^8 evaluations in every pixel
HUGE_PIXELS = [*BASE[:BASE.index("-detpixels")], "-detpixels", "64", "-oversample", "10000",
               "-noprogress", "-nonoise", "-nopgm", "-floatfile", "f.bin", "-intfile", "i.img"]


@pytest.mark.parametrize("signum, code, text", [
    (signal.SIGINT, 130, "interrupted (SIGINT)"),
    (signal.SIGTERM, 143, "terminated (SIGTERM)"),
    (signal.SIGHUP, 143, "terminated (SIGHUP)"),
], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_seen_at_once_whatever_the_flags(signum, code, text, workdir):
    proc = nb_process(HUGE_PIXELS, workdir)
    try:
        for line in proc.stdout:
            if "pixel oversample steps" in line or "oversample" in line:
                break
        time.sleep(1.5)
        assert proc.poll() is None
        started = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    one_error_line(err, text)
    assert stopped_after < 3, stopped_after
    assert not (workdir / "f.bin").exists() and not list(workdir.glob("*.tmp"))


def test_estimated_time_warning(workdir, capsys):
    from nbnumba.cargs import parse_args
    from nbnumba.validate import check_work

    opts, _ = parse_args(HUGE_PIXELS)
    (warning,) = check_work(opts, threads=2)
    assert "about 4.1e+11 sub-pixel terms" in warning and "hours on 2 CPU" in warning
    opts, _ = parse_args(BASE)
    assert check_work(opts, threads=2) == []
    # the automatic oversample of a large crystal is named, with what -oversample 2 saves
    opts, _ = parse_args(["-cell", "79.1", "79.1", "38.4", "90", "90", "90", "-default_F",
                          "1", "-xtalsize", "0.03", "-lambda", "1", "-distance", "80",
                          "-detpixels", "256", "-pixel", "0.2"])
    (warning,) = check_work(opts, threads=2)
    assert ("the oversample is nanoBragg.c's automatic 2251 for a 30 um crystal "
            "(-oversample 2 makes it 1.27e+06 times faster)") in warning


def test_column_chunks_give_the_same_image(workdir, capsys, monkeypatch):
    """Rows cut into column chunks (one row more than a slice) change no pixel."""
    code, _, err = run_in_process(BASE + ["-oversample", "3", "-floatfile", "rows.bin"], capsys)
    assert code == 0, err
    monkeypatch.setattr(simulate, "CHUNK_WORK", 20.0)  # 2 pixels per chunk
    assert len(simulate.column_chunks(0, 8, 9.0)) == 4
    code, _, err = run_in_process(BASE + ["-oversample", "3", "-floatfile", "chunks.bin"],
                                  capsys)
    assert code == 0, err
    assert (workdir / "rows.bin").read_bytes() == (workdir / "chunks.bin").read_bytes()


# ------------------------------------------------------------------------- 6. series

GOOD_ENTRY = {"file": "img_00000.img", "size": 1, "sha256": "0" * 64}
# (id, manifest text): valid or invalid JSON of the wrong shape
MANIFESTS = [
    ("frames a list", {"frames": []}),
    ("a frame entry a string", {"frames": {"0": "x"}}),
    ("a frame key not a number", {"frames": {"a": GOOD_ENTRY}}),
    ("size a string", {"frames": {"0": dict(GOOD_ENTRY, size="1")}}),
    ("command a list", {"command": []}),
    ("stack a number", {"stack": 3}),
    ("header a number", {"header": 3}),
    ("a JSON list", None),
    ("not JSON", "{not json"),
]


@pytest.mark.parametrize("label, content", MANIFESTS, ids=[r[0] for r in MANIFESTS])
def test_malformed_manifest(label, content, workdir, capsys):
    path = workdir / "img_#.img.manifest.json"
    if isinstance(content, str):
        path.write_text(content)
    elif content is None:
        path.write_text("[1, 2]")
    else:
        path.write_text(json.dumps({"kind": "nbnumba-series-manifest", "version": 1,
                                    **content}))
    capsys.readouterr()
    code = main(["series", "--frames", "2", "--template", "img_{frame:05d}.img",
                         *BASE])
    err = capsys.readouterr().err
    assert code == 3, err
    one_error_line(err, "use --force to start over", prog="nanobragg-nb series")


@pytest.mark.parametrize("frames, text", [
    ("100000000000", "--frames 100000000000: more than 1000000 frames"),
    ("0", "--frames must be at least 1"),
])
def test_frame_count_refused_at_once(frames, text, workdir, capsys):
    started = time.monotonic()
    code = main(["series", "--frames", frames, *BASE])
    err = capsys.readouterr().err
    assert code == 2, err
    assert text in err and "Traceback" not in err
    assert time.monotonic() - started < 30


_HOLD_LOCK = """
import sys, time
from nbnumba.distributed import ManifestLock
lock = ManifestLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_second_series_on_a_template_refused(workdir, capsys):
    manifest = str(workdir / "img_#.img.manifest.json")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, manifest],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        capsys.readouterr()
        code = main(["series", "--frames", "2", "--template", "img_{frame:05d}.img",
                             *BASE])
        err = capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert code == 3, err
    one_error_line(err, "is locked: another series is writing these frames",
                   prog="nanobragg-nb series")
    assert not (workdir / "img_#.img.manifest.json").exists()
    # the holder is gone: its lock went with it
    from nbnumba.distributed import ManifestLock

    ManifestLock(manifest).acquire().release()
    assert not (workdir / ".img_#.img.manifest.json.lock").exists()


@pytest.mark.slow
def test_sigterm_to_series_is_one_line(workdir):
    """A LocalCluster series stopped by SIGTERM: 143, one line, no leaked-semaphore noise."""
    args = ["series", "--frames", "4", "--workers", "1", "--no-progress", "--template",
            "t_{frame}.img", *HUGE_PIXELS]
    proc = nb_process(args, workdir)
    try:
        time.sleep(25)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    one_error_line(err, "terminated (SIGTERM)", prog="nanobragg-nb series")
    assert "semaphore" not in err and "Traceback" not in err


# ----------------------------------------------------------- 7. messages that point right

def test_full_disk_names_the_file(workdir, capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    code, _, err = run_in_process(BASE + ["-floatfile", "/dev/full"], capsys)
    assert code == 4
    one_error_line(err, "cannot write /dev/full: No space left on device")


def test_full_disk_in_atomic_write_names_the_file(workdir):
    def chunks():
        yield b"x"
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        nbio.atomic_write(workdir / "out.bin", chunks())
    assert info.value.filename == str(workdir / "out.bin")
    assert not list(workdir.glob("*.tmp"))


# (id, files, argv additions, exit code, error text)
MESSAGES = [
    ("memory blamed on -mosaic_dom", {}, ["-mosaic_dom", "100000000", "-mosaic", "1"], 4,
     "mostly for 1 phi step(s) x 100000000 mosaic domain(s)"),
    ("memory blamed on the detector", {}, ["-detpixels", "2000000"], 4,
     "mostly for a 2000000x2000000-pixel detector"),
    ("dangling symlink output", {"dangling": "nodir/f.bin"}, ["-floatfile", "dangling"], 3,
     "-floatfile dangling: a symlink to nodir/f.bin, whose folder"),
    ("hkl table too large", {"big.hkl": "0 0 0 1\n1000 1000 1000 1\n"}, ["-hkl", "big.hkl"],
     4, "1002x1002x1002"),
]


@pytest.mark.parametrize("label, files, extra, code, text", MESSAGES,
                         ids=[r[0] for r in MESSAGES])
def test_messages_point_the_right_way(label, files, extra, code, text, workdir, capsys):
    for name, content in files.items():
        if label.startswith("dangling"):
            os.symlink(content, workdir / name)
        else:
            (workdir / name).write_text(content)
    args = list(BASE)
    if extra[0] in args:
        args[args.index(extra[0]) + 1] = extra[1]
        extra = extra[2:]
    got, _, err = run_in_process(args + extra, capsys)
    assert got == code, err
    one_error_line(err, text)


def test_hkl_table_counts_in_the_memory_estimate(workdir):
    from nbnumba.cargs import parse_args
    from nbnumba.validate import estimate_bytes, memory_parts

    (workdir / "wide.hkl").write_text("0 0 0 1\n200 200 200 1\n")
    small, _ = parse_args(BASE)
    wide, _ = parse_args([*BASE, "-hkl", "wide.hkl"])
    parts = memory_parts(wide)
    table = [v for k, v in parts.items() if "-hkl table" in k]
    assert table and table[0] >= 2 * 8 * 201**3
    assert estimate_bytes(wide) - estimate_bytes(small) >= 2 * 8 * 201**3


def test_large_fdump_warned(workdir, capsys, monkeypatch):
    from nbnumba.setup import structure_factors

    monkeypatch.setattr(structure_factors, "FDUMP_WARN_BYTES", 100)
    code, _, err = run_in_process(BASE, capsys)
    assert code == 0
    assert "hkl table to Fdump.bin for later runs" in err


# ------------------------------------------------------------ 8. stale compiled kernels

_STAMP = """
from nbnumba.kernels import exact, vectorised
print(repr(vectorised.rows_kernel((False, False, False, False))._cache._cache_file
            ._source_stamp))
print(repr(exact.render_exact._cache._cache_file._source_stamp))
"""


def _copy_package(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "nbnumba", tree / "nbnumba",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    return tree


def _in_tree(tree: Path, code: str, *args: str, timeout: int = 120) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _edit_physics(tree: Path) -> None:
    """Double the polarization factor (both of its functions): every pixel doubles."""
    physics = tree / "nbnumba" / "kernels" / "physics.py"
    text = physics.read_text()
    for old in ("return (as_float(0.5, psi) *", "return (as_float(0.5, cos2theta) *"):
        assert text.count(old) == 1, old
        text = text.replace(old, old.replace("0.5", "1.0"))
    physics.write_text(text)


def test_kernel_cache_stamp_covers_every_kernel_source(tmp_path):
    tree = _copy_package(tmp_path)
    before = _in_tree(tree, _STAMP)
    assert "nbnumba-kernel-sources" in before
    _edit_physics(tree)  # neither vectorised.py nor exact.py changes
    after = _in_tree(tree, _STAMP)
    assert before.splitlines()[0] != after.splitlines()[0]
    assert before.splitlines()[1] != after.splitlines()[1]


_RUN_TINY = """
import sys
from nbnumba.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_edited_physics_recompiles_the_cached_kernels(tmp_path):
    """The issue's case, whole: a cached kernel, physics.py edited, a fresh process."""
    tree = _copy_package(tmp_path)
    bright = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
              "-lambda", "1", "-pixel", "0.1", "-distance", "50", "-detpixels", "32",
              "-noprogress", "-nonoise", "-nopgm", "-intfile", "i.img"]
    _in_tree(tree, _RUN_TINY, *bright, "-floatfile", "before.bin", timeout=1800)
    _edit_physics(tree)
    _in_tree(tree, _RUN_TINY, *bright, "-floatfile", "after.bin", timeout=1800)
    before = np.fromfile(tree / "before.bin", dtype="<f4")
    after = np.fromfile(tree / "after.bin", dtype="<f4")
    assert before.max() > 0
    np.testing.assert_allclose(after, 2 * before, rtol=1e-6)
