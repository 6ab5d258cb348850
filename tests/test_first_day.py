"""A new user's first day with the library (issue 24): names, warnings, arrays, progress, data."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def _python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (the import order is what is tested)."""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_engines_is_callable_before_and_after_the_submodule_is_imported():
    done = _python(
        "import nbnumba as nb\n"
        "before = [e.name for e in nb.engines()]\n"
        "import nbnumba.engines\n"
        "from nbnumba import engines as module\n"
        "after = [e.name for e in nb.engines()]\n"
        "assert before == after == [e.name for e in module.engines()], (before, after)\n"
        "assert module.select('exact').name == 'exact'\n"
        "print('ok', *after)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:3] == ["ok", "exact", "vectorised"]


def test_engines_is_callable_after_a_run():
    done = _python(
        "import nbnumba as nb\n"
        "nb.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, N=1,\n"
        "              detpixels=4, progress=False).run()\n"
        "print([e.name for e in nb.engines()])\n")
    assert done.returncode == 0, done.stderr
    assert "exact" in done.stdout


def test_every_package_name_survives_its_submodules_import():
    """A lazy name that is also a submodule must stay usable once that module is imported."""
    done = _python(
        "import importlib, pkgutil, nbnumba as nb\n"
        "for m in pkgutil.walk_packages(nb.__path__, 'nbnumba.'):\n"
        "    if m.name.startswith(('nbnumba.kernels.cuda', 'nbnumba.cli')):\n"
        "        continue\n"
        "    importlib.import_module(m.name)\n"
        "assert callable(nb.engines) and callable(nb.series) and callable(nb.tiles)\n"
        "assert callable(nb.Simulation) and callable(nb.select_engine)\n"
        "print('ok')\n")
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------ warnings, the Python way

TINY = dict(cell=(100, 100, 100, 90, 90, 90), default_F=100, N=1, detpixels=4)


def _ours(caught) -> list[str]:
    import nbnumba as nb

    return [str(w.message) for w in caught if issubclass(w.category, nb.NbnumbaWarning)]


def test_simulation_warnings_are_python_warnings_and_kept_as_lines():
    import warnings

    import nbnumba as nb

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim = nb.Simulation.from_args(["-cell", "100", "100", "100", "90", "90", "90",
                                       "-default_F", "100", "-detpixels", "4",
                                       "-distnace", "150"])
    texts = _ours(caught)
    assert texts and texts[0].startswith("-distnace matches no nanoBragg.c option")
    assert caught[0].filename == __file__  # the caller's line, not the library's
    assert any(w.startswith("warning: -distnace matches no") for w in sim.warnings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sim.run(progress=False)
    assert not any("-distnace" in t for t in _ours(caught))  # issued once, when made
    assert any(w.startswith("warning: -distnace") for w in res.warnings)


def test_warnings_are_filterable_by_our_category():
    import warnings

    import nbnumba as nb

    assert issubclass(nb.CParityWarning, nb.NbnumbaWarning)
    assert issubclass(nb.NbnumbaWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", nb.NbnumbaWarning)
        try:
            nb.Simulation.from_args(["-default_F", "100", "-distnace", "150"])
        except nb.NbnumbaWarning as exc:
            assert "-distnace" in str(exc)
        else:
            raise AssertionError("no NbnumbaWarning")


def test_series_issues_a_shared_warning_once():
    import warnings

    import nbnumba as nb

    sim = nb.Simulation(**TINY, osc=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = list(sim.series(3))
    assert sum("every frame has the same angle" in t for t in _ours(caught)) == 1
    assert all(any("every frame has the same angle" in w for w in r.warnings)
               for r in results)


def _companion_inputs(tmp_path, monkeypatch):
    import shutil

    import pytest

    water = REPO.parent / "shared" / "companions" / "inputs" / "water.stol"
    if not water.is_file():
        pytest.skip("../shared/companions/inputs is not present")
    shutil.copy(water, tmp_path / "water.stol")
    monkeypatch.chdir(tmp_path)


def test_nonbragg_and_noisify_warnings_are_python_warnings(tmp_path, monkeypatch):
    import warnings

    import numpy as np

    import nbnumba as nb

    _companion_inputs(tmp_path, monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = nb.NonBragg.from_args(["-stol", "water.stol", "-detpixels", "8", "-nonoise",
                                     "-twotheta_axis", "0.6", "0.8", "0"]).run()
    assert any("also matched -twotheta" in t for t in _ours(caught))
    assert any("also matched -twotheta" in w for w in res.warnings)
    img = np.zeros((8, 8), np.float32)
    img[3, 7] = 100.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = nb.Noisify(detpixels=8, nonoise=True, psf="gauss", psf_fwhm=150, psf_radius=2,
                         pixel=0.1, seed=1).run(image=img)
    assert any("line 901" in t for t in _ours(caught))
    assert any("line 901" in w for w in res.warnings)


def test_cli_prints_each_warning_once_as_before(tmp_path, monkeypatch, capsys):
    from nbnumba.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100",
                 "-detpixels", "4", "-nonoise", "-nopgm", "-noprogress", "-distnace", "150",
                 "-floatfile", "f.bin", "-intfile", "i.img"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "-distnace" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: -distnace matches no")
    assert "NbnumbaWarning" not in err


# ------------------------------------------------------------ arrays where files go

def test_hkl_and_mat_arrays_equal_their_files(case_workdir, monkeypatch):
    """hkl= and mat= take the files' numbers as arrays: the same image, bit for bit."""
    import numpy as np

    import nbnumba as nb
    from nbnumba.io import read_mat

    monkeypatch.chdir(case_workdir)
    flags = dict(N=10, lambda_=0.9768, detpixels=96, pixel=0.5, distance=120,
                 nointerpolate=True, seed=3)
    by_files = nb.Simulation(mat="A.mat", hkl="scaled.hkl", **flags).run()
    rows = [list(map(float, line.split()[:4])) for line in open("scaled.hkl") if line.split()]
    matrix = np.array(read_mat("A.mat")).T  # the file's nine numbers in its order
    by_arrays = nb.Simulation(mat=matrix, hkl=np.array(rows), **flags).run()
    assert by_files.image.max() > 0
    assert np.array_equal(by_files.image, by_arrays.image)
    # the nine numbers flat, in the file's order (README), as a list, tuple or array
    nine = [float(v) for v in open("A.mat").read().split()[:9]]
    assert nine == list(matrix.ravel())
    for flat in (nine, tuple(nine), np.array(nine)):
        by_flat = nb.Simulation(mat=flat, hkl=np.array(rows), **flags).run()
        assert np.array_equal(by_files.image, by_flat.image)


def test_a_malformed_table_is_refused_clearly():
    import numpy as np
    import pytest

    import nbnumba as nb

    with pytest.raises(TypeError, match=r"hkl=<5x3 array>: an hkl table has rows h, k, l, F"):
        nb.Simulation(cell=(100, 100, 100, 90, 90, 90), hkl=np.ones((5, 3)))
    with pytest.raises(TypeError, match=r"hkl=<1x4 array>: .* whole-number h, k, l"):
        nb.Simulation(cell=(100, 100, 100, 90, 90, 90), hkl=[[0.5, 0, 0, 10]])
    with pytest.raises(TypeError, match=r"mat=<2x3 array>: an A matrix is 3x3"):
        nb.Simulation(mat=np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"mat=<8 array>: an A matrix is 3x3 \(or 9\)"):
        nb.Simulation(mat=[0.01] * 8)
    with pytest.raises(TypeError, match=r"-floatfile takes a file name"):
        nb.Simulation(cell=(100, 100, 100, 90, 90, 90), floatfile=np.ones((2, 2)))


# ------------------------------------------------------------ Noisify's array size

def test_noisify_refuses_an_array_of_another_size():
    import numpy as np
    import pytest

    import nbnumba as nb

    small = np.ones((64, 64), np.float32)  # was zero-padded to 100x100
    with pytest.raises(ValueError, match=r"a 64x64 \(fast x slow\) array, not the 100x100"):
        nb.Noisify(seed=1, detpixels=100, nonoise=True).run(image=small)
    with pytest.raises(nb.errors.UsageError, match="image: 4000 values, not the 10000"):
        nb.Noisify(seed=1, detpixels=100, nonoise=True).run(image=np.ones(4000, np.float32))
    wide = np.ones((8, 16), np.float32)  # the array's own shape, or flags that agree
    assert nb.Noisify(seed=1, nonoise=True).run(image=wide).int_image.shape == (8, 16)
    res = nb.Noisify(seed=1, detpixels_x=16, detpixels_y=8, nonoise=True).run(image=wide)
    assert res.int_image.shape == (8, 16)


def test_noisify_cli_still_reads_a_file_of_another_size_as_c(tmp_path, monkeypatch, capsys):
    import numpy as np

    from nbnumba.cli.noisify import main

    monkeypatch.chdir(tmp_path)
    np.ones(64 * 64, np.float32).tofile("small.bin")
    assert main(["-floatfile", "small.bin", "-detpixels", "100", "-nonoise", "-nopgm",
                 "-seed", "1"]) == 0
    assert "leaves the rest 0" in capsys.readouterr().err


# ------------------------------------------------------------ progress off a terminal

def test_progress_in_a_log_is_plain_periodic_lines():
    import io
    import time

    from nbnumba.progress import progress_bar

    log = io.StringIO()
    bar = progress_bar(10, file=log, log_interval_s=0.02)
    for _ in range(10):
        time.sleep(0.01)
        bar.update(1)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and log.getvalue().endswith("\n")
    assert 1 < len(lines) <= 10
    assert lines[-1].startswith("nanobragg-nb: 100% (10/10 row) [")
    assert len(set(lines)) == len(lines)  # close() does not repeat the last line
    quiet = io.StringIO()  # a run shorter than the interval says nothing
    bar = progress_bar(10, file=quiet, log_interval_s=30)
    bar.update(10)
    bar.close()
    assert quiet.getvalue() == ""


def test_run_progress_reaches_a_log(monkeypatch, capsys):
    import nbnumba as nb
    from nbnumba import progress

    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    nb.Simulation(**TINY).run(progress=True)
    err = capsys.readouterr().err  # pytest's capture: not a terminal
    assert "nanobragg-nb: 100% (4/4 row)" in err and "\r" not in err


def test_progress_in_a_notebook_uses_tqdm_auto():
    """In an IPython kernel stderr is no terminal, yet renders bars: tqdm.auto's is used."""
    done = _python(
        "import sys, types\n"
        "sys.modules['ipykernel.zmqshell'] = types.ModuleType('ipykernel.zmqshell')\n"
        "from nbnumba.progress import in_notebook, progress_bar\n"
        "assert in_notebook()\n"
        "bar = progress_bar(5, 'row', 'cell')\n"
        "bar.update(5)\n"
        "bar.close()\n")
    assert done.returncode == 0, done.stderr
    assert "cell: 100%" in done.stderr


# ------------------------------------------------------------ install: light core, data

OPTIONAL = "fabio,h5py,hdf5plugin,dask,distributed,numba_cuda,matplotlib"


def _without_extras(code: str, cwd) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter where no extra is importable (a bare install)."""
    block = "".join(f"sys.modules[{m!r}] = None\n" for m in OPTIONAL.split(","))
    return subprocess.run([sys.executable, "-c", "import sys\n" + block + code], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})


def test_the_core_runs_without_any_extra(tmp_path):
    done = _without_extras(
        "import numpy as np, nbnumba as nb\n"
        "from nbnumba.cli.main import main\n"
        "from nbnumba.cli.nonbragg import main as nonbragg\n"
        "from nbnumba.cli.noisify import main as noisify\n"
        "from nbnumba.data import stol_path\n"
        "run = ['-cell', '100', '100', '100', '90', '90', '90', '-default_F', '100',\n"
        "       '-detpixels', '16', '-noprogress', '-seed', '1']\n"
        "assert main(run + ['-floatfile', 'f.bin', '-intfile', 'i.img']) == 0\n"
        "assert nonbragg(['-stol', str(stol_path('water')), '-detpixels', '16',\n"
        "                 '-floatfile', 'w.bin', '-nonoise']) == 0\n"
        "assert noisify(['-floatfile', 'w.bin', '-detpixels', '16', '-seed', '1']) == 0\n"
        "assert nb.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100,\n"
        "                     detpixels=8).run().image.shape == (8, 8)\n"
        "assert main(run + ['-cbffile', 'x.cbf']) == 4\n"
        "print('ok')\n", tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "error: -cbffile needs fabio, which is not installed: pip install " \
           "'nbnumba[formats]'" in done.stderr
    assert not (tmp_path / "x.cbf").exists()


def test_series_without_dask_names_the_extra(tmp_path):
    done = _without_extras(
        "from nbnumba.cli.main import main\n"
        "sys.exit(main(['series', '--frames', '2', '-cell', '100', '100', '100', '90', '90',\n"
        "               '90', '-default_F', '100', '-detpixels', '8']))\n", tmp_path)
    assert done.returncode == 4, done.stderr
    assert done.stderr.strip().endswith("pip install 'nbnumba[dask]'")
    assert list(tmp_path.iterdir()) == []


def test_extras_names_what_is_missing():
    import pytest

    from nbnumba.errors import ResourceError
    from nbnumba.extras import missing, require

    assert missing("numpy", "no_such_module_xyz") == ["no_such_module_xyz"]
    with pytest.raises(ResourceError, match=r"^-x needs no_such_module_xyz, which is not "
                                            r"installed: pip install 'nbnumba\[formats\]'$"):
        require("-x", "formats", "no_such_module_xyz")


def test_stol_tables_ship_as_package_data():
    import pytest

    import nbnumba as nb
    from nbnumba.data import STOL_TABLES, stol_path

    shared = REPO.parent / "shared" / "companions" / "inputs"
    for name in ("water", "air", "ice"):
        path = stol_path(name)
        assert path.is_file() and path == stol_path(f"{name}.stol")
        if shared.is_dir():
            assert path.read_bytes() == (shared / f"{name}.stol").read_bytes()
    assert set(STOL_TABLES) == {"water", "air", "ice"}
    with pytest.raises(ValueError, match="there are: water, air, ice"):
        stol_path("vodka")
    res = nb.NonBragg(stol=stol_path("water"), detpixels=8, nonoise=True).run()
    assert res.image.shape == (8, 8) and float(res.image.max()) > 0
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = config["tool"]["setuptools"]["package-data"]["nbnumba.data"]
    assert "*.stol" in data  # in the wheel (checked by building one: see the report)
    core = config["project"]["dependencies"]
    assert not any(d.startswith(("fabio", "h5py", "dask", "numba-cuda")) for d in core)


# ------------------------------------------------------------ C's stale φ=0 rotation

STALE = "the phi steps include phi = 0 and other angles: nanoBragg.c does not rotate"


def test_stale_rotation_rule_matches_the_golden_carryover_cases():
    """The golden cases mark where C's φ=0 carry-over changes the image (README)."""
    import pytest
    from conftest import golden_case_names, load_case

    from nbnumba.cargs import parse_args
    from nbnumba.setup.rules import stale_rotation_differs
    from nbnumba.setup.sampling import resolve_sampling

    names = golden_case_names()
    if not names:
        pytest.skip("../shared/golden is not present")
    marks = {}
    for name in names:
        case = load_case(name)
        o, _ = parse_args(list(case["args"]))
        marks[name] = (stale_rotation_differs(resolve_sampling(o).phi_values),
                       bool(case["carryover"]))
    assert all(ours == theirs for ours, theirs in marks.values()), marks
    assert any(theirs for _, theirs in marks.values())


def test_stale_rotation_note_once_on_stderr_only_where_c_differs(tmp_path, monkeypatch,
                                                                 capsys):
    from nbnumba.cli.main import main

    monkeypatch.chdir(tmp_path)
    base = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100",
            "-detpixels", "8", "-nonoise", "-nopgm", "-noprogress", "-floatfile", "f.bin",
            "-intfile", "i.img"]
    for extra, said in [(["-osc", "1"], True), (["-phi", "0", "-osc", "1", "-phisteps", "3"],
                                                True),
                        (["-osc", "1", "-c_parity"], False), (["-phi", "1", "-osc", "1"], False),
                        ([], False), (["-phi", "-1", "-osc", "1", "-phisteps", "3"], False)]:
        assert main([*base, *extra]) == 0
        err = capsys.readouterr().err
        assert err.count(STALE) == (1 if said else 0), (extra, err)


def test_stale_rotation_is_a_cparity_warning_in_the_api():
    import warnings

    import nbnumba as nb

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = nb.Simulation(**TINY, osc=1).run()
    assert [w.category for w in caught if STALE in str(w.message)] == [nb.CParityWarning]
    assert sum(STALE in w for w in res.warnings) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nb.Simulation(**TINY, osc=1, c_parity=True).run()
    assert not any(STALE in str(w.message) for w in caught)


def test_stale_rotation_frames_of_a_series():
    from nbnumba.constants import RTD
    from nbnumba.setup.rules import stale_rotation_frames, stale_rotation_note

    starts = [(-2.0 + i * 1.0) / RTD for i in range(5)]  # -phi -2 -osc 1, frame by frame
    assert stale_rotation_frames(starts, 2, 0.5 / RTD, False) == [2]
    assert stale_rotation_frames(starts, 2, 0.5 / RTD, True) == []
    assert stale_rotation_frames(starts, 1, 0.0, False) == []  # stills: unrotated anyway
    assert stale_rotation_frames([-1.0 / RTD], 10**9, 0.5 / RTD, False) == [0]  # cheap
    assert stale_rotation_note([2]).startswith("warning: frame 2: the phi steps include")


def test_the_note_is_said_exactly_where_c_differs(tmp_path, monkeypatch, capsys):
    """Against a nanoBragg.c build: the image equals C's where nothing is said."""
    import os
    import pathlib

    import numpy as np
    import pytest

    c_bin = os.environ.get("NB_C_BIN")
    if not c_bin or not pathlib.Path(c_bin).is_file():
        pytest.skip("NB_C_BIN is not set to a nanoBragg.c build")
    from nbnumba.cli.main import main

    monkeypatch.chdir(tmp_path)
    base = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
            "-detpixels", "32", "-pixel", "0.5", "-distance", "100", "-nonoise", "-nopgm",
            "-misset", "10", "20", "30"]
    for extra in (["-osc", "1"], ["-phi", "1", "-osc", "1"]):
        subprocess.run([c_bin, *base, *extra, "-floatfile", "c.bin"], capture_output=True,
                       check=True)
        assert main([*base, *extra, "-floatfile", "p.bin", "-noprogress"]) == 0
        said = STALE in capsys.readouterr().err
        same = np.array_equal(np.fromfile("c.bin", "<f4"), np.fromfile("p.bin", "<f4"))
        assert said != same, (extra, said, same)


def test_the_api_raises_the_projects_errors_with_one_line():
    """A singular mat= array (the check -mat FILE gets, exit 3 there) and from_models of
    something that is not an Experiment: nbnumba's errors, not ZeroDivisionError or
    AttributeError."""
    import numpy as np
    import pytest

    import nbnumba as nb
    from nbnumba.errors import NbError

    with pytest.raises(NbError, match=r"^mat=<3x3 array>: the reciprocal cell vectors are "
                                      r"coplanar \(singular matrix\)$"):
        nb.Simulation(mat=np.zeros((3, 3)))
    with pytest.raises(NbError, match="singular matrix"):
        nb.Simulation(mat=[1, 0, 0, 0, 1, 0, 0, 0, 0])
    for wrong, what in ((None, "NoneType"), ("run.expt", "a file name")):
        with pytest.raises(TypeError, match=rf"^from_models takes an nbnumba.models.Experiment, "
                                            rf"not {what}; for a file use Simulation.from_args"):
            nb.Simulation.from_models(wrong)


# ------------------------------------------------------------ the programs' default beams

def test_nonbragg_default_beam_is_named_with_nanobraggs_equivalent(tmp_path, monkeypatch,
                                                                    capsys):
    """Without -Xbeam/-Ybeam, nonbragg-nb says once where nonBragg.c's default puts the beam
    and which nanobragg-nb flags put nanoBragg.c's beam on the same point; following it
    gives nanoBragg.c's Fbeam/Sbeam = nonBragg.c's Xbeam/Ybeam. A beam given by any of
    nonBragg.c's flags gets no such line."""
    import re

    from nbnumba.cli.main import main as nanobragg_main
    from nbnumba.cli.nonbragg import main

    _companion_inputs(tmp_path, monkeypatch)
    geometry = ["-lambda", "1", "-distance", "100", "-detpixels_f", "300", "-detpixels_s",
                "200", "-pixel", "0.1"]
    assert main(["-stol", "water.stol", *geometry, "-nonoise", "-noprogress"]) == 0
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if "default beam centre" in ln]
    assert len(lines) == 1, err
    assert "-Xbeam 14.95 -Ybeam 10.05 mm" in lines[0]
    xbeam, ybeam = re.search(r"Xbeam=(\S+) Ybeam=(\S+)", out).groups()
    suggested = re.search(r"MOSFLM (-Xbeam \S+ -Ybeam \S+) is this point", lines[0])[1]
    assert nanobragg_main(["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1",
                           "-N", "1", *geometry, *suggested.split(), "-floatfile", "s.bin",
                           "-nonoise", "-nopgm", "-noprogress"]) == 0
    fbeam, sbeam = re.search(r"Fbeam=(\S+) Sbeam=(\S+)", capsys.readouterr().out).groups()
    assert (float(fbeam), float(sbeam)) == (float(xbeam), float(ybeam))
    # rotated about the sample, the beam leaves that point and no MOSFLM flags follow it
    assert main(["-stol", "water.stol", *geometry, "-twotheta", "20", "-nonoise",
                 "-noprogress"]) == 0
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "no -Xbeam" in ln]
    assert "closest point at -Xclose 14.95 -Yclose 10.05 mm" in line and "MOSFLM" not in line
    for given in (["-Xbeam", "15", "-Ybeam", "10"], ["-Ybeam", "10"], ["-Xclose", "15"],
                  ["-ORGX", "150"]):
        assert main(["-stol", "water.stol", *geometry, *given, "-nonoise", "-noprogress"]) == 0
        assert "default beam centre" not in capsys.readouterr().err, given


def test_noisify_names_the_header_values_it_takes_from_its_defaults(tmp_path, monkeypatch,
                                                                     capsys):
    """noisify.c's SMV headers carry its own defaults (beam at the detector's centre,
    OSC_RANGE=1, ...) where no flag gives them: noisify-nb names those, says -header
    copies the simulator's header, and says nothing once the flags or -header give them.
    In the API only writing the files says it (a result used as an array, as
    Result.detected does, has no header to mislead)."""
    import warnings

    import numpy as np

    import nbnumba as nb
    from nbnumba.cli.noisify import main
    from nbnumba.cli.nonbragg import main as nonbragg_main

    _companion_inputs(tmp_path, monkeypatch)
    assert nonbragg_main(["-stol", "water.stol", "-detpixels", "64", "-pixel", "0.1",
                          "-Xbeam", "3.2", "-Ybeam", "3.3", "-floatfile", "w.bin",
                          "-intfile", "w.img", "-nonoise", "-noprogress"]) == 0
    capsys.readouterr()
    assert main(["-floatfile", "w.bin", "-detpixels", "64", "-pixel", "0.1", "-seed", "1"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "SMV headers take" in ln]
    assert len(lines) == 1
    for item in ("BEAM_CENTER_X=3.2 BEAM_CENTER_Y=3.2", "DISTANCE=100", "WAVELENGTH=1",
                 "OSC_RANGE=1", "-header SIM.img"):
        assert item in lines[0], item
    assert "PIXEL_SIZE" not in lines[0]
    assert main(["-floatfile", "w.bin", "-header", "w.img", "-seed", "1"]) == 0
    assert "SMV headers take" not in capsys.readouterr().err
    simulator = (tmp_path / "w.img").read_bytes()[:512]
    assert (tmp_path / "noiseimage.img").read_bytes()[:512] == simulator  # its header, as C
    assert main(["-floatfile", "w.bin", "-detpixels", "64", "-pixel", "0.1", "-seed", "1",
                 "-distance", "100", "-lambda", "1", "-osc", "0", "-Xbeam", "3.2",
                 "-Ybeam", "3.3"]) == 0
    assert "SMV headers take" not in capsys.readouterr().err
    header = (tmp_path / "intimage.img").read_bytes()[:512].decode("latin-1")
    assert "BEAM_CENTER_X=3.2;" in header and "BEAM_CENTER_Y=3.1;" in header
    image = np.ones((8, 8), np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = nb.Noisify(detpixels=8, seed=1).run(image=image)
    assert not any("SMV headers" in str(w.message) for w in caught)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res.write("frame")
    assert any("SMV headers take" in str(w.message) for w in caught)


def test_a_missing_shipped_table_points_at_nbnumba_data(tmp_path, monkeypatch, capsys):
    """`-stol water.stol` in a fresh folder: the error line says nbnumba ships the table
    and how to name it; following it runs."""
    import pytest

    from nbnumba.cli.nonbragg import main
    from nbnumba.data import stol_path

    monkeypatch.chdir(tmp_path)
    args = ["-detpixels", "8", "-Xbeam", "0.4", "-Ybeam", "0.4", "-nonoise", "-noprogress"]
    assert main(["-stol", "water.stol", *args]) == 3
    err = capsys.readouterr().err
    assert '(nbnumba ships water.stol: -stol "$(python -m nbnumba.data water)"' in err
    assert main(["-stol", "other.stol", *args]) == 3
    assert "nbnumba ships" not in capsys.readouterr().err
    if not stol_path("water").is_file():
        pytest.skip("the package data is not installed as files")
    assert main(["-stol", str(stol_path("water")), *args]) == 0


def test_noisify_says_when_a_longer_file_is_cut(tmp_path, monkeypatch, capsys):
    """A float file longer than the pixels given is read as noisify.c reads it (the first
    pixels), with one line saying so; a file of the right size says nothing."""
    import numpy as np

    from nbnumba.cli.noisify import main

    monkeypatch.chdir(tmp_path)
    np.full(5000, 10.0, "<f4").tofile("long.bin")
    np.full(4096, 10.0, "<f4").tofile("exact.bin")
    args = ["-detpixels", "64", "-seed", "1", "-nonoise", "-Xbeam", "3", "-Ybeam", "3"]
    assert main(["-floatfile", "long.bin", *args]) == 0
    assert ("warning: long.bin: 20000 bytes hold 5000 floats; noisify.c reads the first 4096 "
            "(64x64 pixels) and ignores the rest") in capsys.readouterr().err
    assert main(["-floatfile", "exact.bin", *args]) == 0
    assert "ignores the rest" not in capsys.readouterr().err


def test_companion_keywords_and_results_as_a_notebook_user_passes_them(tmp_path, monkeypatch):
    """A misspelt keyword names the close one; a simulation's result stands for its image
    in Noisify.run (alone or in a list), the same counts as its .image."""
    import warnings

    import numpy as np
    import pytest

    import nbnumba as nb

    with pytest.raises(TypeError, match=r"thikc \(did you mean thick\?\)"):
        nb.NonBragg(thikc=1)
    with pytest.raises(TypeError, match=r"readuot \(did you mean readout\?\)"):
        nb.Noisify(readuot=3)
    _companion_inputs(tmp_path, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        water = nb.NonBragg(stol="water.stol", detpixels=16, pixel=0.1, Xbeam=0.8, Ybeam=0.8,
                            nonoise=True).run()
        det = dict(detpixels=16, pixel=0.1, seed=1)
        assert np.array_equal(nb.Noisify(**det).run(image=water).image,
                              nb.Noisify(**det).run(image=water.image).image)
        assert np.array_equal(nb.Noisify(**det).run(image=[water, water]).image,
                              nb.Noisify(**det).run(image=[water.image, water.image]).image)


def test_float_add_answers_version(capsys):
    from nbnumba.cli.float_add import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("nb-float-add (nbnumba) ")


def test_nonbragg_says_when_its_photons_overload_every_pixel(tmp_path, monkeypatch, capsys):
    """nonBragg.c's default fluence (1.26e29 photons/m^2) gives ~1e11 photons/pixel: one
    warning names the fluence and the flags; a realistic beam gets none."""
    from nbnumba.cli.nonbragg import main

    _companion_inputs(tmp_path, monkeypatch)
    args = ["-stol", "water.stol", "-detpixels", "32", "-Xbeam", "1.6", "-Ybeam", "1.6",
            "-noprogress", "-seed", "1"]
    assert main(args) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "overloads a 16-bit" in ln]
    assert len(lines) == 1 and "the fluence is 1.25932e+29 photons/m^2" in lines[0]
    assert main([*args, "-flux", "1e12", "-exposure", "1", "-beamsize", "0.1"]) == 0
    assert "overloads a 16-bit" not in capsys.readouterr().err
