"""The Python API: Simulation -> Result, against nanoBragg.c's golden files and the CLI."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path

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

import nbnumba as nb
from nbnumba import engines

CASES = golden_case_names()


def _in(folder: Path):
    class _Chdir:
        def __enter__(self):
            self.cwd = os.getcwd()
            os.chdir(folder)

        def __exit__(self, *exc):
            os.chdir(self.cwd)

    return _Chdir()


@pytest.mark.parametrize("name", CASES)
def test_golden_case_through_the_api(name, case_workdir):
    """Every golden case with ``Simulation.from_args(...).run(engine="exact")``: C's float
    image bit for bit, C's other files within the golden tolerances, C's stdout."""
    case = load_case(name)
    ref_dir = GOLDEN / name
    with _in(case_workdir):
        for before in case.get("before", []):
            nb.Simulation.from_args(before).run().write_default_files()
        args = list(case["args"]) + (["-c_parity"] if case["carryover"] else [])
        sim = nb.Simulation.from_args(args)
        res = sim.run(engine="exact")
        res.write_default_files()
    assert res.engine == "exact"
    ref = np.frombuffer(read_reference(ref_dir, case["float"]),
                        dtype="<f4").reshape(res.image.shape)
    metrics = assert_float_parity(res.image, ref, name)
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
    ours_out = [x for x in normalise_stdout(res.stdout) if not x.startswith("  seed: ")]
    ref_out = [x for x in normalise_stdout((ref_dir / "c_stdout.txt").read_text())
               if not x.startswith("  seed: ")]
    assert ours_out == ref_out


KEYWORD_CASES = {
    "cubic_128": dict(cell=(100, 100, 100, 90, 90, 90), default_F=100, N=3, lambda_=6.2,
                      detpixels=128, pixel=0.1, distance=100, floatfile="float.bin",
                      nopgm=True, nonoise=True),
    "noise_seeded": None,  # from the case's argv, as keywords (see below)
    "supervisor_roi": dict(mat="A.mat", hkl="scaled.hkl", lambda_=0.9768, dispersion=0,
                           distance=100, pixel=0.172, detpixels_x=2463, detpixels_y=2527,
                           Xbeam=217.742, Ybeam=213.907, mosaic=0.0, oversample=1,
                           phi=0, osc=0.1, phisteps=10, roi=(600, 640, 1000, 1040),
                           nonoise=True, nopgm=True, c_parity=True, seed=1),
}


def _keywords_from_argv(argv: list[str]) -> dict:
    """{flag: value} from an argv of flags each followed by its values."""
    flags: dict = {}
    key = None
    for token in argv:
        if token.startswith("-") and not token[1:2].isdigit():
            key = token[1:] + ("_" if token[1:] == "lambda" else "")
            flags[key] = True
        elif flags[key] is True:
            flags[key] = token
        else:
            value = flags[key]
            flags[key] = (*(value if isinstance(value, tuple) else (value,)), token)
    return flags


@pytest.mark.parametrize("name", sorted(KEYWORD_CASES))
def test_keywords_equal_from_args(name, case_workdir):
    flags = KEYWORD_CASES[name]
    if flags is None:
        flags = _keywords_from_argv(load_case(name)["args"])
    from nbnumba.api import flags_to_argv

    argv = flags_to_argv(flags)
    with _in(case_workdir):
        by_keywords = nb.Simulation(**flags)
        by_args = nb.Simulation.from_args(argv)
        a, b = by_keywords.run(), by_args.run()
    # the one difference: keywords leave C's Fdump.bin cache alone (issue 24), so the
    # setup has no "writing dump file" line
    assert not by_keywords.options.fdump and by_args.options.fdump
    assert dataclasses.replace(by_keywords.options, fdump=True) == by_args.options
    assert np.array_equal(a.image, b.image)
    assert a.stdout == "".join(line for line in b.stdout.splitlines(keepends=True)
                               if not line.startswith("writing dump file for next time"))
    assert np.array_equal(a.noise_image(), b.noise_image())


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="distnace"):
        nb.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, distnace=100)


def test_keywords_take_c_user_units():
    sim = nb.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, distance=150,
                        pixel=0.2, lambda_=1.5, phi=10)
    o = sim.options
    assert o.distance == pytest.approx(0.150) and o.pixel_size == pytest.approx(0.2e-3)
    assert o.lambda0 == pytest.approx(1.5e-10)
    assert o.phi0 == pytest.approx(np.radians(10.0))


SMALL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
         "-lambda", "1.0", "-detpixels", "64", "-pixel", "0.4", "-distance", "100",
         "-seed", "7", "-phi", "0", "-osc", "1", "-phisteps", "2", "-mosaic", "0.5",
         "-mosaic_dom", "3"]


def test_result_write_is_byte_identical_to_the_cli(tmp_path):
    names = ["-floatfile", "f.bin", "-intfile", "i.img", "-noisefile", "n.img",
             "-pgmfile", "p.pgm"]
    cli, api = tmp_path / "cli", tmp_path / "api"
    cli.mkdir()
    api.mkdir()
    res = run_nb(SMALL + names, cli)
    assert res.code == 0, res.stderr
    with _in(api):
        result = nb.Simulation.from_args(SMALL + names).run()
        written = result.write(floatfile="f.bin", intfile="i.img", noisefile="n.img",
                               pgmfile="p.pgm")
    assert written == ["f.bin", "i.img", "p.pgm", "n.img"]
    for name in ("f.bin", "i.img", "n.img", "p.pgm"):
        assert (api / name).read_bytes() == (cli / name).read_bytes(), name
    assert result.stdout == res.stdout


def test_repeated_runs_are_identical():
    sim = nb.Simulation.from_args(SMALL)
    first, second = sim.run(), sim.run()
    assert np.array_equal(first.image, second.image)
    # setup and noise share C's generator state: each run starts from a copy of it
    assert np.array_equal(first.noise_image(), second.noise_image())
    assert np.array_equal(first.noise_image(), first.noise_image())
    assert first.stdout == second.stdout
    assert first.image.dtype == np.float32 and first.image.shape == (64, 64)
    assert first.stats.max_I == float(first.image.max())
    assert first.header["fpixels"] == 64


def test_scene_before_computing():
    sim = nb.Simulation.from_args(SMALL)
    scene = sim.scene
    assert (scene.spixels, scene.fpixels) == (64, 64)
    assert scene.params.phisteps == 2 and scene.params.mosaic_domains == 3
    assert "mosaic_domains" in sim.setup_stdout or "mosaic" in sim.setup_stdout


def test_series_in_process_equals_single_runs(tmp_path):
    from nbnumba.distributed import frame_command

    sim = nb.Simulation.from_args(SMALL)
    frames = list(sim.series(3, start_phi=5.0))
    assert len(frames) == 3
    for i, frame in enumerate(frames):
        argv = frame_command(SMALL, i, 5.0, 1.0, 7) + ["-floatfile", f"f{i}.bin",
                                                       "-noisefile", f"n{i}.img"]
        res = run_nb(argv, tmp_path)
        assert res.code == 0, res.stderr
        assert (tmp_path / f"f{i}.bin").read_bytes() == frame.image.astype("<f4").tobytes()
        noise = np.frombuffer((tmp_path / f"n{i}.img").read_bytes()[512:], dtype="<u2")
        assert np.array_equal(noise.reshape(64, 64), frame.noise_image())


# ------------------------------------------------------------------ engines


def test_registry_lists_the_engines():
    names = [e.name for e in engines.engines()]
    assert names == ["exact", "vectorised", "cuda", "tiles"]
    assert engines.get("exact").exact and not engines.get("vectorised").exact


def test_c_parity_selects_exact_even_with_a_gpu(monkeypatch):
    """A usable GPU and -device auto: -c_parity still runs the exact CPU engine."""
    cuda = engines.get("cuda")
    monkeypatch.setitem(engines._REGISTRY, "cuda",
                        engines.Engine(cuda.name, cuda.device, cuda.exact, cuda.precisions,
                                       lambda: True, cuda.load))
    assert engines.select(device="auto", exact=True).name == "exact"
    assert engines.select(device="auto", exact=False).name == "cuda"
    sim = nb.Simulation.from_args(SMALL + ["-c_parity"])
    assert sim.select_engine().name == "exact"
    assert sim.run().engine == "exact"


@pytest.mark.parametrize("request_, error", [
    (dict(device="cpu", precision="single"), nb.errors.UsageError),
    (dict(engine="vectorised", exact=True), nb.errors.UsageError),
    (dict(engine="nonesuch"), nb.errors.UsageError),
])
def test_impossible_requests_are_errors(request_, error):
    with pytest.raises(error):
        engines.select(**request_)


def test_cuda_without_a_gpu_is_a_resource_error():
    if engines.get("cuda").available():
        pytest.skip("a CUDA GPU is available here")
    with pytest.raises(nb.errors.ResourceError):
        engines.select(device="cuda")


def test_engines_agree(tmp_path):
    sim = nb.Simulation.from_args(SMALL)
    exact = sim.run(engine="exact").image.astype(np.float64)
    vectorised = sim.run(engine="vectorised").image.astype(np.float64)
    assert np.abs(exact - vectorised).max() <= 1e-9 * np.abs(exact).max()


# ------------------------------------------------------------------ import cost


def test_import_nbnumba_is_cheap():
    import subprocess

    code = ("import sys, nbnumba; import nbnumba.errors; "
            "assert 'numba' not in sys.modules and 'dask' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith(('numba', 'dask')))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_inputs_are_read_from_the_current_folder(tmp_path, golden_dir):
    """Simulation reads input files relative to the current folder, as C does."""
    shutil.copyfile(golden_dir / "inputs" / "A.mat", tmp_path / "A.mat")
    with _in(tmp_path):
        sim = nb.Simulation(mat="A.mat", default_F=10, lambda_=1.0, detpixels=16)
        assert sim.run().image.shape == (16, 16)


# ------------------------------------------------- found by trying it as a new user

BASE_KW = dict(cell=(100, 100, 100, 90, 90, 90), default_F=100, N=5, lambda_=1.0,
               detpixels=32, pixel=0.1, distance=100, seed=1)


def test_numpy_values_are_numbers():
    by_numpy = nb.Simulation(**{**BASE_KW, "distance": np.float64(120.0),
                                "cell": np.array([100, 100, 100, 90, 90, 90.0])})
    by_float = nb.Simulation(**{**BASE_KW, "distance": 120.0})
    assert by_numpy.options == by_float.options


@pytest.mark.parametrize("flags", [dict(N=True, lambda_=1.0), dict(distance=True)])
def test_a_bare_flag_that_needs_a_value_is_a_type_error(flags):
    with pytest.raises(TypeError, match="takes a value"):
        nb.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, **flags)


def test_from_args_wants_a_list():
    with pytest.raises(TypeError, match="list"):
        nb.Simulation.from_args("-cell 100 100 100 90 90 90 -default_F 100")


def test_library_errors_carry_exit_codes(tmp_path):
    result = nb.Simulation(**BASE_KW).run()
    with pytest.raises(nb.errors.OutputPathError, match="folder .* does not exist"):
        result.write(floatfile=str(tmp_path / "nodir" / "f.bin"))
    with pytest.raises(TypeError, match="foo"):
        nb.Simulation(**BASE_KW).run(foo=1)
    with pytest.raises(nb.errors.ResourceError):
        nb.Simulation(**{**BASE_KW, "detpixels": 10**7}).run()
    with pytest.raises(ValueError):  # derived images are cached: the image stays as computed
        result.image[0, 0] = 1.0
    with pytest.raises(TypeError):
        list(nb.Simulation(**BASE_KW).series(2.5))


def test_twotheta_90_runs_as_c_does(tmp_path):
    """C's auto oversample overflows its int to 1 (the sample is ~1e-17 m away)."""
    res = nb.Simulation(**BASE_KW, twotheta=90, nonoise=True).run()
    assert "1x1 pixel oversample steps" in res.stdout
    assert np.isfinite(res.image).all()
