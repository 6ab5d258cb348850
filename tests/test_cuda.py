"""The CUDA kernel without a GPU.

- PTX: the real kernel compiled for cc 9.0 with the argument types it is
  launched with, in both precisions, so code that the simulator accepts but
  the CUDA target rejects fails here.
- Simulator: small golden cases (ROIs) run with ``-device cuda`` under
  ``NUMBA_ENABLE_CUDASIM=1`` in a subprocess (the variable must be set before
  numba.cuda is imported), compared with ``render_exact``'s run of the same
  command (the simulator calls the same compiled physics, so they must be
  identical) and with nanoBragg.c's image inside the ROI at the golden
  tolerances (looser, measured ones for ``-precision single``).

Both need numba-cuda (the ``cuda`` extra) and are skipped without it.  This
file doubles as the subprocesses' script: ``python tests/test_cuda.py ptx
PRECISION`` and ``python tests/test_cuda.py simulate OUTDIR``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None

# id -> (golden case, extra arguments, device-memory budget in bytes or None)
SIM_CASES = {
    # 8 rows in 4 tiles of 2 rows (budget for 2 rows of 128 pixels)
    "cubic_128_tiles": ("cubic_128", ["-roi", "0", "127", "60", "67"], 2 * (128 * 13 + 16)),
    "oversample_2": ("oversample_2", ["-roi", "56", "71", "56", "71"], None),
    # starts inside the region where the tricubic stencil fits, leaves it
    # along the first row: interpolation switches off mid-ROI and the host
    # re-runs the rest with the first pixels kept
    "interp_fallback": ("pattern_hkl_interp_fallback", ["-roi", "60", "100", "60", "75"], None),
    "phi_from_zero_c_parity": ("phi_from_zero_coarse",
                               ["-c_parity", "-roi", "120", "135", "120", "135"], None),
    "supervisor_c_parity": ("supervisor", ["-c_parity", "-roi", "680", "690", "1035", "1045"],
                            None),
    "mask": ("mask", [], None),
    "supervisor_single": ("supervisor", ["-c_parity", "-roi", "680", "690", "1035", "1045",
                                         "-precision", "single"], None),
    "shape_gauss_single": ("shape_gauss", ["-roi", "112", "143", "120", "135",
                                           "-precision", "single"], None),
}
# C's full run switched interpolation off at its first pixel, before this ROI
NOT_VS_GOLDEN = {"interp_fallback"}

# float32 math (-precision single) against nanoBragg.c's float64 image, as
# measured under the simulator (x86 float32 libm): max |Δ| 3.3e-4 of the
# maximum, correlation 0.99999999, sum ratio 0.99975 on the supervisor ROI
SINGLE_MAX_ABS = 2e-3
SINGLE_MIN_CORR = 0.99999
SINGLE_SUM_TOL = 2e-3

pytestmark = pytest.mark.skipif(not HAVE_NUMBA_CUDA,
                                reason="numba-cuda (the 'cuda' extra) is not installed")


def _env(simulator: bool) -> dict:
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return env


@pytest.fixture(scope="module")
def ptx_jobs():
    """Both PTX compilations, started at once (about 40 s each) and left running."""
    jobs = {p: subprocess.Popen([sys.executable, str(Path(__file__)), "ptx", p],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_env(False))
            for p in ("double", "single")}
    yield jobs
    for job in jobs.values():
        if job.poll() is None:
            job.kill()
            job.wait()


@pytest.fixture(scope="module")
def simulated(ptx_jobs, tmp_path_factory):
    """All SIM_CASES run once in one simulator subprocess (PTX compiles meanwhile)."""
    from conftest import golden_available

    if not golden_available():
        pytest.skip("../shared/golden is not present")
    out = tmp_path_factory.mktemp("cudasim")
    res = subprocess.run([sys.executable, str(Path(__file__)), "simulate", str(out)],
                         capture_output=True, text=True, env=_env(True), timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("precision", ["double", "single"])
def test_kernel_compiles_to_ptx(ptx_jobs, precision):
    """The kernel, with the shared physics inlined, is valid for the CUDA target."""
    job = ptx_jobs[precision]
    stdout, stderr = job.communicate(timeout=900)
    assert job.returncode == 0, stderr[-4000:]
    info = json.loads(stdout.strip().splitlines()[-1])
    assert info["entry"]
    if precision == "single":
        # float literals promote float32 to float64 unless written with as_float
        assert info["f64_lines"] * 2 < info["f32_lines"], info


@pytest.mark.parametrize("case_id", list(SIM_CASES))
def test_simulated_cuda_matches(simulated, case_id):
    """-device cuda in the simulator: same image and stdout as the CPU, C's image in the ROI."""
    from conftest import GOLDEN
    from golden import assert_float_parity, float_metrics, read_reference

    out, results = simulated
    r = results[case_id]
    assert r["cuda_code"] == 0 and r["cpu_code"] == 0, r
    name = SIM_CASES[case_id][0]
    single = "single" in case_id
    shape = tuple(r["shape"])
    ours = np.fromfile(out / f"{case_id}_cuda.bin", dtype="<f4").reshape(shape)
    cpu = np.fromfile(out / f"{case_id}_cpu.bin", dtype="<f4").reshape(shape)
    rows, cols = slice(*r["rows"]), slice(*r["cols"])
    outside = np.ones(shape, dtype=bool)
    outside[rows, cols] = False
    assert not ours[outside].any()
    if not single:
        assert np.array_equal(ours, cpu)
        assert r["cuda_stdout"] == r["cpu_stdout"]
    if case_id == "interp_fallback":
        assert any(x.startswith("WARNING: out of range for three point interpolation")
                   for x in r["cuda_stdout"])
    if case_id == "cubic_128_tiles":
        assert r["tiles"] == 4
    if case_id in NOT_VS_GOLDEN:
        return
    ref = np.frombuffer(read_reference(GOLDEN / name, "float.bin"), dtype="<f4").reshape(shape)
    if "-c_parity" in SIM_CASES[case_id][1]:
        # C run with this -roi makes the ROI's first pixel the one whose first
        # φ pass sees stale vectors; in the full run C's golden image comes from,
        # that pixel was computed later with the carried-over rotation
        ref = ref.copy()
        ref[r["rows"][0], r["cols"][0]] = ours[r["rows"][0], r["cols"][0]]
    if single:
        m = float_metrics(ours[rows, cols], ref[rows, cols])
        assert m["max_abs_rel"] <= SINGLE_MAX_ABS, m
        assert m["corr"] >= SINGLE_MIN_CORR, m
        assert abs(m["sum_ratio"] - 1) <= SINGLE_SUM_TOL, m
    else:
        assert_float_parity(ours[rows, cols], ref[rows, cols], case_id)


def _ptx_main(precision: str) -> None:
    from nbnumba.kernels import cuda as cuda_kernels

    ptx = cuda_kernels.compile_ptx(cuda_kernels.example_params(), precision, cc=(9, 0))
    lines = ptx.splitlines()
    print(json.dumps({"entry": any(".entry" in x for x in lines),
                      "f64_lines": sum(".f64" in x for x in lines),
                      "f32_lines": sum(".f32" in x for x in lines)}))


def _simulate_main(out: Path) -> None:
    """Run every SIM_CASES entry with -device cuda and -device cpu; save images and stdout."""
    import shutil
    import tempfile

    sys.path.insert(0, str(HERE))
    from conftest import GOLDEN, load_case
    from golden import run_nb

    from nbnumba.kernels import cuda as cuda_kernels

    assert cuda_kernels.available() and cuda_kernels.simulator_enabled()
    renderers = []  # the CUDA engine's renderers, to read their timing
    init = cuda_kernels.CudaRenderer.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        renderers.append(self)

    cuda_kernels.CudaRenderer.__init__ = recording_init
    results = {}
    for case_id, (name, extra, budget) in SIM_CASES.items():
        case = load_case(name)
        r = {"shape": case["shape"]}
        for device in ("cuda", "cpu"):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                for f in (GOLDEN / "inputs").iterdir():
                    shutil.copyfile(f, work / f.name)
                for before in case.get("before", []):
                    assert run_nb(before, work).code == 0
                if budget is not None:
                    os.environ["NBNUMBA_CUDA_MEMORY_MB"] = repr(budget / 2**20)
                args = list(case["args"]) + extra + ["-device", device]
                if device == "cpu":
                    # the exact CPU engine: it calls pixel_intensity as the GPU does; the
                    # CPU has double precision only (-precision single there is an error)
                    if "-precision" in args:
                        del args[args.index("-precision"):args.index("-precision") + 2]
                    args += ["-engine", "exact"]
                res = run_nb(args, work)
                os.environ.pop("NBNUMBA_CUDA_MEMORY_MB", None)
                if res.code != 0:
                    raise RuntimeError(f"{case_id} -device {device}: {res.stderr}")
                r[f"{device}_code"] = res.code
                r[f"{device}_stdout"] = [x for x in res.stdout.splitlines()
                                         if not x.startswith("  seed: ")]
                if device == "cuda":
                    r["tiles"] = renderers[-1].last_timing["tiles"]
                shutil.copyfile(work / case["float"], out / f"{case_id}_{device}.bin")
        roi = [int(x) for x in extra[extra.index("-roi") + 1:][:4]] if "-roi" in extra else None
        fast, slow = case["shape"][1], case["shape"][0]
        r["cols"] = [roi[0], roi[1] + 1] if roi else [0, fast]
        r["rows"] = [roi[2], roi[3] + 1] if roi else [0, slow]
        results[case_id] = r
    (out / "results.json").write_text(json.dumps(results))


if __name__ == "__main__":
    if sys.argv[1] == "ptx":
        _ptx_main(sys.argv[2])
    elif sys.argv[1] == "simulate":
        _simulate_main(Path(sys.argv[2]))
