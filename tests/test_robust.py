"""The companions and the Dask client keep nanobragg-nb's promises (issues 27 and 24).

1. every input of every program goes through ``inputs.read_input``: read once, bounded,
   FIFOs and ``/dev/fd`` work, and only what C reads is read (noisify: the bytes the
   detector size needs);
2. the Dask client connects by one rule (a timeout, a handshake, one line naming the
   address, no manifest before it is connected) and a series stops within a second;
3. SIGINT/SIGTERM stop nonbragg-nb, noisify-nb and nb-float-add within a second,
   leaving no files; outputs are checked before any compute;
4. nb-float-add takes bl831 float_add's command lines;
5. smaller fixes (duplicate stol values, a fast stol parser, nested lists as one image);
6. one table: every program against devices, pipes, FIFOs, folders, CRLF and comments,
   under a memory limit.

Real processes throughout (pipes, FIFOs and signals need them); small sizes, so each
case takes a few seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = {"nanobragg-nb": "nbnumba.cli.main", "nonbragg-nb": "nbnumba.cli.nonbragg",
           "noisify-nb": "nbnumba.cli.noisify", "nb-float-add": "nbnumba.cli.float_add"}
STOL = "".join(f"{0.05 * i:g} {2.57 - 0.1 * i:g}\n" for i in range(12))  # a water-like table
NONBRAGG = ["-lambda", "1", "-distance", "100", "-detpixels", "32", "-pixel", "0.8",
            "-nonoise", "-nopgm"]


def env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return dict(os.environ, PYTHONUNBUFFERED="1",
                PYTHONPATH=f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))


def command(prog: str, args: list[str]) -> list[str]:
    return [sys.executable, "-m", MODULES[prog], *args]


def run(prog: str, args: list[str], cwd: Path, timeout: float = 120,
        **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command(prog, args), cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def bash(line: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """A command line with bash's process substitution ``<(...)``."""
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=timeout)


def py(prog: str) -> str:
    return f"{sys.executable} -m {MODULES[prog]}"


def one_error_line(err: str, prog: str, text: str = "") -> str:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith(f"{prog}") and
              ": error: " in line]
    assert len(errors) == 1, err
    assert text in errors[0], (text, errors[0])
    assert len(errors[0]) < 400
    return errors[0]


def feed_fifo(path: Path, data: bytes) -> threading.Thread:
    """Write ``data`` into the FIFO ``path`` from a thread (the reader opens it once)."""
    def write() -> None:
        with open(path, "wb") as f:
            f.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


# ------------------------------------------------------------- 1. the one reader

def test_noisify_reads_only_the_bytes_its_size_needs(tmp_path):
    """noisify.c reads the 16 KiB a 64x64 image needs from /dev/zero and writes its images
    (exit 0); so does noisify-nb (it used to read the device without end)."""
    got = run("noisify-nb", ["-floatfile", "/dev/zero", "-detpixels", "64", "-pixel", "0.1",
                             "-seed", "1"], tmp_path, timeout=60)
    assert got.returncode == 0, got.stderr
    files = {name: (tmp_path / name).read_bytes()
             for name in ("intimage.img", "noiseimage.img", "image.pgm")}
    assert len(files["intimage.img"]) == 512 + 2 * 64 * 64
    c_bin = os.environ.get("NOISIFY_C_BIN")
    if c_bin and Path(c_bin).is_file():
        c_dir = tmp_path / "c"
        c_dir.mkdir()
        subprocess.run([c_bin, "-floatfile", "/dev/zero", "-detpixels", "64", "-pixel",
                        "0.1", "-seed", "1"], cwd=c_dir, capture_output=True, check=True,
                       timeout=60)
        for name, data in files.items():
            assert (c_dir / name).read_bytes() == data, name


def test_noisify_pipe_with_size_flags(tmp_path):
    """A pipe with -detpixels: read its first 4·pixels bytes (C's fread), same images as
    the file."""
    image = np.random.default_rng(1).random(64 * 64, dtype=np.float32) * 100
    (tmp_path / "in.bin").write_bytes(image.tobytes() + b"\0" * 1000)  # longer than needed
    args = ["-detpixels", "64", "-pixel", "0.1", "-seed", "1", "-nopgm"]
    plain = run("noisify-nb", ["-floatfile", "in.bin", *args, "-intfile", "a.img",
                               "-noisefile", "an.img"], tmp_path)
    assert plain.returncode == 0, plain.stderr
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    feed_fifo(fifo, (tmp_path / "in.bin").read_bytes())
    piped = run("noisify-nb", ["-floatfile", "in.fifo", *args, "-intfile", "b.img",
                               "-noisefile", "bn.img"], tmp_path, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert (tmp_path / "a.img").read_bytes() == (tmp_path / "b.img").read_bytes()
    assert (tmp_path / "an.img").read_bytes() == (tmp_path / "bn.img").read_bytes()


@pytest.mark.parametrize("order", ["device second", "device first"])
def test_float_add_on_a_device_is_bounded(tmp_path, order):
    """nb-float-add with /dev/zero: an error line at once (it used to read 24 GB)."""
    (tmp_path / "w.bin").write_bytes(np.ones(256, np.float32).tobytes())
    inputs = ["w.bin", "/dev/zero"] if order == "device second" else ["/dev/zero", "w.bin"]
    got = run("nb-float-add", ["-o", "s.bin", *inputs], tmp_path, timeout=60)
    assert got.returncode == 3, got.stderr
    text = "holds more than 1024 bytes" if order == "device second" else "gives more than"
    one_error_line(got.stderr, "nb-float-add", text)
    assert not (tmp_path / "s.bin").exists()


def test_nonbragg_stol_device_is_bounded(tmp_path):
    got = run("nonbragg-nb", ["-stol", "/dev/zero", *NONBRAGG], tmp_path, timeout=60)
    assert got.returncode == 3, got.stderr
    one_error_line(got.stderr, "nonbragg-nb", "-stol /dev/zero: gives more than 268435456")
    assert not list(tmp_path.iterdir())


def test_nonbragg_stol_fifo_with_a_comment_is_read_once(tmp_path):
    """A '#' line sends the table to C's tokenizer; the FIFO must not be opened twice."""
    text = ("# F of water\n" + STOL).encode()
    (tmp_path / "w.stol").write_bytes(text)
    plain = run("nonbragg-nb", ["-stol", "w.stol", *NONBRAGG, "-floatfile", "a.bin"],
                tmp_path)
    assert plain.returncode == 0, plain.stderr
    fifo = tmp_path / "w.fifo"
    os.mkfifo(fifo)
    feed_fifo(fifo, text)
    got = run("nonbragg-nb", ["-stol", "w.fifo", *NONBRAGG, "-floatfile", "b.bin"],
              tmp_path, timeout=60)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()


@needs_bash
def test_nonbragg_crlf_table_from_process_substitution(tmp_path):
    """`-stol <(cat crlf.stol)` runs like the same file on disk (it said 'no data')."""
    (tmp_path / "crlf.stol").write_bytes(STOL.replace("\n", "\r\n").encode())
    plain = run("nonbragg-nb", ["-stol", "crlf.stol", *NONBRAGG, "-floatfile", "a.bin"],
                tmp_path)
    assert plain.returncode == 0, plain.stderr
    got = bash(f"{py('nonbragg-nb')} -stol <(cat crlf.stol) {' '.join(NONBRAGG)} "
               "-floatfile b.bin", tmp_path)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()

