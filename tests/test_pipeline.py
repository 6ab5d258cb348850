"""The bl831 chain end to end: nonBragg water + nonBragg air + nanoBragg spots -> float32
sum -> noisify, through our command lines, against ../shared/companions/pipeline.

The nonBragg step needs the nonBragg port (``nbnumba.cli.nonbragg``); without it only
the nanoBragg, sum and noisify steps run (with C's stored water/air floats). Marked slow
(``pytest -m slow tests/test_pipeline.py``).
Float images at the README tolerances; the int image and PGM at ±1 on <= 0.01%; the noise
image byte for byte when our sum equals C's bit for bit (the generator stream is C's),
else its photon total within 5 sigma.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from golden import assert_float_parity
from test_noisify import COMPANIONS, assert_int_file, case_names, run_cli, smv_pixels

from nbnumba.cli.float_add import main as float_add_main
from nbnumba.cli.main import main as nanobragg_main
from nbnumba.cli.noisify import main as noisify_main

HAVE_NONBRAGG = importlib.util.find_spec("nbnumba.cli.nonbragg") is not None


def _nonbragg_main():
    from nbnumba.cli.nonbragg import main  # the nonBragg port, when merged

    return main


@pytest.mark.slow  # the nanoBragg step runs the exact engine (-c_parity): minutes in all
@pytest.mark.skipif(not case_names("pipeline"), reason="../shared/companions is not present")
@pytest.mark.parametrize("name", case_names("pipeline"))
def test_pipeline_end_to_end_cli(name: str, tmp_path: Path) -> None:
    case_dir = COMPANIONS / "pipeline" / name
    case = json.loads((case_dir / "case.json").read_text())
    for f in (COMPANIONS / "inputs").iterdir():
        shutil.copyfile(f, tmp_path / f.name)
    same_sum = True
    for step in case["steps"]:
        prog = step.get("prog")
        if "combine" in step:
            code, _, err = run_cli([*step["combine"], "-o", step["output"]], tmp_path,
                                   prog=float_add_main)
            assert code == 0, err
            ours = np.fromfile(tmp_path / step["output"], dtype="<f4")
            ref = np.fromfile(case_dir / step["output"], dtype="<f4")
            assert_float_parity(ours, ref, f"{name} {step['output']}")
            same_sum = ours.tobytes() == ref.tobytes()
            continue
        floatfile = step["args"][step["args"].index("-floatfile") + 1] \
            if "-floatfile" in step["args"] else None
        if prog == "nonBragg":
            if not HAVE_NONBRAGG:  # use C's float image for this step
                shutil.copyfile(case_dir / floatfile, tmp_path / floatfile)
                continue
            code, _, err = run_cli(step["args"], tmp_path, prog=_nonbragg_main())
        elif prog == "nanoBragg":
            # -c_parity: C's stale phi=0 rotation (the pipeline ran serial nanoBragg.c)
            code, _, err = run_cli([*step["args"], "-c_parity"], tmp_path, prog=nanobragg_main)
        else:
            code, out, err = run_cli(step["args"], tmp_path, prog=noisify_main)
        assert code == 0, (prog, err)
        if prog in ("nonBragg", "nanoBragg") and (case_dir / floatfile).is_file():
            assert_float_parity(np.fromfile(tmp_path / floatfile, dtype="<f4"),
                                np.fromfile(case_dir / floatfile, dtype="<f4"),
                                f"{name} {floatfile}")
    for k in ("int.img", "img.pgm"):
        if k in case["keep"]:
            assert_int_file((case_dir / k).read_bytes(), (tmp_path / k).read_bytes(), k)
    if "noise.img" in case["keep"]:
        ref, ours = (case_dir / "noise.img").read_bytes(), (tmp_path / "noise.img").read_bytes()
        if same_sum:
            assert ours == ref
        else:
            assert ours[:512] == ref[:512]
            a, b = smv_pixels(ref).sum(), smv_pixels(ours).sum()
            assert abs(a - b) <= 5 * np.sqrt(a), (a, b)


@pytest.mark.slow
@pytest.mark.skipif(not case_names("pipeline"), reason="../shared/companions is not present")
@pytest.mark.parametrize("name", case_names("pipeline"))
def test_pipeline_end_to_end_python(name: str, tmp_path: Path, monkeypatch) -> None:
    """The same chain with arrays in memory: Simulation (spots), NonBragg (water, air; C's
    stored floats without the port), Noisify(image=[...]); nothing written but the end."""
    import nbnumba as nb

    case_dir = COMPANIONS / "pipeline" / name
    case = json.loads((case_dir / "case.json").read_text())
    for f in (COMPANIONS / "inputs").iterdir():
        shutil.copyfile(f, tmp_path / f.name)
    monkeypatch.chdir(tmp_path)
    images: dict[str, np.ndarray] = {}
    noisify_args: list[str] = []
    combine: list[str] = []
    for step in case["steps"]:
        prog = step.get("prog")
        if "combine" in step:
            combine = step["combine"]
            continue
        if prog == "noisify":
            noisify_args = step["args"]
            continue
        floatfile = step["args"][step["args"].index("-floatfile") + 1]
        if prog == "nanoBragg":
            image = nb.Simulation.from_args([*step["args"], "-c_parity"]).run().image
        elif HAVE_NONBRAGG:
            image = nb.NonBragg.from_args(step["args"]).run().image
        else:
            image = np.fromfile(case_dir / floatfile, dtype="<f4").reshape(case["shape"])
        assert_float_parity(np.asarray(image).ravel(),
                            np.fromfile(case_dir / floatfile, dtype="<f4"), floatfile)
        images[floatfile] = np.asarray(image)
    result = nb.Noisify.from_args(noisify_args).run(image=[images[f] for f in combine])
    result.write(tmp_path / "out")
    for k in ("int.img", "img.pgm"):
        if k in case["keep"]:
            assert_int_file((case_dir / k).read_bytes(), (tmp_path / "out" / k).read_bytes(), k)
    if "noise.img" in case["keep"]:
        ref = smv_pixels((case_dir / "noise.img").read_bytes())
        ours = result.noise_image.ravel().astype(np.int64)
        assert abs(ref.sum() - ours.sum()) <= 5 * np.sqrt(ref.sum())
