"""Processing formats (nbnumba.formats): what DIALS, XDS, pyFAI and fabio read back.

For an awkward geometry (off-centre beam, three detector rotations, two-theta,
non-square detector) the NXmx file read with the ``nxmx`` package, the PONI read with
pyFAI and the XDS.INP fragment give each traced pixel the 2θ, sample distance and
handedness ``sign det[beam, rotation axis, pixel]`` of our ``-trace_pixel`` vectors to
1e-9 relative; the miniCBF header does the same, read as dxtbx reads it, for a
perpendicular detector.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from nbnumba.api import Simulation
from nbnumba.formats import DetectorGeometry, lab_to_mcstas
from nbnumba.formats.cbf import minicbf_header, write_minicbf
from nbnumba.formats.geometry_files import poni, poni_parameters, xds_inp
from nbnumba.trace import trace_lines

REL = 1e-9
BASE = ("-cell 50 60 70 90 90 90 -default_F 100 -lambda 1.3 -detpixels_f 80 -detpixels_s 64 "
        "-pixel 0.172 -distance 120 -phi 10 -osc 0.5 -oversample 1 -N 1 -nonoise").split()
AWKWARD = [*BASE, "-Xbeam", "3", "-Ybeam", "9", "-detector_rotx", "3", "-detector_roty", "-7",
           "-detector_rotz", "11", "-twotheta", "20"]
GEOMETRIES = {
    "mosflm_sample_pivot": AWKWARD + ["-pivot", "sample"],
    "mosflm_beam_pivot": AWKWARD + ["-pivot", "beam"],
    "xds": [*BASE, "-xds", "-ORGX", "30.5", "-ORGY", "-4", "-detector_roty", "5",
            "-twotheta", "-12"],
    "adxv": [*BASE, "-adxv", "-Xbeam", "2", "-Ybeam", "8", "-detector_rotz", "30"],
    "dials_custom_beam": [*BASE, "-dials", "-beam_vector", "0.1", "0.2", "1",
                          "-detector_rotx", "4", "-spindle_axis", "0.3", "1", "0"],
}
PIXELS = [(0, 0), (63, 79), (10, 70), (40, 5), (31, 40)]


def scene_of(args):
    return Simulation.from_args(list(args)).scene


def traced_positions(scene) -> dict:
    """Pixel positions (m, lab frame) as -trace_pixel prints them."""
    found = {}
    for s, f in PIXELS:
        (line,) = [x for x in trace_lines(scene, s, f) if "pixel_pos_meters" in x]
        found[(s, f)] = np.array([float(v) for v in line.split()[-3:]])
    return found


def properties(position, beam, axis) -> tuple[float, float, float]:
    """(2θ, distance to the sample, handedness) of a pixel position."""
    r = float(np.linalg.norm(position))
    b = np.asarray(beam, dtype=float) / np.linalg.norm(beam)
    two_theta = math.atan2(float(np.linalg.norm(np.cross(position, b))),
                           float(np.dot(position, b)))
    hand = float(np.sign(np.linalg.det(np.array([b, axis, position]))))
    return two_theta, r, hand


def assert_same(got, want, what):
    for name, g, w in zip(("2theta", "distance", "handedness"), got, want, strict=True):
        assert abs(g - w) <= REL * abs(w), f"{what}: {name} {g!r} != {w!r}"


@pytest.fixture(scope="module", params=sorted(GEOMETRIES))
def case(request):
    scene = scene_of(GEOMETRIES[request.param])
    return request.param, scene, DetectorGeometry.from_scene(scene), traced_positions(scene)


def test_geometry_record_is_the_scene(case):
    name, scene, g, ours = case
    for (s, f), pos in ours.items():
        assert np.allclose(g.pixel_centres(s, f), pos, rtol=0, atol=1e-15), name
    assert DetectorGeometry.from_dict(g.to_dict()) == g
    R = lab_to_mcstas(g.beam)
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-15) and np.linalg.det(R) > 0
    assert np.allclose(R @ np.asarray(g.beam), (0, 0, 1), atol=1e-15)


def test_nxmx_read_back_with_nxmx(case, tmp_path):
    h5py = pytest.importorskip("h5py")
    nxmx = pytest.importorskip("nxmx")
    from nbnumba.formats.nxmx import write_nxmx

    name, scene, g, ours = case
    frames = [np.full((64, 80), 40 + i, np.uint16) for i in range(3)]
    path = tmp_path / "series_master.h5"
    write_nxmx(str(path), g, frames, 3, content="noise")
    with h5py.File(path) as h5:
        entry = nxmx.NXmx(h5).entries[0]
        assert entry.definition == "NXmx"
        (instrument,) = entry.instruments
        wl = instrument.beams[0].incident_wavelength.to("m").magnitude
        assert abs(wl - 1.3e-10) <= 1e-15 * 1.3e-10
        sample = entry.samples[0]
        omega = sample.depends_on
        assert omega.transformation_type == "rotation"
        assert np.allclose(omega[()].to("deg").magnitude, [10.0, 10.5, 11.0], rtol=0,
                           atol=1e-12)
        assert omega.increment_set.to("deg").magnitude == pytest.approx(0.5, abs=1e-15)
        axis = np.asarray(omega.vector, dtype=float)
        module = instrument.detectors[0].modules[0]
        assert list(module.data_size) == [64, 80]
        A = nxmx.get_cumulative_transformation(
            nxmx.get_dependency_chain(module.module_offset))[0]
        origin, rot = A[:3, 3], A[:3, :3]
        fast = rot @ np.asarray(module.fast_pixel_direction.vector, dtype=float)
        slow = rot @ np.asarray(module.slow_pixel_direction.vector, dtype=float)
        px_f = module.fast_pixel_direction[()].to("mm").magnitude[0]
        px_s = module.slow_pixel_direction[()].to("mm").magnitude[0]
        for (s, f), pos in ours.items():
            p = (origin + (f + 0.5) * px_f * fast + (s + 0.5) * px_s * slow) / 1000.0
            assert_same(properties(p, (0, 0, 1), axis),
                        properties(pos, g.beam, g.spindle), f"{name} pixel {(s, f)}")
        data = entry.data[0]
        stored = h5[data.path + "/data"]
        assert stored.shape == (3, 64, 80) and stored.chunks == (1, 64, 80)
        assert stored.id.get_create_plist().get_filter(0)[0] == 32008  # bitshuffle
        assert np.array_equal(stored[2], np.full((64, 80), 2, np.int32))  # offset removed
        assert instrument.detectors[0].saturation_value == 65535 - 40


def test_poni_through_pyfai(case, tmp_path):
    pyFAI = pytest.importorskip("pyFAI")
    name, scene, g, ours = case
    path = tmp_path / "g.poni"
    path.write_text(poni(g))
    ai = pyFAI.load(str(path))
    i1, i2 = np.meshgrid(np.arange(64, dtype=float), np.arange(80, dtype=float), indexing="ij")
    tth = ai.tth(i1, i2)
    ours_tth = g.two_theta(i1, i2)
    assert np.max(np.abs(tth - ours_tth) / ours_tth) <= REL, name
    for (s, f), pos in ours.items():
        assert abs(tth[s, f] - properties(pos, g.beam, g.spindle)[0]) <= REL * tth[s, f]
    assert ai.wavelength == pytest.approx(1.3e-10, rel=1e-15)
    assert poni_parameters(g)["dist"] > 0


def _xds_values(text: str) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {}
    for line in text.splitlines():
        line = line.split("!")[0]
        for key, rest in re.findall(r"([A-Z_\-]+)=\s*([^=]*?)(?=\s+[A-Z_\-]+=|$)", line):
            try:
                values[key] = [float(v) for v in rest.split()]
            except ValueError:
                values[key] = []
    return values


def test_xds_fragment(case):
    name, scene, g, ours = case
    v = _xds_values(xds_inp(g))
    ex = np.array(v["DIRECTION_OF_DETECTOR_X-AXIS"])
    ey = np.array(v["DIRECTION_OF_DETECTOR_Y-AXIS"])
    ez = np.cross(ex, ey)
    qx, qy = v["QX"][0], v["QY"][0]
    beam = np.array(v["INCIDENT_BEAM_DIRECTION"])
    axis = np.array(v["ROTATION_AXIS"])
    assert v["X-RAY_WAVELENGTH"][0] == pytest.approx(1.3, rel=1e-15)
    assert v["STARTING_ANGLE"] == [10.0] and v["OSCILLATION_RANGE"] == [0.5]
    assert (v["NX"], v["NY"]) == ([80.0], [64.0])
    for (s, f), pos in ours.items():
        # XDS: pixel centres at integer coordinates, the first pixel at 1
        x, y = f + 1.0, s + 1.0
        p = (v["DETECTOR_DISTANCE"][0] * ez + (x - v["ORGX"][0]) * qx * ex
             + (y - v["ORGY"][0]) * qy * ey) / 1000.0
        assert_same(properties(p, beam, axis), properties(pos, g.beam, g.spindle),
                    f"{name} pixel {(s, f)}")


PERPENDICULAR = [*BASE, "-Xbeam", "3.3", "-Ybeam", "9.1"]


def _dxtbx_like(header: str, shape: tuple[int, int]):
    """What dxtbx's FormatCBFMini makes of the header (imgCIF frame, fast +x, slow -y)."""
    fields = {}
    for record in header.splitlines():
        tokens = record.replace("=", "").replace(":", "").split()
        if len(tokens) > 1:
            fields[tokens[1]] = " ".join(tokens[2:])
    distance = float(fields["Detector_distance"].split()[0]) * 1000
    bx, by = map(float, fields["Beam_xy"].replace("(", "").replace(")", "").replace(
        ",", "").split()[:2])
    px = float(fields["Pixel_size"].replace("m", "").replace("x", "").split()[0]) * 1000
    fast, slow, normal = np.array([1.0, 0, 0]), np.array([0, -1.0, 0]), np.array([0, 0, -1.0])
    origin = -bx * px * fast - by * px * slow + distance * normal
    return fields, origin, fast, slow, px


def test_minicbf_header_perpendicular(tmp_path):
    fabio = pytest.importorskip("fabio")
    scene = scene_of(PERPENDICULAR)
    g = DetectorGeometry.from_scene(scene)
    ours = traced_positions(scene)
    raw = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80) + 40
    warnings = write_minicbf(str(tmp_path / "x.cbf"), raw, g)
    assert warnings == []
    image = fabio.open(str(tmp_path / "x.cbf"))
    assert image.header["_array_data.header_convention"] == "PILATUS_1.2"
    assert np.array_equal(image.data, raw.astype(np.int32) - 40)
    fields, origin, fast, slow, px = _dxtbx_like(image.header["_array_data.header_contents"],
                                                 (64, 80))
    assert float(fields["Wavelength"].split()[0]) == pytest.approx(1.3, rel=1e-15)
    assert float(fields["Start_angle"].split()[0]) == 10.0
    assert float(fields["Angle_increment"].split()[0]) == 0.5
    assert fields["Count_cutoff"].split()[0] == str(65535 - 40)
    beam, axis = np.array([0, 0, -1.0]), np.array([1.0, 0, 0])  # dxtbx's defaults
    for (s, f), pos in ours.items():
        p = (origin + (f + 0.5) * px * fast + (s + 0.5) * px * slow) / 1000
        assert_same(properties(p, beam, axis), properties(pos, g.beam, g.spindle),
                    f"pixel {(s, f)}")


def test_minicbf_warns_once_for_awkward_geometry():
    g = DetectorGeometry.from_scene(scene_of(AWKWARD))
    text, warnings = minicbf_header(g)
    assert len(warnings) == 1 and "cannot describe" in warnings[0]
    assert "# Beam_xy" in text and "# Detector_distance" in text


def test_fabio_opens_nxmx_without_path(tmp_path):
    fabio = pytest.importorskip("fabio")
    pytest.importorskip("hdf5plugin")
    from nbnumba.formats.nxmx import write_nxmx

    g = DetectorGeometry.from_scene(scene_of(PERPENDICULAR))
    frames = [np.full((64, 80), 1.5 * i, np.float32) for i in range(2)]
    write_nxmx(str(tmp_path / "s_master.h5"), g, frames, 2, content="float")
    image = fabio.open(str(tmp_path / "s_master.h5"))
    assert image.nframes == 2
    assert np.array_equal(image.getframe(1).data, frames[1])


def test_single_run_flags(tmp_path, monkeypatch):
    fabio = pytest.importorskip("fabio")
    from nbnumba.cli.main import main

    monkeypatch.chdir(tmp_path)
    noisy = [a for a in PERPENDICULAR if a != "-nonoise"]
    code = main([*noisy, "-seed", "5", "-geometry_out", "geo", "-cbffile", "one.cbf",
                 "-quiet"])
    assert code == 0
    assert (tmp_path / "geo.XDS.INP").is_file() and (tmp_path / "geo.poni").is_file()
    noise = (tmp_path / "noiseimage.img").read_bytes()
    expected = np.frombuffer(noise[512:], dtype="<u2").reshape(64, 80).astype(np.int32) - 40
    assert np.array_equal(fabio.open(str(tmp_path / "one.cbf")).data, expected)


def test_curved_detector_is_flagged_everywhere():
    g = DetectorGeometry.from_scene(scene_of(["-curved_det", *PERPENDICULAR]))
    assert any("curved" in p for p in g.flat_problems())
    assert "! WARNING: -curved_det" in xds_inp(g)
    assert "# WARNING: -curved_det" in poni(g)
    _, warnings = minicbf_header(g)
    assert len(warnings) == 1 and "curved" in warnings[0]


def test_compressed_chunks_round_trip(tmp_path):
    h5py = pytest.importorskip("h5py")
    from nbnumba.formats.nxmx import compress_frame, write_nxmx

    g = DetectorGeometry.from_scene(scene_of(PERPENDICULAR))
    raw = [np.arange(64 * 80, dtype=np.uint16).reshape(64, 80) + 40 + i for i in range(2)]
    chunks = [compress_frame(r, "noise", g.adc_offset) for r in raw]
    write_nxmx(str(tmp_path / "c.h5"), g, chunks, 2, content="noise", compressed=True)
    with h5py.File(tmp_path / "c.h5") as h5:
        for i in range(2):
            assert np.array_equal(h5["entry/data/data"][i], raw[i].astype(np.int32) - 40)


@pytest.mark.parametrize("argv", [["-geometry_out"], ["-cbffile", ""]])
def test_flag_without_name_is_a_usage_error(argv, capsys):
    from nbnumba.cli.main import main

    assert main([*PERPENDICULAR, *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and argv[0] in err[0]


# ---- series through the command line (a one-worker cluster, HDF5_PLUGIN_PATH as dxtbx
# users set it: hdf5plugin's plugin folder)


@pytest.fixture(scope="module")
def plugin_path_client():
    hdf5plugin = pytest.importorskip("hdf5plugin")
    from nbnumba.distributed import local_cluster_client

    with pytest.MonkeyPatch.context() as mp:
        # the workers are new processes: HDF5 reads the variable when they start
        mp.setenv("HDF5_PLUGIN_PATH", hdf5plugin.PLUGIN_PATH)
        client = local_cluster_client(
            1, env={"NUMBA_NUM_THREADS": "1", "HDF5_PLUGIN_PATH": hdf5plugin.PLUGIN_PATH})
    yield client
    cluster = client.cluster
    client.close()
    cluster.close()


def run_series(args, capsys) -> tuple[int, str, str]:
    from nbnumba.cli.main import main

    code = main(["series", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_series_geometry_out_through_the_cli(tmp_path, plugin_path_client, capsys):
    """``series --geometry-out NAME`` writes NAME.XDS.INP and NAME.poni naming the frames
    (it raised ModuleNotFoundError: nbnumba.series after computing every frame)."""
    code, out, err = run_series(
        ["--frames", "2", "--template", str(tmp_path / "g_{frame:03d}.cbf"),
         "--scheduler", plugin_path_client.scheduler.address, "--no-progress",
         "--geometry-out", str(tmp_path / "geo"), *PERPENDICULAR], capsys)
    assert code == 0, err
    assert f"series: geometry in {tmp_path / 'geo.XDS.INP'} and {tmp_path / 'geo.poni'}" in out
    text = (tmp_path / "geo.XDS.INP").read_text()
    assert f"NAME_TEMPLATE_OF_DATA_FRAMES= {tmp_path / 'g_???.cbf'}" in text
    assert "DATA_RANGE= 0 1" in text
    assert (tmp_path / "geo.poni").is_file()


def test_nxmx_series_with_hdf5_plugin_path(tmp_path, plugin_path_client, capsys):
    """With HDF5_PLUGIN_PATH at hdf5plugin's folder HDF5 loads the bitshuffle filter
    itself, unbound, and every dataset creation failed ("error during user callback",
    exit 3); the writers register hdf5plugin's own copy."""
    h5py = pytest.importorskip("h5py")
    code, out, err = run_series(
        ["--frames", "2", "--template", str(tmp_path / "s_master.h5"),
         "--scheduler", plugin_path_client.scheduler.address, "--no-progress",
         *PERPENDICULAR], capsys)
    assert code == 0, err
    with h5py.File(tmp_path / "s_master.h5") as h5:
        assert h5["entry/data/data"].shape == (2, 64, 80)


def test_writer_with_hdf5_plugin_path_in_a_fresh_process(tmp_path):
    """The client side (the NXmx stack, write_nxmx) in a process started with the
    variable set, as a shell with HDF5_PLUGIN_PATH exported starts it."""
    import os
    import subprocess
    import sys

    hdf5plugin = pytest.importorskip("hdf5plugin")
    script = ("import numpy as np, h5py\n"
              "from nbnumba.formats.nxmx import write_nxmx\n"
              "from nbnumba.formats import DetectorGeometry\n"
              "g = DetectorGeometry(4, 3, 1e-4, (0, 0, 1), (0, -1, 0), (1, 0, 0),\n"
              "    (0.1, 1e-4, -2e-4), (1, 0, 0), (0, 0, 1), (0, 0, 1), 1e-10, 0.0, 1.0)\n"
              f"write_nxmx({str(tmp_path / 'w.h5')!r}, g, [np.ones((3, 4), np.float32)], 1)\n"
              f"print(h5py.File({str(tmp_path / 'w.h5')!r})['entry/data/data'][0].sum())\n")
    env = {**os.environ, "HDF5_PLUGIN_PATH": hdf5plugin.PLUGIN_PATH}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "12.0"
