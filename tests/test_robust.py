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
import signal
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
    # nonBragg.c's second pass over the pipe reads nothing: its image is all NaN
    assert got.stderr.count("is a pipe or device: nonBragg.c reads it twice") == 1


# ------------------------------------------------------------ 2. the Dask client

MAT = "0.0214 0 0\n0 0.0188 0\n0 0 0.0167\n"
HKL = "0 0 1 10\n1 0 0 20\n0 1 0 30\n-1 0 0 5\n"
SERIES = ["-mat", "A.mat", "-hkl", "s.hkl", "-lambda", "1", "-pixel", "0.1", "-distance",
          "100", "-detpixels", "16", "-N", "2", "-osc", "1", "-seed", "1"]


@pytest.fixture
def crystal(tmp_path: Path) -> Path:
    (tmp_path / "A.mat").write_text(MAT)
    (tmp_path / "s.hkl").write_text(HKL)
    return tmp_path


def http_port() -> int:
    """A plain HTTP server (what a scheduler's dashboard port is) on a free port."""
    import http.server

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def banner_port() -> int:
    """A service that greets with a banner and keeps the connection open (sshd)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    kept = []

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            kept.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def refused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


# (id, address maker, exit code, text of the error line)
SCHEDULERS = [
    ("an HTTP server (the dashboard port)", lambda: f"tcp://127.0.0.1:{http_port()}", 4,
     "no Dask handshake within 10 s"),
    ("an unknown scheme", lambda: "nonsense://x", 2, "not a Dask scheduler address"),
    ("a banner-sending service", lambda: f"tcp://127.0.0.1:{banner_port()}", 4,
     "not as a Dask scheduler"),
    ("a port nobody listens on", lambda: f"tcp://127.0.0.1:{refused_port()}", 4,
     "Connection refused"),
    ("no port", lambda: "tcp://127.0.0.1", 2, "tcp://HOST:PORT"),
]


@pytest.mark.parametrize("label, address, code, text", SCHEDULERS,
                         ids=[r[0] for r in SCHEDULERS])
def test_scheduler_connection_rule(label, address, code, text, crystal):
    """Each ends within 30 s with one line naming the address, its exit code, and no
    manifest (it used to hang for minutes, print tracebacks, leave empty manifests)."""
    import time

    where = address()
    started = time.monotonic()
    got = run("nanobragg-nb", ["series", "--frames", "2", "--scheduler", where,
                               "--template", "out/x_{frame:03d}.img", *SERIES], crystal,
              timeout=60)
    assert time.monotonic() - started < 30
    assert got.returncode == code, got.stderr
    line = one_error_line(got.stderr, "nanobragg-nb series", text)
    assert where in line
    assert not list(crystal.glob("**/*.manifest.json"))
    assert not list(crystal.glob("out/x_*"))


def test_tiles_and_the_api_use_the_same_rule(crystal):
    """`tiles --scheduler` and `series(scheduler=...)` inside a running event loop
    (Jupyter) check the address the same way."""
    got = run("nanobragg-nb", ["tiles", "--tiles", "1", "2", "--scheduler", "nonsense://x",
                               *SERIES], crystal, timeout=60)
    assert got.returncode == 2, got.stderr
    one_error_line(got.stderr, "nanobragg-nb tiles", "not a Dask scheduler address")
    import asyncio

    from nbnumba.distributed import SeriesError, check_scheduler

    async def in_a_loop() -> None:
        check_scheduler(f"tcp://127.0.0.1:{http_port()}", timeout_s=2)

    with pytest.raises(SeriesError, match="no Dask handshake within 2 s"):
        asyncio.run(in_a_loop())


def signal_when_computing(args: list[str], cwd: Path, sig: int, after_s: float = 1.0,
                          marker: str = "%", stream: str = "stderr"
                          ) -> tuple[subprocess.Popen, float, str]:
    """Start ``args``, wait for a line holding ``marker`` on ``stream`` (the computation
    has begun: a progress bar, or C's last setup line), wait ``after_s``, send ``sig``;
    returns the process, the seconds it took to end after the signal, and its stderr.

    With ``stream="stderr"`` stderr is a terminal (a pseudo-terminal), as for a user who
    presses Ctrl-C: progress bars draw there at once (in a pipe they write a line only
    every 30 s)."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    if stream == "stderr":
        watched, terminal = pty.openpty()
        # a terminal of 0x0 characters (a new pseudo-terminal's) draws tqdm's bar empty
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        err_to = terminal
    else:
        terminal = None
        err_to = subprocess.PIPE
    proc = subprocess.Popen(args, cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=err_to,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if terminal is not None:
        os.close(terminal)  # the child holds it: reading gives EOF (EIO) once it ends
    else:
        watched = proc.stdout.fileno()

    def read_some(timeout: float) -> bytes | None:
        ready, _, _ = select.select([watched], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(watched, 65536) or None  # raw: no buffer hides lines from select
        except OSError:  # a pseudo-terminal whose other end closed
            return None

    seen = b""
    try:
        deadline = time.monotonic() + 120
        while marker.encode() not in seen and time.monotonic() < deadline:
            chunk = read_some(0.5)
            if chunk is None:
                break
            seen += chunk
        assert marker.encode() in seen, seen[-2000:]
        time.sleep(after_s)
        assert proc.poll() is None, "ended before the signal: make the run longer"
        sent = time.monotonic()
        proc.send_signal(sig)
        if terminal is not None:
            rest = b""
            while (chunk := read_some(60)) is not None and chunk:
                rest += chunk
            proc.communicate(timeout=60)
            took = time.monotonic() - sent
            return proc, took, (seen + rest).decode(errors="replace")
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
        return proc, took, err.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if terminal is not None:
            os.close(watched)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_series_stops_within_a_second(sig, code, crystal):
    """A frame takes several seconds; the series ends within 1 s of the signal (it
    waited for the frame before), one line, finished frames kept, no temporaries."""
    heavy = [a if a != "16" else "512" for a in SERIES] + ["-mosaic", "1", "-mosaic_dom",
                                                           "200", "-phisteps", "4"]
    args = command("nanobragg-nb", ["series", "--frames", "2", "--workers", "1",
                                    "--template", "out/x_{frame:03d}.img", *heavy])
    proc, took, err = signal_when_computing(args, crystal, sig)
    assert proc.returncode == code, err
    assert took < 1.0, took
    one_error_line(err, "nanobragg-nb series", "finished frames are kept")
    assert not list(crystal.glob("out/.*tmp"))


def test_tiles_stops_within_a_second(crystal):
    """`tiles` on its own LocalCluster: SIGTERM during the render ends it within 1 s
    (the workers are killed, not waited for), one line, no file."""
    heavy = [a if a != "16" else "512" for a in SERIES] + ["-mosaic", "1", "-mosaic_dom",
                                                           "200", "-phisteps", "4"]
    args = command("nanobragg-nb", ["tiles", "--tiles", "2", "1", "--workers", "1", *heavy,
                                    "-floatfile", "t.bin", "-intfile", "t.img"])
    proc, took, err = signal_when_computing(args, crystal, signal.SIGTERM,
                                            marker="mosaic domains", stream="stdout")
    assert proc.returncode == 143, err
    assert took < 1.0, took
    one_error_line(err, "nanobragg-nb", "terminated (SIGTERM)")
    # Fdump.bin is nanoBragg.c's cache of the -hkl table, written before the render
    assert sorted(p.name for p in crystal.iterdir()) == ["A.mat", "Fdump.bin", "s.hkl"]


# ------------------------------------------ 3. signals, outputs first, compile notice

SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]


@pytest.mark.parametrize("sig, code", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_nonbragg_stops_within_a_second(sig, code, tmp_path):
    """Inside its kernel (a run of minutes), nonbragg-nb ends within 1 s of the signal,
    one line, no file (it used to finish the kernel first)."""
    (tmp_path / "w.stol").write_text(STOL)
    args = command("nonbragg-nb", ["-stol", "w.stol", "-lambda", "1", "-distance", "100",
                                   "-detpixels", "2048", "-pixel", "0.05", "-oversample",
                                   "16", "-dispersion", "1", "-dispsteps", "4"])
    proc, took, err = signal_when_computing(args, tmp_path, sig, marker="oversample steps",
                                            stream="stdout")
    assert proc.returncode == code, err
    assert took < 1.0, took
    one_error_line(err, "nonbragg-nb", "interrupted" if code == 130 else "terminated")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.stol"]


@pytest.mark.parametrize("sig, code", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_noisify_stops_within_a_second(sig, code, tmp_path):
    """Inside its PSF (a 2048² image, radius 60), noisify-nb ends within 1 s."""
    image = np.zeros(2048 * 2048, np.float32)
    image[:] = 1000.0
    (tmp_path / "in.bin").write_bytes(image.tobytes())
    args = command("noisify-nb", ["-floatfile", "in.bin", "-detpixels", "2048", "-psf",
                                  "gauss", "-psf_fwhm", "2000", "-psf_radius", "60",
                                  "-seed", "1"])
    proc, took, err = signal_when_computing(args, tmp_path, sig, marker="rendering radius",
                                            stream="stdout")
    assert proc.returncode == code, err
    assert took < 1.0, took
    one_error_line(err, "noisify-nb", "interrupted" if code == 130 else "terminated")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin"]


def test_float_add_stops_within_a_second(tmp_path):
    """Waiting on a FIFO nobody writes, nb-float-add ends within 1 s of SIGTERM."""
    import time

    os.mkfifo(tmp_path / "never.fifo")
    (tmp_path / "a.bin").write_bytes(np.ones(4, np.float32).tobytes())
    proc = subprocess.Popen(command("nb-float-add", ["-o", "s.bin", "a.bin", "never.fifo"]),
                            cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3.0)
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - sent < 1.0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    one_error_line(err, "nb-float-add", "terminated (SIGTERM)")
    assert not (tmp_path / "s.bin").exists()


# (program, args, the error's text): an unwritable output with an input that would block
# or a computation of minutes: refused at once, before reading or computing
OUTPUTS_FIRST = [
    ("nonbragg-nb", ["-stol", "w.stol", "-lambda", "1", "-distance", "100", "-detpixels",
                     "4096", "-oversample", "32", "-floatfile", "nodir/x.bin"],
     "-floatfile nodir/x.bin: folder nodir does not exist"),
    ("nonbragg-nb", ["-stol", "never.fifo", *NONBRAGG, "-intfile", "nodir/x.img"],
     "-intfile nodir/x.img: folder nodir does not exist"),
    ("noisify-nb", ["-floatfile", "never.fifo", "-detpixels", "64", "-noisefile",
                    "nodir/n.img"], "-noisefile nodir/n.img: folder nodir does not exist"),
    ("noisify-nb", ["-floatfile", "w.stol", "-detpixels", "4", "-intfile", "w.stol"],
     "-intfile w.stol: that is the -floatfile input file w.stol"),
    ("nonbragg-nb", ["-stol", "w.stol", *NONBRAGG, "-floatfile", "w.stol"],
     "-floatfile w.stol: that is the -stol input file w.stol"),
    ("nb-float-add", ["-o", "nodir/s.bin", "never.fifo", "never.fifo"],
     "-o nodir/s.bin: folder nodir does not exist"),
]


@pytest.mark.parametrize("prog, args, text", OUTPUTS_FIRST,
                         ids=[f"{r[0]} {r[2].split(':')[0]}" for r in OUTPUTS_FIRST])
def test_outputs_are_checked_before_anything_else(prog, args, text, tmp_path):
    (tmp_path / "w.stol").write_text(STOL)
    os.mkfifo(tmp_path / "never.fifo")
    got = run(prog, args, tmp_path, timeout=30)
    assert got.returncode in (2, 3), got.stderr
    one_error_line(got.stderr, prog, text)
    assert "reading" not in got.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["never.fifo", "w.stol"]


def test_compile_notice_when_numba_compiles(capsys):
    """noisify-nb and nonbragg-nb say once that they compile (a cache miss), as
    nanobragg-nb does; loading from the cache says nothing."""
    from numba import njit

    from nbnumba.progress import notice_when_compiling

    @njit
    def fresh(x):
        return x + 1

    with notice_when_compiling("noisify-nb"):
        fresh(1)
        fresh(1.5)
    err = capsys.readouterr().err
    assert err.count("noisify-nb: compiling the Numba kernels") == 1, err
    with notice_when_compiling("noisify-nb"):
        fresh(2)  # compiled already
    assert capsys.readouterr().err == ""


# ------------------------------------------------ 4. bl831 float_add's command lines

FLOAT_ADD_LINES = [  # float_add.c's documented and scripted uses (bl831/bin_stuff)
    "a.bin b.bin",
    "a.bin",
    "a.bin b.bin out3.bin",
    "a.bin b.bin -scale1 0.5 -scale2 2 -outfile sum.bin",
    "a.bin b.bin -output c.bin -offset 40 -outoffset 3",
    "a.bin a.bin -scale1 0.625 -scale2 0 -ignore 0 -ignore 65535 -offset 40 -outoffset 0 "
    "-outfile photons.bin",
    "a.bin b.bin -normalize -outscale 2 -outfile r.bin",
    "m.map -header 1104 -histogram -outfile h.map",
    "a.bin /dev/zero -outfile z.bin",
]


def float_add_inputs(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    a = (rng.random(5000) * 100).astype(np.float32)
    a[7], a[9] = 0, 65535
    b = (rng.random(5000) * 50 - 10).astype(np.float32)
    b[11] = np.nan
    (folder / "a.bin").write_bytes(a.tobytes())
    (folder / "b.bin").write_bytes(b.tobytes())
    (folder / "m.map").write_bytes(b"X" * 1104 + a.tobytes())
    return a, b


@pytest.mark.parametrize("line", FLOAT_ADD_LINES)
def test_float_add_command_lines(line, tmp_path):
    """bl831 float_add's flags (-scale1/-scale2/-outfile/-output/-offset/-outoffset/
    -outscale/-header/-normalize/-histogram/-ignore) and its positional output: exit 0,
    its stdout and its file (compared with FLOAT_ADD_C_BIN when set)."""
    a, b = float_add_inputs(tmp_path)
    ours = tmp_path / "ours"
    ours.mkdir()
    args = [f"../{w}" if w.endswith((".bin", ".map")) and not w.startswith("/")
            and w in ("a.bin", "b.bin", "m.map") else w for w in line.split()]
    got = run("nb-float-add", args, ours, timeout=60)
    assert got.returncode == 0, got.stderr
    assert "writing" in got.stdout and "CC = " in got.stdout
    written = sorted(p.name for p in ours.iterdir())
    assert len(written) == 1
    if "-scale1 0.5 -scale2 2" in line:
        expected = (0.5 * a.astype(np.float64) + 2.0 * b.astype(np.float64)).astype(np.float32)
        assert (ours / "sum.bin").read_bytes() == expected.tobytes()
    c_bin = os.environ.get("FLOAT_ADD_C_BIN")
    if c_bin and Path(c_bin).is_file():
        theirs = tmp_path / "c"
        theirs.mkdir()
        c = subprocess.run([c_bin, *args], cwd=theirs, capture_output=True, text=True,
                           timeout=60)
        assert c.stdout == got.stdout
        assert sorted(p.name for p in theirs.iterdir()) == written
        assert (theirs / written[0]).read_bytes() == (ours / written[0]).read_bytes()


def test_float_add_own_form_and_refusals(tmp_path):
    """`A B -o S` keeps its meaning; -reject (not reproduced) and no input: exit 2."""
    float_add_inputs(tmp_path)
    got = run("nb-float-add", ["a.bin", "b.bin", "-o", "s.bin"], tmp_path)
    assert got.returncode == 0 and got.stdout.startswith("wrote s.bin"), got.stderr
    got = run("nb-float-add", ["a.bin", "-reject"], tmp_path)
    assert got.returncode == 2
    one_error_line(got.stderr, "nb-float-add", "-reject")
    got = run("nb-float-add", ["x.dat"], tmp_path)
    assert got.returncode == 2 and got.stdout.startswith("usage: float_add")
    one_error_line(got.stderr, "nb-float-add", "no input")


# --------------------------------------------------------------- 5. smaller fixes

DUPLICATE_STOL = "0 2.5\n0 2.5\n0.05 2.3\n0.1 2.0\n0.1 2.1\n0.2 1.5\n0.3 1.2\n0.4 1.0\n0.5 0.9\n"


def test_duplicate_stol_values_give_clean_lines(tmp_path):
    """No raw numpy 'invalid value encountered' line, neither from the CLI nor the API;
    the image is C's (NONBRAGG_C_BIN)."""
    (tmp_path / "dup.stol").write_text(DUPLICATE_STOL)
    got = run("nonbragg-nb", ["-stol", "dup.stol", *NONBRAGG, "-floatfile", "d.bin"],
              tmp_path)
    assert got.returncode == 0, got.stderr
    assert "encountered" not in got.stderr
    assert "repeated stol value" in got.stderr and "'#'" not in got.stderr
    api = subprocess.run([sys.executable, "-W", "always", "-c",
                          "import nbnumba as nb; nb.NonBragg(stol='dup.stol', detpixels=32, "
                          "pixel=0.8, nonoise=True).run()"],
                         cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
    assert api.returncode == 0, api.stderr
    assert "encountered" not in api.stderr, api.stderr
    c_bin = os.environ.get("NONBRAGG_C_BIN")
    if c_bin and Path(c_bin).is_file():
        subprocess.run([c_bin, "-stol", "dup.stol", *NONBRAGG, "-floatfile", "c.bin"],
                       cwd=tmp_path, capture_output=True, check=True, timeout=60)
        assert (tmp_path / "c.bin").read_bytes() == (tmp_path / "d.bin").read_bytes()


def test_a_million_row_table_is_read_fast_and_lean(tmp_path):
    """The two-column scanner reads 10⁶ rows in well under a second into two arrays
    (it took 3.8 s and 336 MB through Python floats), exactly as C's atof."""
    import time

    from nbnumba.io import read_text_file
    from nbnumba.textscan import scan_two_columns

    rows = 1_000_000
    text = "".join(f"{i * 1e-6:.6f} {2.5 - i * 1e-6:.6f}\n" for i in range(rows)).encode()
    scan_two_columns(b"0 1\n")  # compiled or loaded from the cache first
    started = time.perf_counter()
    first, second = scan_two_columns(text)
    took = time.perf_counter() - started
    assert first.size == rows and took < 1.0, took
    assert first.nbytes + second.nbytes <= 16 * rows + 64
    sample = b"".join(text.splitlines(keepends=True)[::997])
    (tmp_path / "sample.stol").write_bytes(sample)
    ref = read_text_file(tmp_path / "sample.stol", 2)
    got = scan_two_columns(sample)
    assert np.array_equal(ref[0], got[0]) and np.array_equal(ref[1], got[1])


@pytest.mark.parametrize("text", [
    "0.1 2\n", "  0.1\t2 # note\n\n", "0.1,2\r\n", "1e-3;4!x\n", "0.1 2", ".5 3.\n",
])
def test_two_column_scanner_agrees_with_c_reader(text, tmp_path):
    from nbnumba.io import read_text_file
    from nbnumba.textscan import scan_two_columns

    (tmp_path / "t.stol").write_text(text)
    got = scan_two_columns(text.encode())
    ref = read_text_file(tmp_path / "t.stol", 2)
    assert got is not None
    assert np.array_equal(ref[0], got[0]) and np.array_equal(ref[1], got[1], equal_nan=True)


@pytest.mark.parametrize("text", ["0.1\n", "0.1\r\n", "# c\n0 1\n", "0x1 2\n", "1 2\0\n",
                                  "0.1 2\n   "])
def test_two_column_scanner_leaves_the_rest_to_c_reader(text):
    from nbnumba.textscan import scan_two_columns

    assert scan_two_columns(text.encode()) is None


def test_noisify_nested_list_is_one_image():
    """`run(image=w.tolist())` is the image w (it summed w's rows as separate images)."""
    import nbnumba as nb

    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    a = nb.Noisify(seed=1, nonoise=True).run(image=w)
    b = nb.Noisify(seed=1, nonoise=True).run(image=w.tolist())
    assert b.image.shape == (3, 4)
    assert np.array_equal(a.image, b.image)
    several = nb.Noisify(seed=1, nonoise=True).run(image=[w.tolist(), w.tolist()])
    assert np.array_equal(several.image, nb.Noisify(seed=1, nonoise=True).run(
        image=[w, w]).image)


# ---------------------------------------------- 6. one table: every program, every input

MEMORY_LIMIT = 6 << 30  # address space: generous for Numba and Dask, far below a runaway read
SOURCES = "-10 0 0 1 1e-10\n-10 0.01 0 1 1e-10\n"
KINDS = ["/dev/zero", "/dev/urandom", "a FIFO", "<(...)", "a folder", "CRLF lines",
         "comment lines"]


def limited() -> None:
    import resource

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.fixture(scope="module")
def scheduler():
    """One small Dask cluster for the table's series and tiles rows (each row then costs
    a process start, not a cluster start)."""
    distributed = pytest.importorskip("distributed")
    os.environ["PYTHONPATH"] = env()["PYTHONPATH"]  # the workers import this tree
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def input_text(prog: str, kind: str) -> bytes:
    """What a FIFO, a ``<(...)``, or the CRLF/comment file holds for ``prog``'s input."""
    if prog == "noisify-nb":
        return np.arange(64, dtype=np.float32).tobytes()
    if prog == "nb-float-add":
        return np.ones(16, np.float32).tobytes()
    text = STOL if prog == "nonbragg-nb" else SOURCES
    if kind == "CRLF lines":
        text = text.replace("\n", "\r\n")
    if kind == "comment lines":
        text = "# a table, as written by hand\n" + text + "# end\n"
    return text.encode()


def table_command(prog: str, where: str, address: str) -> str:
    """The command line of ``prog`` with its input (the one under test) at ``where``."""
    nano = ("-mat A.mat -hkl s.hkl -lambda 1 -pixel 0.1 -distance 100 -detpixels 8 -N 2 "
            f"-noprogress -nonoise -nopgm -seed 1 -sourcefile {where}")
    if prog == "nanobragg-nb":
        return f"{py(prog)} {nano} -floatfile f.bin -intfile i.img"
    if prog == "series":
        return (f"{py('nanobragg-nb')} series --frames 1 --scheduler {address} "
                f"--template out/x_{{frame:03d}}.img --no-progress {nano}")
    if prog == "tiles":
        return (f"{py('nanobragg-nb')} tiles --tiles 1 2 --scheduler {address} "
                f"--no-progress {nano} -floatfile f.bin -intfile i.img")
    if prog == "nonbragg-nb":
        return f"{py(prog)} -stol {where} {' '.join(NONBRAGG)} -floatfile f.bin"
    if prog == "noisify-nb":
        return f"{py(prog)} -floatfile {where} -detpixels 8 -seed 1"
    return f"{py(prog)} -o s.bin ones.bin {where}"


# per program: (kind -> (exit code, error text)); a kind left out does not apply
# (binary inputs have no lines). Random bytes and devices end in a bounded error,
# except for noisify, which reads the 256 bytes an 8x8 image needs, as noisify.c does.
BOUNDED = (3, "gives more than 268435456 bytes")
FOLDER = (3, "is a folder")
OK = (0, None)
TEXT_INPUT = {"/dev/zero": BOUNDED, "/dev/urandom": BOUNDED, "a FIFO": OK, "<(...)": OK,
              "a folder": FOLDER, "CRLF lines": OK, "comment lines": OK}
EXPECTED = {
    "nanobragg-nb": TEXT_INPUT, "series": TEXT_INPUT, "tiles": TEXT_INPUT,
    "nonbragg-nb": TEXT_INPUT,
    "noisify-nb": {"/dev/zero": OK, "/dev/urandom": OK, "a FIFO": OK, "<(...)": OK,
                   "a folder": FOLDER},
    "nb-float-add": {"/dev/zero": (3, "holds more than 64 bytes"),
                     "/dev/urandom": (3, "holds more than 64 bytes"), "a FIFO": OK,
                     "<(...)": OK, "a folder": FOLDER},
}
TABLE = [(prog, kind, *EXPECTED[prog][kind]) for prog in EXPECTED for kind in KINDS
         if kind in EXPECTED[prog]]


@needs_bash
@pytest.mark.parametrize("prog, kind, code, text", TABLE,
                         ids=[f"{r[0]} {r[1]}" for r in TABLE])
def test_every_program_every_input(prog, kind, code, text, tmp_path, request):
    """Exit code and one line as documented (or C's result where C runs it), within a
    minute, under an address-space limit; a failed run leaves no file."""
    address = request.getfixturevalue("scheduler") if prog in ("series", "tiles") else ""
    (tmp_path / "A.mat").write_text(MAT)
    (tmp_path / "s.hkl").write_text(HKL)
    (tmp_path / "ones.bin").write_bytes(np.ones(16, np.float32).tobytes())
    data = input_text(prog, kind)
    (tmp_path / "data.in").write_bytes(data)
    where = {"/dev/zero": "/dev/zero", "/dev/urandom": "/dev/urandom", "a FIFO": "in.fifo",
             "<(...)": "<(cat data.in)", "a folder": "afolder"}.get(kind, "data.in")
    if kind == "a FIFO":
        os.mkfifo(tmp_path / "in.fifo")
        feed_fifo(tmp_path / "in.fifo", data)
    if kind == "a folder":
        (tmp_path / "afolder").mkdir()
    before = {p.name for p in tmp_path.iterdir()}
    got = subprocess.run(["bash", "-c", table_command(prog, where, address)], cwd=tmp_path,
                         env=env(), capture_output=True, text=True, timeout=120,
                         preexec_fn=limited)
    assert "Traceback" not in got.stderr, got.stderr
    assert got.returncode == code, got.stderr[-3000:]
    if text is not None:
        name = {"series": "nanobragg-nb series", "tiles": "nanobragg-nb tiles"}.get(prog, prog)
        one_error_line(got.stderr, name, text)
        assert {p.name for p in tmp_path.iterdir()} == before
        return
    if prog == "nonbragg-nb" and kind in ("CRLF lines", "comment lines"):
        c_bin = os.environ.get("NONBRAGG_C_BIN")
        if c_bin and Path(c_bin).is_file():  # C reads these files: the same image
            subprocess.run([c_bin, "-stol", "data.in", *NONBRAGG, "-floatfile", "c.bin"],
                           cwd=tmp_path, capture_output=True, check=True, timeout=60)
            assert (tmp_path / "c.bin").read_bytes() == (tmp_path / "f.bin").read_bytes()
    if prog == "noisify-nb" and kind == "/dev/zero":
        c_bin = os.environ.get("NOISIFY_C_BIN")
        if c_bin and Path(c_bin).is_file():  # noisify.c runs it: the same images
            c_dir = tmp_path / "c"
            c_dir.mkdir()
            subprocess.run([c_bin, "-floatfile", "/dev/zero", "-detpixels", "8", "-seed",
                            "1"], cwd=c_dir, capture_output=True, check=True, timeout=60)
            for name in ("intimage.img", "noiseimage.img", "image.pgm"):
                assert (c_dir / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_float_add_never_drops_an_input_silently(tmp_path):
    """TRIAL 3: `nb-float-add water.bin air.bin spots.bin -o total.bin -nostats` wrote
    water + air (the bl831 form sums two); `--bogus` and `-scale1 abc` (read as 0) went
    without a word. The mixed form and a second output name are refused (exit 2, no file);
    what float_add ignores or reads as 0 is one warning line."""
    a, b = float_add_inputs(tmp_path)
    (tmp_path / "c.bin").write_bytes(a.tobytes())
    got = run("nb-float-add", ["a.bin", "b.bin", "c.bin", "-o", "t.bin", "-nostats"], tmp_path)
    assert got.returncode == 2 and not (tmp_path / "t.bin").exists()
    one_error_line(got.stderr, "nb-float-add", "sums any number of inputs")
    got = run("nb-float-add", ["a.bin", "b.bin", "out.bin", "d.bin"], tmp_path)
    assert got.returncode == 2 and not (tmp_path / "out.bin").exists()
    one_error_line(got.stderr, "nb-float-add", "a second output")
    got = run("nb-float-add", ["a.bin", "b.bin", "-scale1"], tmp_path)
    assert got.returncode == 2
    one_error_line(got.stderr, "nb-float-add", "-scale1 needs a value")
    for extra, words in ((["--bogus"], "'--bogus': not a float_add option"),
                         (["-scale1", "abc"], "-scale1 abc: float_add's atof() reads 'abc' as 0"),
                         (["c.img"], "'c.img': not a .bin or .map name")):
        (tmp_path / "s.bin").unlink(missing_ok=True)  # a new output: no replace warning
        got = run("nb-float-add", ["a.bin", "b.bin", "s.bin", *extra], tmp_path)
        assert got.returncode == 0, got.stderr
        assert got.stderr.splitlines() == [f"warning: {words}" + got.stderr.split(words)[1]
                                           .splitlines()[0]], got.stderr
    # the documented lines stay silent; a negative option value is no option
    got = run("nb-float-add", ["a.bin", "b.bin", "-offset", "-5", "-outfile", "n.bin"],
              tmp_path)
    assert got.returncode == 0 and got.stderr == "", got.stderr


def test_float_add_says_when_its_third_name_replaces_a_file(tmp_path):
    """`nb-float-add a.bin b.bin c.bin` (an -o forgotten) is bl831 float_add's form: c.bin is
    its output, replaced as C does, with one warning that says so; a new third name, or an
    -outfile, gets none."""
    a, b = float_add_inputs(tmp_path)
    (tmp_path / "c.bin").write_bytes(a.tobytes())
    got = run("nb-float-add", ["a.bin", "b.bin", "c.bin"], tmp_path)
    assert got.returncode == 0, got.stderr
    assert got.stderr.splitlines() == [
        "warning: c.bin: bl831 float_add takes a third file name as its output and replaces "
        "the file there (nb-float-add A B C -o SUM sums three images)"]
    assert (tmp_path / "c.bin").read_bytes() == (a + b).astype("<f4").tobytes()
    for args in (["a.bin", "b.bin", "new.bin"], ["a.bin", "b.bin", "-outfile", "c.bin"]):
        got = run("nb-float-add", args, tmp_path)
        assert got.returncode == 0 and got.stderr == "", (args, got.stderr)


LOST_SIGNAL = """
import ctypes, os, signal, sys, time
import importlib
module = importlib.import_module({module!r})
real = getattr(module, {name!r})

def lost_signal():
    os.kill(os.getpid(), {sig})
    time.sleep(0.2)  # the handler runs here, inside a ctypes callback: its exception is dropped

callback = ctypes.CFUNCTYPE(None)(lost_signal)

def sabotaged(*args, **kwargs):
    callback()
    return real(*args, **kwargs)

setattr(module, {name!r}, sabotaged)
sys.argv = [{prog!r}, *{args!r}]
from {cli} import main
main()
"""


@pytest.mark.parametrize("sig, code", SIGNALS, ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("prog, module, name", [
    ("nonbragg-nb", "nbnumba.companions.nonbragg_setup", "_read_table"),
    ("noisify-nb", "nbnumba.companions.noisify", "_as_float32")])
def test_a_signal_whose_exception_python_drops_still_ends_the_run(prog, module, name, sig,
                                                                   code, tmp_path):
    """A signal that lands while Numba's start-up is inside a ctypes callback (or an import
    inside a weakref callback) has its KeyboardInterrupt printed as "Exception ignored" and
    dropped by Python: the run still ends at its next phase (the pixel loop, the draws),
    long before its minutes of work, with the signal's exit code, one line and no file."""
    (tmp_path / "w.stol").write_text(STOL)
    (tmp_path / "in.bin").write_bytes(np.full(2048 * 2048, 1000.0, np.float32).tobytes())
    args = {"nonbragg-nb": ["-stol", "w.stol", "-lambda", "1", "-distance", "100",
                            "-detpixels", "2048", "-pixel", "0.05", "-oversample", "16",
                            "-dispersion", "1", "-dispsteps", "4"],
            "noisify-nb": ["-floatfile", "in.bin", "-detpixels", "2048", "-seed", "1",
                           "-psf", "gauss", "-psf_fwhm", "2000", "-psf_radius", "60"]}[prog]
    script = LOST_SIGNAL.format(module=module, name=name, sig=int(sig), prog=prog, args=args,
                                cli=MODULES[prog])
    before = set(os.listdir(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=60)
    assert "Exception ignored" in proc.stderr  # the exception was dropped, as in the wild
    assert proc.returncode == code, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"{prog}: error: ")]
    assert len(errors) == 1 and ("interrupted" if code == 130 else "terminated") in errors[0]
    assert set(os.listdir(tmp_path)) == before


def test_a_program_run_leaves_no_signal_behind(tmp_path, monkeypatch):
    """A program run in-process (a notebook calling main()) that ended on a signal leaves
    nothing for later library calls: their kernels run."""
    import nbnumba as nb
    from nbnumba.cli.common import Console, Job, run_job
    from nbnumba.errors import EXIT_INTERRUPTED

    class Interrupted(Job):
        def execute(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(1.0)  # the handler raises here

    assert run_job(Interrupted([], Console("nonbragg-nb"))) == EXIT_INTERRUPTED
    monkeypatch.chdir(tmp_path)
    image = nb.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, N=1, detpixels=4,
                          progress=False).run().image
    assert image.shape == (4, 4)
