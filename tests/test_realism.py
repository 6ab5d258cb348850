"""Realistic frames: ``series --background FILE --noisify 'FLAGS'`` and the same in the API.

A frame with ``--noisify`` holds what ``noisify-nb`` makes of that frame's float image
plus the background, with the seed SEED+i; the background is added in float32; the bytes
do not depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import io
import shlex
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from golden import run_nb  # noqa: E402

from nbnumba.cli.main import main  # noqa: E402
from nbnumba.cli.noisify import main as noisify_main  # noqa: E402
from nbnumba.distributed import SeriesError, frame_command, local_cluster_client  # noqa: E402

FAST, SLOW = 48, 40  # not square: fast x slow
ARGS = (f"-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1.0 -detpixels_f {FAST} "
        f"-detpixels_s {SLOW} -pixel 0.4 -distance 100 -osc 0.5 -phisteps 2 -seed 7").split()
FLAGS = "-readout 3 -psf gauss -psf_fwhm 100 -flicker 0.02"
FRAMES, START, OSC, SEED = 3, 0.0, 0.5, 7


def quietly(function, *args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = function(*args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def background(tmp_path_factory) -> Path:
    """Smooth photons/pixel, as water would give (a few photons, rising to the edge)."""
    y, x = np.mgrid[0:SLOW, 0:FAST]
    image = (2.0 + 0.05 * np.hypot(x - FAST / 2, y - SLOW / 2)).astype(np.float32)
    path = tmp_path_factory.mktemp("bg") / "water.bin"
    image.tofile(path)
    return path


@pytest.fixture(scope="module")
def references(tmp_path_factory, background) -> Path:
    """Each frame's single run (float image), then noisify-nb on it plus the background."""
    folder = tmp_path_factory.mktemp("single")
    for i in range(FRAMES):
        result = run_nb(frame_command(ARGS, i, START, OSC, SEED)
                        + ["-floatfile", f"float_{i}.bin", "-nonoise", "-nopgm",
                           "-intfile", f"int_{i}.img"], folder)
        assert result.code == 0, result.stderr
        argv = ["-floatfile", str(folder / f"float_{i}.bin"), "-add", str(background),
                *shlex.split(FLAGS), "-detpixels_x", str(FAST), "-detpixels_y", str(SLOW),
                "-pixel", "0.4", "-seed", str(SEED + i), "-nopgm",
                "-intfile", str(folder / f"nint_{i}.img"),
                "-noisefile", str(folder / f"noise_{i}.img")]
        code, _, err = quietly(noisify_main, argv)
        assert code == 0, err
    return folder


@pytest.fixture(scope="module")
def client(references):
    c = local_cluster_client(2)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


def pixels(path: Path) -> np.ndarray:
    """An SMV file's uint16 pixels (the header is the writer's own)."""
    data = path.read_bytes()
    header = int(data[:512].decode("latin-1").split("HEADER_BYTES=")[1].split(";")[0])
    return np.frombuffer(data[header:], dtype="<u2").reshape(SLOW, FAST)


def test_noisify_frames_are_noisify_nb_on_each_frame(tmp_path, references, background,
                                                    client):
    """The CLI on its own 1-worker cluster and the API on 2 workers give the same bytes,
    and each frame's pixels are noisify-nb's noise image of that frame + background."""
    from nbnumba import series

    one = tmp_path / "one"
    code, out, err = quietly(main, ["series", "--frames", str(FRAMES), "--workers", "1",
                                    "--template", str(one / "img_{frame:02d}.img"),
                                    "--background", str(background), "--noisify", FLAGS,
                                    "--no-progress", *ARGS])
    assert code == 0, err
    assert "3 frame(s) computed" in out
    two = tmp_path / "two"
    series(ARGS, FRAMES, client=client, template=two / "img_{frame:02d}.img",
           background=background, noisify=FLAGS)
    for i in range(FRAMES):
        a = (one / f"img_{i:02d}.img").read_bytes()
        assert a == (two / f"img_{i:02d}.img").read_bytes(), f"frame {i}"
        assert np.array_equal(pixels(one / f"img_{i:02d}.img"),
                              pixels(references / f"noise_{i}.img")), f"frame {i}"
    # frames differ (each its own seed), and noise is there: not C's int image
    assert not np.array_equal(pixels(one / "img_00.img"), pixels(one / "img_01.img"))
    # --content int: noisify's noiseless counts
    series(ARGS, 1, client=client, template=tmp_path / "int_{frame}.img", content="int",
           background=background, noisify=FLAGS)
    assert np.array_equal(pixels(tmp_path / "int_0.img"), pixels(references / "nint_0.img"))


def test_api_series_in_process_equals_the_cluster(tmp_path, references, background, client):
    """``Simulation.series(background=, noisify=)``: the same counts in one process; a
    miniCBF frame holds them less noisify's ADC offset."""
    import fabio

    import nbnumba as nb
    from nbnumba import series

    series(ARGS, 2, client=client, template=tmp_path / "c_{frame}.cbf",
           background=background, noisify=FLAGS + " -adc 10")
    bg = np.fromfile(background, dtype="<f4").reshape(SLOW, FAST)
    sim = nb.Simulation.from_args(ARGS)
    for i, result in enumerate(sim.series(2, background=bg, noisify=FLAGS + " -adc 10")):
        assert result.noisified is not None and result.adc_offset == 10.0
        counts = result.frame_image("noise")
        cbf = fabio.open(str(tmp_path / f"c_{i}.cbf")).data
        assert np.array_equal(cbf, counts.astype(np.int32) - 10), f"frame {i}"
    with pytest.raises(nb.errors.UsageError, match="-seed"):
        next(sim.series(1, noisify="-seed 3"))


def test_background_is_added_before_detection(tmp_path, references, background, client):
    """Without --noisify: a float frame is the single run's float image + background (in
    float32); C's int and noise images are made from that sum."""
    import nbnumba as nb
    from nbnumba import series

    series(ARGS, 2, client=client, template=tmp_path / "f_{frame}.bin",
           background=background)
    bg = np.fromfile(background, dtype="<f4")
    for i in range(2):
        single = np.fromfile(references / f"float_{i}.bin", dtype="<f4")
        got = np.fromfile(tmp_path / f"f_{i}.bin", dtype="<f4")
        assert np.array_equal(got, single + bg), f"frame {i}"
        assert got.min() >= bg.min() > 0  # no pixel left at zero
    result = nb.Simulation.from_args(frame_command(ARGS, 0, START, OSC, SEED)).run()
    detected = result.detected(background)
    assert np.array_equal(detected.image.ravel(), result.image.ravel() + bg)
    assert detected.stats.max_I >= result.stats.max_I
    # C's Poisson counts of the sum: about 2+ photons more per pixel than the crystal's
    extra = detected.noise_image().mean() - result.noise_image().mean()
    assert extra == pytest.approx(bg.mean(), rel=0.1)


@pytest.mark.parametrize("extra, code, text", [
    (["--noisify", "-seed 3"], 2, "leave out -seed"),
    (["--noisify", "-floatfile x.bin"], 2, "input image is each frame"),
    (["--noisify", "-pixel 0.1"], 2, "leave out -detpixels and -pixel"),
    (["--noisify", "-bits 32"], 2, "-bits must stay 16"),
    (["--noisify", "-readout '3"], 2, "--noisify"),
    (["--background", "missing.bin"], 3, "--background missing.bin"),
    (["--background", "SMALL"], 3, "the detector has 48 x 40 = 1920 pixels"),
    (["--noisify", "-readout 3", "--template", "f_{frame}.bin"], 2, "noisify's counts"),
    (["--noisify", "-readout 3", "--content", "float", "--template", "f_master.h5"], 2,
     "noisify's counts"),
])
def test_refusals_before_any_frame(extra, code, text, tmp_path, monkeypatch):
    """Bad --noisify/--background: one line and the exit code, no cluster, no file."""
    monkeypatch.chdir(tmp_path)
    np.zeros(10, dtype=np.float32).tofile(tmp_path / "small.bin")
    extra = [str(tmp_path / "small.bin") if e == "SMALL" else e for e in extra]
    if "--template" not in extra:
        extra += ["--template", "img_{frame}.cbf"]
    got, _, err = quietly(main, ["series", "--frames", "2", "--no-progress", *extra, *ARGS])
    assert got == code, err
    assert text in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.bin"]


def test_noisify_psf_that_c_turns_off_is_warned_once(tmp_path, client):
    """--noisify '-psf bogus -psf_fwhm -5': frames as noisify.c makes them (no PSF), and
    noisify-nb's warning lines once each for the series, not once per frame."""
    code, _, err = quietly(main, ["series", "--frames", "2", "--scheduler",
                                  client.scheduler.address, "--no-progress",
                                  "--template", str(tmp_path / "f_{frame}.img"),
                                  "--noisify", "-psf bogus -psf_fwhm -5", *ARGS])
    assert code == 0, err
    lines = err.splitlines()
    for warning in ("warning: -psf bogus: neither 'gauss' nor 'fiber' in it; noisify.c "
                    "turns the PSF off",
                    "warning: -psf_fwhm -5: noisify.c applies no PSF unless its FWHM is "
                    "above 0 um"):
        assert lines.count(warning) == 1, err


def test_series_error_type(tmp_path):
    from nbnumba import series

    with pytest.raises(SeriesError, match="leave out -add"):
        series(ARGS, 1, template=tmp_path / "x_{frame}.cbf", noisify=["-add", "y.bin"])


# ------------------------------------------------------------------ photon sanity

DIM = ["-cell", "79", "79", "38", "90", "90", "90", "-default_F", "100", "-lambda", "1",
       "-detpixels", "32", "-pixel", "0.4", "-distance", "100", "-xtalsize", "0.001",
       "-flux", "1e12", "-exposure", "0.1", "-beamsize", "0.1", "-seed", "3"]


def photon_notes(warnings) -> list[str]:
    return [w for w in warnings if "photons per pixel come with" in w]


def test_dim_run_warns_once_naming_the_knobs(tmp_path, monkeypatch, capsys):
    """A micron crystal in 1e12 ph/s for 0.1 s: the brightest pixel holds far under one
    photon; one warning names the flags that bring it up. A bright run has none."""
    import nbnumba as nb

    result = nb.Simulation.from_args(DIM).run()
    assert result.stats.max_I < 1
    notes = photon_notes(result.warnings)
    assert len(notes) == 1, result.warnings
    for knob in ("-xtalsize", "-N", "-flux", "-exposure", "-beamsize", "-fluence"):
        assert knob in notes[0]
    assert notes[0].startswith("warning: the brightest pixel holds ")
    assert photon_notes(nb.Simulation.from_args(ARGS).run().warnings) == []
    # the command line prints it once, on stderr
    monkeypatch.chdir(tmp_path)
    assert main([*DIM, "-noprogress", "-nopgm", "-nonoise"]) == 0
    err = capsys.readouterr().err
    assert err.count("photons per pixel come with") == 1, err


def test_all_zero_image_and_frames_warn(tmp_path, monkeypatch):
    """An image of zeros (the hkl file's one reflection misses the detector) says so; a
    series with frames of zeros names them."""
    import nbnumba as nb
    from nbnumba.api import photon_warning

    monkeypatch.chdir(tmp_path)  # C's Fdump.bin cache
    (tmp_path / "one.hkl").write_text("20 20 20 100\n")
    at = ARGS.index("-default_F")
    args = ARGS[:at] + ARGS[at + 2:]
    result = nb.Simulation.from_args([*args, "-hkl", "one.hkl"]).run()
    notes = photon_notes(result.warnings)
    assert len(notes) == 1 and notes[0].startswith("warning: every pixel holds 0 photons")
    note = photon_warning(50.0, "more photons per pixel come with ...", [3, 7])
    assert note.startswith("warning: frame(s) 3, 7 hold 0 photons in every pixel")
    assert photon_warning(50.0, "...") is None


def test_dim_series_warns_once(tmp_path, client):
    from nbnumba import series

    got: list[str] = []
    series(DIM, 3, client=client, template=tmp_path / "d_{frame}.cbf", warn=got.append,
           background=None)
    assert len(photon_notes(got)) == 1, got
    assert "brightest pixel holds" in photon_notes(got)[0]


# the README's realistic frame (spots + water + air -> noisify): its spots must stand out
README_GEOMETRY = "-lambda 1 -distance 80 -detpixels 256 -pixel 0.2"
README_BEAM = "-flux 1e12 -exposure 0.1 -beamsize 0.1"
README_SPOTS = (f"-cell 79.1 79.1 38.4 90 90 90 -default_F 3000 -xtalsize 0.03 -misset 10 20 30 "
                f"-osc 1 -phisteps 20 -mosaic 0.3 -mosaic_dom 20 {README_GEOMETRY} "
                f"-Xbeam 25.6 -Ybeam 25.6 {README_BEAM} -oversample 2")
README_WATER = (f"-stol water.stol {README_GEOMETRY} -Xbeam 25.7 -Ybeam 25.7 {README_BEAM} "
                f"-thick 0.01 -density 1 -MW 18 -nonoise")


def test_readme_realistic_frame_has_spots_over_the_water():
    """A 30 um crystal in 1e12 ph/s for 0.1 s through a 0.1 mm beam, 1 deg of rotation:
    well over 100 pixels away from the direct beam stand 5 sigma above the water's
    photon noise, and no photon warning."""
    import nbnumba as nb

    water_stol = Path(__file__).parent / "data" / "water.stol"
    water = nb.NonBragg.from_args(README_WATER.replace("water.stol", str(water_stol))
                                  .split()).run().image
    result = nb.Simulation.from_args(README_SPOTS.split()).run()
    assert photon_notes(result.warnings) == []
    slow, fast = np.mgrid[0:256, 0:256]
    away = np.hypot(slow - 128, fast - 128) > 4  # the direct beam's F000 spot
    noise = np.sqrt(water.mean())
    assert 30 < water.mean() < 60
    assert int((result.image[away] > 5 * noise).sum()) > 100
