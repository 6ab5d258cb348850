"""Series and tiles on a Dask LocalCluster of 2 single-threaded worker processes.

Every frame of a series must equal the single run it stands for, bit for bit, also
when a worker is killed mid-run; a re-run skips complete frames; a tiled image (and
its stdout) equals the single-process one, with -c_parity and with C's interpolation
switch-off too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

pytest.importorskip("distributed")

from conftest import run_main  # noqa: E402
from golden import run_nb  # noqa: E402

from nbnumba.cli.main import main  # noqa: E402
from nbnumba.distributed import SeriesError, frame_command, local_cluster_client  # noqa: E402

FRAMES = 6
# 64x64 pixels, noise on
ARGS = ("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1.0 -detpixels 64 "
        "-pixel 0.4 -distance 100 -osc 0.5 -phisteps 4 -mosaic 0.3 -mosaic_dom 8 "
        "-seed 7").split()
# the same with frames long enough (about 1 s) to kill a worker in the middle of one
SLOW_FRAMES = 5
SLOW_ARGS = [*ARGS, "-mosaic_dom", "100"]
START, OSC, SEED = 0.0, 0.5, 7


def outputs(i: int) -> list[str]:
    return ["-floatfile", f"float_{i}.bin", "-intfile", f"int_{i}.img",
            "-noisefile", f"noise_{i}.img", "-nopgm"]


def single_runs(folder: Path, args: list[str], frames: int) -> Path:
    """The single runs the frames stand for."""
    for i in range(frames):
        result = run_nb(frame_command(args, i, START, OSC, SEED) + outputs(i), folder)
        assert result.code == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> Path:
    # this also fills the kernel cache on disk, so the workers load it, not compile it
    return single_runs(tmp_path_factory.mktemp("single"), ARGS, FRAMES)


@pytest.fixture(scope="module")
def slow_references(tmp_path_factory) -> Path:
    return single_runs(tmp_path_factory.mktemp("slow"), SLOW_ARGS, SLOW_FRAMES)


@pytest.fixture(scope="module")
def client(references):
    c = local_cluster_client(2)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


def assert_frames_equal(folder: Path, references: Path, frames: int = FRAMES) -> None:
    for i in range(frames):
        got = (folder / f"img_{i:02d}.img").read_bytes()
        assert got == (references / f"noise_{i}.img").read_bytes(), f"frame {i}"
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "img_#.img.manifest.json").read_text())


def test_series_equals_single_runs_and_restarts(tmp_path, references, client):
    from nbnumba import series

    template = tmp_path / "img_{frame:02d}.img"
    run = series(ARGS, FRAMES, client=client, template=template)
    assert run.computed == list(range(FRAMES)) and run.skipped == []
    assert_frames_equal(tmp_path, references)
    entries = manifest_of(tmp_path)["frames"]
    assert sorted(map(int, entries)) == list(range(FRAMES))
    assert entries["3"]["size"] == (tmp_path / "img_03.img").stat().st_size

    # a re-run (through the CLI, on the same cluster) skips every finished frame
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("img_*.img")}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["series", "--frames", str(FRAMES), "--template", str(template),
                     "--scheduler", client.scheduler.address, "--no-progress", *ARGS])
    assert code == 0
    assert "0 frame(s) computed, 6 already complete" in out.getvalue()
    assert stamps == {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("img_*.img")}

    # a lost and a truncated frame are computed again, the others kept
    (tmp_path / "img_02.img").unlink()
    with open(tmp_path / "img_04.img", "r+b") as f:
        f.truncate(1000)
    run = series(ARGS, FRAMES, client=client, template=template)
    assert run.computed == [2, 4]
    assert_frames_equal(tmp_path, references)

    # --force computes everything again
    run = series(ARGS, FRAMES, client=client, template=template, force=True)
    assert run.computed == list(range(FRAMES))
    assert_frames_equal(tmp_path, references)

    # a different command does not reuse these frames
    with pytest.raises(SeriesError, match="different series"):
        series([*ARGS, "-N", "4"], FRAMES, client=client, template=template)


def executing(dask_worker) -> list[str]:
    """The keys a worker is running right now (for ``client.run``)."""
    return [str(ts.key) for ts in dask_worker.state.executing]


def test_killed_worker_loses_no_frame(tmp_path, slow_references, client):
    from nbnumba import series

    pids = client.run(os.getpid)
    run = series(SLOW_ARGS, SLOW_FRAMES, client=client,
                 template=tmp_path / "img_{frame:02d}.img", wait=False)
    # once a frame is done (workers warm), kill a worker in the middle of its frame
    deadline = time.monotonic() + 120
    while not any(f.done() for f in run.futures.values()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    victim = None
    while victim is None:
        assert time.monotonic() < deadline
        busy = [(w, keys) for w, keys in client.run(executing).items() if keys and w in pids]
        victim, keys = busy[0] if busy else (None, None)
    os.kill(pids[victim], signal.SIGKILL)
    assert keys[0].startswith("nbnumba-frame-")
    run.wait()
    assert_frames_equal(tmp_path, slow_references, SLOW_FRAMES)
    assert sorted(map(int, manifest_of(tmp_path)["frames"])) == list(range(SLOW_FRAMES))
    assert not psutil.pid_exists(pids[victim]) or \
        psutil.Process(pids[victim]).status() == psutil.STATUS_ZOMBIE


def test_stack_and_cbf(tmp_path, references, client):
    """.h5 is an NXmx master (frames as the single runs' float images), .cbf a miniCBF
    (the noise image less the ADC offset); --geometry-out's files name the frames."""
    import fabio
    import h5py

    from nbnumba import series
    from nbnumba.distributed import write_series_geometry

    run = series(ARGS, 3, client=client, template=tmp_path / "stack_master.h5")
    with h5py.File(tmp_path / "stack_master.h5") as h5:
        assert h5["entry/definition"][()] == b"NXmx"
        data = h5["entry/data/data"]
        assert data.shape == (3, 64, 64) and data.dtype == np.float32
        assert data.chunks == (1, 64, 64)
        for i in range(3):
            ref = np.fromfile(references / f"float_{i}.bin", dtype="<f4").reshape(64, 64)
            assert np.array_equal(data[i], ref)
        omega = h5["entry/sample/transformations/omega"]
        assert list(omega[:]) == [0.0, 0.5, 1.0]
        assert h5["entry/instrument/detector/distance"][()] == pytest.approx(100.0)
    assert not (tmp_path / ".stack_master.h5.parts").exists()
    xds, _ = write_series_geometry(str(tmp_path / "stack"), run)
    assert "NAME_TEMPLATE_OF_DATA_FRAMES= " + str(tmp_path / "stack_??????.h5") in \
        Path(xds).read_text()
    # complete: a re-run needs no cluster at all
    again = series(ARGS, 3, template=tmp_path / "stack_master.h5")
    assert again.skipped == [0, 1, 2] and again.client is None

    run = series(ARGS, 2, client=client, template=tmp_path / "c_{frame:03d}.cbf")
    for i in range(2):
        noise = (references / f"noise_{i}.img").read_bytes()
        expected = np.frombuffer(noise[512:], dtype="<u2").reshape(64, 64)
        image = fabio.open(str(tmp_path / f"c_{i:03d}.cbf"))
        assert np.array_equal(image.data, expected.astype(np.int32) - 40)
        assert image.header["_array_data.header_convention"] == "GENERIC_MINI"  # 64 x 64
        contents = image.header["_array_data.header_contents"]
        assert "# Detector_distance 0.1 m" in contents
        assert f"# Start_angle {0.5 * i} deg." in contents
    xds, poni = write_series_geometry(str(tmp_path / "cbf"), run)
    text = Path(xds).read_text()
    assert "c_???.cbf" in text and "DATA_RANGE= 0 1" in text and "STARTING_FRAME= 0" in text
    assert Path(poni).is_file()


@pytest.mark.parametrize("argv, text", [
    (["series", "--frames", "0"], "--frames must be at least 1"),
    (["series", "--frames", "2", "--bogus-flag"], "unknown option --bogus-flag"),
    (["tiles", "--bogus-flag"], "unknown option --bogus-flag"),
    (["tiles", "--tiles", "0", "2"], "--tiles counts must be at least 1"),
    (["stills", "--shots", "0", "--template", "r.h5"], "--shots must be at least 1"),
    (["stills", "--shots", "2"], "--template out/NAME.h5 is required"),
])
def test_usage_error_is_one_line_with_a_pointer_to_help(argv, text, tmp_path):
    """A refused option of ours: the error line alone (no usage text after it), exit 2;
    the pointer it ends with works (-h, -help, --help: the usage on stdout, exit 0)."""
    code, out, err = run_main([*argv, *ARGS], tmp_path)
    assert (code, out) == (2, ""), err
    command = argv[0]
    assert err == (f"nanobragg-nb {command}: error: {text}"
                   + ("; nanoBragg's flags take one dash" if "unknown" in text else "")
                   + f" (nanobragg-nb {command} -h for the usage)\n"), err
    for flag in ("-h", "-help", "--help"):
        code, out, err = run_main([command, flag], tmp_path)
        assert (code, err) == (0, "") and out.startswith(f"usage: nanobragg-nb {command}")
    assert os.listdir(tmp_path) == []


UNGUARDED = """
import nbnumba as nb
nb.{call}
print("finished")
"""


@pytest.mark.parametrize("call", [
    "series({args!r}, 2, template='out/f_{{frame}}.img', workers=1)",
    "stills({args!r}, 2, template='out/run.h5', workers=1)",
])
def test_script_without_main_guard_is_refused_before_any_worker(call, tmp_path):
    """Dask's spawned workers re-run the main script: without `if __name__ ==
    "__main__":` the user got "...manifest.json.lock is locked" from a worker's copy;
    now one SeriesError naming the guard, before a worker starts or a file is written."""
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(UNGUARDED.format(call=call.format(args=list(ARGS))))
    got = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert got.returncode == 1 and "finished" not in got.stdout, got.stderr
    last = got.stderr.strip().splitlines()[-1]
    assert last.startswith("nbnumba.distributed.SeriesError: nbnumba.") and \
        f"{script} has no `if __name__ == \"__main__\":` guard" in last, got.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["script.py"]


def test_main_guard_check_in_a_worker_re_running_the_script():
    """A worker process re-running the script's top level (module __mp_main__) is told
    so, even where the script's text mentions __main__; a function called there, an
    interactive session and a guarded script pass."""
    from nbnumba.distributed import check_main_guard

    top_level = compile("check_main_guard('nbnumba.series')", "/x/script.py", "exec")
    with pytest.raises(SeriesError, match="called again while a Dask worker process "
                                          "imported /x/script.py") as info:
        exec(top_level, {"__name__": "__mp_main__", "__file__": "/x/script.py",
                         "check_main_guard": check_main_guard})
    assert info.value.exit_code == 2
    exec(top_level, {"__name__": "__main__", "check_main_guard": check_main_guard})
    inside = compile("def f():\n    check_main_guard('x')\n", "/x/script.py", "exec")
    space = {"__name__": "__mp_main__", "check_main_guard": check_main_guard}
    exec(inside, space)
    space["f"]()  # a task function defined in the script: no re-run
    check_main_guard("x", starts_workers=True)  # pytest's own __main__ is guarded


def test_bad_template_is_one_line_error(tmp_path, capsys):
    code = main(["series", "--frames", "2", "--template", str(tmp_path / "same.img"), *ARGS])
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "same file for every frame" in err[0]


def test_refused_template_leaves_no_folder(tmp_path, capsys):
    """Trial finding 8: the lock made e/f/ before the template was refused; only the
    folders this series made go, an existing one stays."""
    (tmp_path / "kept").mkdir()
    for folder in ("e/f", "kept"):
        code = main(["series", "--frames", "2", "--template",
                     str(tmp_path / folder / "r.img"), *ARGS])
        assert code == 2
        assert "same file for every frame" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["kept"] and os.listdir(tmp_path / "kept") == []


@pytest.mark.parametrize("extra, code, text", [
    (["--expt-out", "nodir/t.expt"], 3, "--expt-out nodir/t.expt: folder nodir does not exist"),
    (["--geometry-out", "nodir/g"], 3, "--geometry-out nodir/g.XDS.INP: folder nodir does not"),
    (["--expt-out", "."], 3, "--expt-out .: is a folder"),
    (["--geometry-out", "g", "--expt-out", "g.poni"], 2, "two outputs must not write one file"),
])
def test_after_outputs_checked_before_any_frame(extra, code, text, tmp_path, capsys,
                                                monkeypatch):
    """Trial finding 8: --expt-out/--geometry-out, written after the last frame, are
    checked first (they failed, exit 3, only after every frame was written)."""
    monkeypatch.chdir(tmp_path)
    template = tmp_path / "out" / "img_{frame:03d}.cbf"
    assert main(["series", "--frames", "2", "--template", str(template), *extra,
                 *ARGS]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0], err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("extra, code, text", [
    (["-pixel", "0"], 2, "-pixel: the pixel size must be a finite non-zero number"),
    (["-hkl", "missing.hkl"], 3, "-hkl missing.hkl: cannot read it"),
    (["-lambda", "0"], 2, "the wavelength must be a finite non-zero number"),
])
def test_bad_args_refused_before_any_frame(extra, code, text, tmp_path, capsys,
                                           monkeypatch):
    """ARGS get a single run's checks, messages and exit codes on the client: no
    cluster starts, no frame, manifest or tiled image is written."""
    monkeypatch.chdir(tmp_path)
    template = tmp_path / "out" / "img_{frame:03d}.img"
    assert main(["series", "--frames", "2", "--template", str(template), *ARGS,
                 *extra]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0], err
    assert not (tmp_path / "out").exists()
    assert main(["tiles", "--tiles", "2", "2", *ARGS, "-floatfile", "f.bin", *extra]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0], err
    assert os.listdir(tmp_path) == []


TILE_CASES = {
    # an ROI and noise: every output file and the stdout
    "roi_noise": ("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1.0 -detpixels 64 "
                  "-pixel 0.4 -distance 100 -roi 5 50 3 60 -seed 5 -floatfile float.bin "
                  "-intfile int.img -noisefile noise.img -pgmfile img.pgm").split(),
    # the φ=0 first pass of serial C
    "c_parity_phi0": ("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1.0 -phi 0 "
                      "-osc 90 -phisteps 9 -detpixels 64 -pixel 0.4 -distance 100 "
                      "-floatfile float.bin -nopgm -nonoise -c_parity").split(),
    # C's global switch-off of interpolation (golden pattern_hkl_interp_fallback)
    "interp_fallback": ("-cell 100 100 100 90 90 90 -hkl pattern.hkl -interpolate -N 5 "
                        "-lambda 1.0 -default_F 3 -detpixels 128 -pixel 0.1 -distance 100 "
                        "-floatfile float.bin -nopgm -nonoise").split(),
    "mask": ("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1.0 -mask mask.img "
             "-floatfile float.bin -nopgm -nonoise").split(),
}


@pytest.mark.parametrize("case", sorted(TILE_CASES))
def test_tiles_equal_single_process(case, tmp_path, client, golden_dir):
    args = TILE_CASES[case]
    single, tiled = tmp_path / "single", tmp_path / "tiled"
    for folder in (single, tiled):
        folder.mkdir()
        for name in ("pattern.hkl", "mask.img"):
            shutil.copyfile(golden_dir / "inputs" / name, folder / name)
    # uneven bands (5 columns of 9 or 10 pixels) for the ROI case
    rows, cols = (2, 5) if case == "roi_noise" else (3, 2)
    ref = run_nb(args, single)
    assert ref.code == 0, ref.stderr

    out, cwd = io.StringIO(), os.getcwd()
    os.chdir(tiled)
    try:
        with contextlib.redirect_stdout(out):
            code = main(["tiles", "--tiles", str(rows), str(cols), "--scheduler",
                         client.scheduler.address, "--no-progress", *args])
    finally:
        os.chdir(cwd)
    assert code == 0
    assert out.getvalue() == ref.stdout
    if case == "interp_fallback":
        assert "out of range for three point interpolation" in ref.stdout
    for name in sorted(p.name for p in single.iterdir()):
        assert (tiled / name).read_bytes() == (single / name).read_bytes(), name


def test_tiles_api_returns_the_image(tmp_path, client):
    import nbnumba

    args = ("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1.0 -phi 0 -osc 90 "
            "-phisteps 9 -detpixels 64 -pixel 0.4 -distance 100 -nopgm -nonoise "
            "-c_parity").split()
    ref = run_nb([*args, "-floatfile", "single.bin"], tmp_path)
    assert ref.code == 0, ref.stderr
    lines: list[str] = []
    # C always writes an int image too: keep it out of the working directory
    image = nbnumba.tiles([*args, "-floatfile", str(tmp_path / "tiled.bin"),
                           "-intfile", str(tmp_path / "tiled.img")], (4, 4),
                          client=client, out=lines.append)
    expected = np.fromfile(tmp_path / "single.bin", dtype="<f4").reshape(64, 64)
    assert np.array_equal(image, expected)
    assert (tmp_path / "tiled.bin").read_bytes() == (tmp_path / "single.bin").read_bytes()
    assert any(line.startswith("max_I") for line in lines)


def test_workers_0_runs_the_frames_in_this_process(tmp_path, references, capsys):
    """TRIAL 16: series refused --workers 0 while stills takes it as 'in this process';
    both now compute in this process with --workers 0 (series: one in-process Dask
    worker thread, no worker processes), the same frames as a cluster's."""
    frames = 2
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    code = main(["series", "--frames", str(frames), "--workers", "0", "--no-progress",
                 "--template", str(tmp_path / "img_{frame:02d}.img"), *ARGS])
    assert code == 0, capsys.readouterr().err
    assert_frames_equal(tmp_path, references, frames)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
    code = main(["series", "--frames", "1", "--workers", "-1", "--template",
                 str(tmp_path / "n_{frame:02d}.img"), *ARGS])
    assert code == 2
