"""Serial-crystallography stills: per-shot draws, --explain against nanoBragg.c, the
runner's files, resuming, and the same bytes with 1 or 2 Dask workers (specs/stills.md)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main
from golden import assert_float_parity

from nbnumba.cli.main import main
from nbnumba.datasets import stills as S
from nbnumba.datasets.runner import stills, stills_paths

C_BIN = os.environ.get("NB_C_BIN", "/tmp/cbin/nanoBragg")
HAVE_C = os.path.isfile(C_BIN) and os.access(C_BIN, os.X_OK)
needs_c = pytest.mark.skipif(not HAVE_C, reason="nanoBragg.c binary not found (NB_C_BIN)")

BASE = ("-cell 70 80 90 90 90 90 -default_F 100 -N 5 -lambda 1.0 -detpixels 48 -pixel 0.25 "
        "-distance 60 -mosaic 0.5 -mosaic_domains 3 -seed 7").split()


def run_cli(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    return run_main(argv, cwd, main)


# ------------------------------------------------------------------------ draws


def test_shot_draws_depend_only_on_seed_and_shot():
    plan, _ = S.plan_stills(BASE, spectrum="sase:7:30", jitter="N=0.2,mosaic=0.3,flux=0.2")
    a, b = S.make_shot(plan, 5), S.make_shot(plan, 5)
    assert a.mat_text == b.mat_text and a.source_text == b.source_text and a.flags == b.flags
    c = S.make_shot(plan, 6)
    assert c.mat_text != a.mat_text and c.seed != a.seed
    assert len(a.wavelengths_A) == 7
    # another seed, other shots
    other, _ = S.plan_stills(BASE, seed=8, spectrum="sase:7:30")
    assert S.make_shot(other, 5).mat_text != a.mat_text
    # turning jitter on leaves the orientation and spectrum of a shot alone
    plain, _ = S.plan_stills(BASE, spectrum="sase:7:30")
    assert S.make_shot(plain, 5).mat_text == a.mat_text
    assert S.make_shot(plain, 5).source_text == a.source_text


def test_random_rotations_are_proper_and_uniform():
    rng = np.random.default_rng(1)
    mats = np.array([S.random_rotation(rng) for _ in range(4000)])
    assert np.allclose(np.einsum("nij,nkj->nik", mats, mats), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(mats), 1.0)
    # Haar measure on SO(3): E[R] = 0 and E[R_ij²] = 1/3
    assert np.abs(mats.mean(axis=0)).max() < 0.04
    assert np.abs((mats**2).mean(axis=0) - 1 / 3).max() < 0.03


def test_sase_spectrum_follows_the_envelope():
    plan, _ = S.plan_stills(BASE, spectrum="sase:200:40")
    lines = S.make_shot(plan, 0).wavelengths_A
    energies = S.HC_EV_ANGSTROM / lines
    assert abs(energies.mean() - S.HC_EV_ANGSTROM) < 10
    assert 30 < energies.std() * S.FWHM_PER_SIGMA < 50


def test_jitter_distributions():
    plan, _ = S.plan_stills(BASE, jitter="N=0.3,mosaic=0.5,flux=0.4")
    shots = [S.make_shot(plan, k) for k in range(300)]
    n = np.array([s.N for s in shots])
    assert n.min() >= 1 and np.all(n == np.round(n)) and n.std() > 0.5
    mosaic = np.array([s.mosaic_deg for s in shots])
    assert abs(np.median(np.log(mosaic / 0.5))) < 0.1
    fluence = np.array([s.fluence for s in shots]) / plan.fluence0
    assert abs(fluence.mean() - 1) < 0.08  # the mean is kept


def test_weighted_spectrum_becomes_equal_weight_lines():
    lam = np.array([1.0, 1.1, 1.2])
    assert S.equal_weight_lines(lam, np.array([2.0, 2.0, 2.0])).tolist() == [1.0, 1.1, 1.2]
    got = S.equal_weight_lines(lam, np.array([4.0, 1.0, 1.0]))
    assert sorted(got.tolist()) == [1.0, 1.0, 1.1]
    assert S.equal_weight_lines(lam, np.array([0.0, 1.0, 1.0])).tolist() == [1.1, 1.2]


def test_orientation_file_of_u_and_a_matrices(tmp_path):
    U = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    A = np.diag([0.01, 0.02, 0.03])
    np.save(tmp_path / "m.npy", np.array([U, A]))
    plan, _ = S.plan_stills(BASE, orientations=str(tmp_path / "m.npy"))
    base = np.array(plan.base_A).reshape(3, 3)
    assert np.allclose(S.make_shot(plan, 0).A, U @ base)
    assert np.allclose(S.make_shot(plan, 1).A, A)
    with pytest.raises(Exception, match="none for shot 2"):
        S.make_shot(plan, 2)


def test_misset_and_bad_options_are_usage_errors(tmp_path):
    for extra, words in ((["-misset", "random"], "-misset"),
                         (["--spectrum", "sase:0:3"], "SPIKES"),
                         (["--jitter", "size=1"], "KEY=SIGMA"),
                         (["--template", "x.cbf"], ".h5")):
        argv = ["stills", "--shots", "2", "--workers", "0", "--template", "r.h5", *BASE, *extra]
        code, _, err = run_cli(argv, tmp_path)
        assert code == 2, (extra, err)
        assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("*.h5"))


# ------------------------------------------------------------ nanoBragg.c parity


def _explain_and_run_c(tmp_path: Path, args: list[str], k: int, spectrum: str) -> np.ndarray:
    argv = ["stills", "--explain", str(k), "--template", "out/run.h5", "--spectrum", spectrum,
            "--jitter", "N=0.2,mosaic=0.3,flux=0.2", *args]
    (tmp_path / "out").mkdir(exist_ok=True)
    code, out, err = run_cli(argv, tmp_path)
    assert code == 0, err
    line = out.strip().splitlines()[-1].split()
    assert line[0] == "nanoBragg" and "-mat" in line and "-sourcefile" in line
    subprocess.run([C_BIN, *line[1:]], cwd=tmp_path, check=True, capture_output=True,
                   timeout=300)
    n = int(args[args.index("-detpixels") + 1])
    return np.fromfile(tmp_path / f"out/run_shot{k:06d}.bin", dtype="<f4").reshape(n, n)


@needs_c
def test_explain_reproduces_a_shot_bit_for_bit_with_c_parity(tmp_path):
    args = BASE + ["-c_parity"]
    c_image = _explain_and_run_c(tmp_path, args, 3, "sase:5:30")
    plan, _ = S.plan_stills(args, spectrum="sase:5:30", jitter="N=0.2,mosaic=0.3,flux=0.2")
    result, truth = S.render_shot(plan, 3)
    assert c_image.max() > 0
    assert np.array_equal(result.image, c_image)
    assert len(truth.wavelengths_A) == 5


@needs_c
def test_explain_reproduces_a_shot_within_golden_tolerances(tmp_path):
    c_image = _explain_and_run_c(tmp_path, BASE, 11, "sase:8:25")
    plan, _ = S.plan_stills(BASE, spectrum="sase:8:25", jitter="N=0.2,mosaic=0.3,flux=0.2")
    result, _ = S.render_shot(plan, 11)
    assert_float_parity(result.image, c_image, "stills shot 11")


# ------------------------------------------------------------------ the runner


def _stack(path: Path) -> np.ndarray:
    import h5py
    import hdf5plugin  # noqa: F401 - registers bitshuffle

    with h5py.File(path, "r") as f:
        return f["/entry/data/data"][()]


def test_runner_files_truth_and_resume(tmp_path):
    template = tmp_path / "out" / "run.h5"
    kw = dict(template=str(template), spectrum="sase:4:30", workers=0)
    run = stills(BASE, 3, **kw)
    paths = stills_paths(str(template))
    assert run.computed == 3
    frames = _stack(template)
    plan, _ = S.plan_stills(BASE, spectrum="sase:4:30")
    for k in range(3):
        result, truth = S.render_shot(plan, k)
        assert np.array_equal(frames[k], result.image)
    # the truth: one chunk per shot, vectors in CrystFEL's frame (nm^-1)
    stream = Path(paths["stream"]).read_text()
    assert stream.startswith("CrystFEL stream format 2.3\n")
    assert stream.count("----- Begin chunk -----") == 3 and "Event: //2" in stream
    import h5py

    with h5py.File(paths["spectra"]) as f:
        A = f["A_lab_per_angstrom"][2]
        assert np.allclose(A, np.reshape(truth.A, (3, 3)))
        assert np.allclose(f["wavelength_A"][2], truth.wavelengths_A)
    stars = [line.split()[2:5] for line in stream.splitlines()
             if line.startswith("astar")]
    # nanoBragg's MOSFLM lab (beam +x) -> CrystFEL (beam +z): (x, y, z) -> (-z, y, x)
    assert np.allclose([float(v) for v in stars[2]],
                       np.array([-A[2, 0], A[1, 0], A[0, 0]]) * 10, atol=1e-9)
    stack_bytes = template.read_bytes()
    # complete: nothing to do
    assert stills(BASE, 3, **kw).skipped == 3
    # interrupted: a shot's part lost and the log torn; the rerun gives the same bytes
    manifest = json.loads(Path(paths["manifest"]).read_text())
    manifest.pop("complete")
    Path(paths["manifest"]).write_text(json.dumps(manifest))
    template.unlink()
    log = Path(paths["log"]).read_bytes().splitlines(keepends=True)
    Path(paths["log"]).write_bytes(b"".join(log[:1]) + log[1][:20])
    again = stills(BASE, 3, **kw)
    assert again.computed == 3 and again.skipped == 0  # parts were removed when complete
    assert template.read_bytes() == stack_bytes
    # another dataset on the same template is refused
    with pytest.raises(Exception, match="another dataset"):
        stills(BASE, 4, **kw)


def test_resume_after_a_partial_run_keeps_finished_shots(tmp_path, monkeypatch):
    from nbnumba.datasets import runner

    template = tmp_path / "run.h5"
    kw = dict(template=str(template), workers=0)
    whole_h5 = tmp_path / "whole" / "run.h5"
    whole = stills(BASE, 4, template=str(whole_h5), workers=0)
    assert whole.computed == 4
    calls = []
    real = runner.render_still

    def dies_at_third(job):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(job.shot)
        return real(job)

    monkeypatch.setattr(runner, "render_still", dies_at_third)
    with pytest.raises(KeyboardInterrupt):
        stills(BASE, 4, **kw)
    monkeypatch.setattr(runner, "render_still", real)
    again = stills(BASE, 4, **kw)
    assert (again.skipped, again.computed) == (2, 2)
    assert template.read_bytes() == whole_h5.read_bytes()
    assert Path(stills_paths(str(template))["stream"]).read_text() == \
        Path(stills_paths(str(whole_h5))["stream"]).read_text()


def test_spectra_file_round_trip(tmp_path):
    stills(BASE, 2, template=str(tmp_path / "a.h5"), spectrum="sase:6:30", workers=0)
    spectra = stills_paths(str(tmp_path / "a.h5"))["spectra"]
    again, _ = S.plan_stills(BASE, seed=99, spectrum=spectra)
    first, _ = S.plan_stills(BASE, spectrum="sase:6:30")
    assert np.allclose(S.make_shot(again, 1).wavelengths_A, S.make_shot(first, 1).wavelengths_A)
    text = tmp_path / "spec.txt"
    text.write_text("0 1.0 1\n0 1.01 1\n1 0.99 3\n")
    plan, _ = S.plan_stills(BASE, spectrum=str(text))
    assert S.make_shot(plan, 0).wavelengths_A.tolist() == [1.0, 1.01]


def test_same_bytes_with_one_or_two_dask_workers(tmp_path):
    one_h5, two_h5 = tmp_path / "one" / "run.h5", tmp_path / "two" / "run.h5"
    one = stills(BASE, 6, template=str(one_h5), workers=1)
    two = stills(BASE, 6, template=str(two_h5), workers=2)
    assert one.computed == two.computed == 6
    assert one_h5.read_bytes() == two_h5.read_bytes()
    for key in ("stream", "spectra"):
        assert Path(stills_paths(str(one_h5))[key]).read_bytes() == \
            Path(stills_paths(str(two_h5))[key]).read_bytes()


DXTBX_PYTHON = "/usr/bin/python3"


def _dxtbx_available() -> bool:
    try:
        return subprocess.run([DXTBX_PYTHON, "-c", "import dxtbx"], capture_output=True,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _dxtbx_available(), reason="dxtbx (DIALS) not installed for "
                    "/usr/bin/python3")
def test_dxtbx_reads_the_truth_expt_and_its_images(tmp_path):
    import hdf5plugin

    template = tmp_path / "run.h5"
    stills(BASE, 3, template=str(template), spectrum="sase:4:30", workers=0)
    expt = stills_paths(str(template))["expt"]
    script = (
        "import json, sys\n"
        "from dxtbx.model.experiment_list import ExperimentListFactory\n"
        "el = ExperimentListFactory.from_json_file(sys.argv[1], check_format=True)\n"
        "out = []\n"
        "for e in el:\n"
        "    out.append({'A': list(e.crystal.get_A()), 'wavelength': e.beam.get_wavelength(),\n"
        "                'max': float(e.imageset.get_raw_data(0)[0].as_numpy_array().max()),\n"
        "                's0': list(e.beam.get_s0())})\n"
        "print(json.dumps(out))\n")
    env = {**os.environ, "HDF5_PLUGIN_PATH": hdf5plugin.PLUGIN_PATH}
    env.pop("PYTHONPATH", None)
    # the image path is relative to the .expt's folder (TRIAL 16): dxtbx finds the stack
    # from another working folder, and the dataset's folder can be moved
    doc = json.loads(Path(expt).read_text())
    assert {i["images"][0] for i in doc["imageset"]} == {"run.h5"}
    moved = tmp_path / "moved"
    moved.mkdir()
    for p in (template, Path(expt)):
        os.replace(p, moved / p.name)
    expt = str(moved / Path(expt).name)
    template = moved / template.name
    got = subprocess.run([DXTBX_PYTHON, "-c", script, expt], capture_output=True, text=True,
                         env=env, timeout=300, cwd="/")
    assert got.returncode == 0, got.stderr[-2000:]
    shots = json.loads(got.stdout.strip().splitlines()[-1])
    frames = _stack(template)
    plan, _ = S.plan_stills(BASE, spectrum="sase:4:30")
    from nbnumba.formats import DetectorGeometry, lab_to_dxtbx

    for k, shot in enumerate(shots):
        result, truth = S.render_shot(plan, k)
        assert shot["max"] == pytest.approx(float(frames[k].max()), rel=1e-6)
        assert shot["wavelength"] == pytest.approx(truth.mean_wavelength_A, rel=1e-12)
        g = DetectorGeometry.from_scene(result.scene)
        R = lab_to_dxtbx(g.beam, g.spindle)
        # dxtbx's A (reciprocal columns, 1/Å) is R times ours
        assert np.allclose(np.reshape(shot["A"], (3, 3)), R @ np.reshape(truth.A, (3, 3)),
                           rtol=0, atol=1e-12)


def test_background_and_noisify_per_shot(tmp_path):
    from nbnumba.detect import check_noisify_flags

    n = 48
    background = tmp_path / "bg.bin"
    np.full(n * n, 2.5, dtype="<f4").tofile(background)
    template = tmp_path / "run.h5"
    flags = "-readout 2 -flicker 0.01"
    run = stills(BASE, 2, template=str(template), workers=0, background=str(background),
                 noisify=flags)
    assert run.content == "noise"
    frames = _stack(template)
    plan, _ = S.plan_stills(BASE)
    for k in range(2):
        result, truth = S.render_shot(plan, k)
        detected = result.detected(np.full((n, n), 2.5, dtype=np.float32),
                                   check_noisify_flags(flags)[0], noisify_seed=truth.seed)
        counts = detected.frame_image("noise").astype(np.int64)
        from nbnumba.formats.geometry import adc_baseline

        assert np.array_equal(frames[k], counts - adc_baseline(detected.adc_offset))
    with pytest.raises(Exception, match="counts"):
        stills(BASE, 2, template=str(tmp_path / "f.h5"), workers=0, noisify=flags,
               content="float")


def test_orientations_from_a_dials_expt_round_trip(tmp_path):
    """A dataset's truth .expt as --orientations gives the same crystals back (the dxtbx
    frame mapping undone), so the same shots up to rounding."""
    first = tmp_path / "a" / "run.h5"
    stills(BASE, 3, template=str(first), workers=0)
    expt = stills_paths(str(first))["expt"]
    plan_a, _ = S.plan_stills(BASE)
    plan_b, _ = S.plan_stills(BASE, orientations=expt)
    for k in range(3):
        a, b = S.make_shot(plan_a, k), S.make_shot(plan_b, k)
        assert np.allclose(b.A, a.A, rtol=1e-12, atol=1e-15)
    ra, _ = S.render_shot(plan_a, 2)
    rb, _ = S.render_shot(plan_b, 2)
    assert np.allclose(rb.image, ra.image, rtol=1e-4, atol=1e-6 * ra.image.max())
    with pytest.raises(Exception, match="3 matrices for 4 shots"):
        stills(BASE, 4, template=str(tmp_path / "b" / "run.h5"), workers=0,
               orientations=expt)


# ------------------------------------------------------------------ warnings


def _stills_subprocess(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``nanobragg-nb ARGV`` in a new Python (Dask's workers are real processes)."""
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "nbnumba.cli.main", *argv], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_shot_warnings_reach_the_console_once_each(tmp_path):
    """The README's stills example printed a raw two-line Python warning per shot: a wrong
    '-sourcefile <shot k>.src is a pipe' (the spectra are made in memory), the dark-image
    note and --noisify's flag warnings from every worker (TRIAL 4). Each line is printed
    once by the client, as a series does, and -quiet silences them."""
    import socket

    dark = [*BASE, "-fluence", "1e20"]  # the brightest pixel well under 1 photon
    common = ["stills", "--shots", "3", "--spectrum", "sase:3:25", "--no-progress",
              "--noisify", "-readout abc"]
    # Dask's default dashboard port taken: no "Port 8787 is already in use" UserWarning
    # from our LocalCluster (TRIAL 16)
    with socket.socket() as busy:
        with contextlib.suppress(OSError):  # already taken by another program: as good
            busy.bind(("127.0.0.1", 8787))
            busy.listen()
        got = _stills_subprocess([*common, "--template", "a/run.h5", "--workers", "1",
                                  *dark], tmp_path)
    assert got.returncode == 0, got.stderr[-2000:]
    assert "Port 8787" not in got.stderr and "UserWarning" not in got.stderr
    lines = [line for line in got.stderr.splitlines() if line.strip()]
    assert lines, "the dark-image and --noisify warnings are given"
    assert "NbnumbaWarning" not in got.stderr and "return self.func" not in got.stderr
    assert "sys.exit(main())" not in got.stderr and "pipe or device" not in got.stderr
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == len(set(warnings))
    assert sum("brightest pixel" in w for w in warnings) == 1
    assert sum("-readout abc" in w for w in warnings) == 1
    # in this process (--workers 0) too; -quiet: nothing at all
    code, out, err = run_cli([*common, "--template", "b/run.h5", "--workers", "0", *dark],
                             tmp_path)
    assert code == 0, err
    assert [w for w in err.splitlines() if w.startswith("warning: ")] == warnings
    quiet = _stills_subprocess([*common, "--template", "c/run.h5", "--workers", "0", *dark,
                                "-quiet"], tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""


@pytest.mark.parametrize("option, name, text, words", [
    ("--spectrum", "s.txt", "0 1.0 1\n0 1.1\n", "s.txt line 2: --spectrum: 2 number(s)"),
    ("--spectrum", "s.txt", "", "s.txt: --spectrum: no numbers in the file"),
    ("--spectrum", "s.txt", "# nothing\n\n", "s.txt: --spectrum: no numbers in the file"),
    ("--spectrum", "s.txt", "0 1.0 1\n0 x 1\n", "s.txt line 2: --spectrum: 'x' is not a"),
    ("--spectrum", "s.h5", "not hdf5", "s.h5: --spectrum: not an HDF5 file"),
    ("--spectrum", "gone.txt", None, "gone.txt: --spectrum: no such file"),
    ("--orientations", "o.txt", "1 0 0 0 1 0\nhello 0 1\n",
     "o.txt line 2: --orientations: 'hello' is not a finite number"),
    ("--orientations", "o.txt", "", "o.txt: --orientations: no numbers in the file"),
    ("--orientations", "o.npy", "not npy", "o.npy: --orientations: not a .npy file"),
    ("--orientations", "o.expt", '{"experiment": [\n', "o.expt line 2: --orientations: not a"),
    ("--orientations", "gone.npy", None, "gone.npy: --orientations: no such file"),
])
def test_input_file_errors_are_one_line_exit_3(tmp_path, option, name, text, words):
    """TRIAL 11: a malformed --spectrum/--orientations file printed numpy's text ('the
    number of columns changed...', 'could not convert string...', a UserWarning with
    source lines for an empty file) and exited 2; a missing one exited 2 too. Now: one
    line naming the file (and line), exit 3, nothing written."""
    if text is not None:
        (tmp_path / name).write_text(text)
    argv = ["stills", "--shots", "2", "--workers", "0", "--template", "r.h5", option, name,
            *BASE]
    code, out, err = run_cli(argv, tmp_path)
    assert code == 3, err
    assert err.count("\n") == 1 and err.startswith("nanobragg-nb stills: error: "), err
    assert words in err, err
    for numpy_words in ("usecols", "could not convert", "float64", "Warning", "Traceback"):
        assert numpy_words not in err
    assert not list(tmp_path.glob("r.h5*"))


def test_explain_beyond_the_shots_and_data_help(tmp_path):
    """TRIAL 16: `stills --explain 5 --shots 2` explained a shot the dataset does not have;
    `python -m nbnumba.data --help` said "no shipped .stol table called '--help'"."""
    import sys

    argv = ["stills", "--explain", "2", "--shots", "2", "--template", "r.h5", *BASE]
    code, out, err = run_cli(argv, tmp_path)
    assert code == 2 and "--explain 2: the dataset's shots are 0 to 1" in err, err
    assert not list(tmp_path.iterdir())
    code, out, err = run_cli(["stills", "--explain", "1", "--shots", "2", "--template",
                              "r.h5", *BASE], tmp_path)
    assert code == 0 and out.startswith("nanoBragg "), err
    got = subprocess.run([sys.executable, "-m", "nbnumba.data", "--help"], capture_output=True,
                         text=True, timeout=60,
                         env={**os.environ,
                              "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert got.returncode == 0 and got.stdout.startswith("usage: python -m nbnumba.data")
    assert got.stderr == ""
