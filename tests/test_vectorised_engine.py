"""The vectorised CPU kernel (nbnumba.kernels.vectorised) against the exact reference kernel.

``render_vectorised`` reorders C's loops and reduces sincg exactly, so it is not bit
for bit the exact ``render_exact``; it must agree to 1e-9 of the image
maximum on every feature, leave the same pixels untouched, and report the
same solid-angle sums and interpolation fall-backs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nbnumba import Simulation, output
from nbnumba import engines as nb_engines
from nbnumba.kernels import vectorised as fast
from nbnumba.kernels.exact import render_exact
from nbnumba.simulate import render

REL_TOL = 1e-9  # of the image maximum, per pixel

# a wide-angle detector (h up to ~25) so that the lattice-factor arguments are large
BASE = ["-cell", "70", "80", "90", "90", "90", "90", "-hkl", "F.hkl", "-default_F", "50",
        "-lambda", "1.0", "-distance", "60", "-pixel", "0.7", "-detpixels_f", "40",
        "-detpixels_s", "32", "-N", "12", "-nonoise", "-nopgm"]


def _write_hkl(path, span: int, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    rows = [f"{h} {k} {l} {rng.uniform(10, 500):.3f}"
            for h in range(-span, span + 1) for k in range(-span, span + 1)
            for l in range(-span, span + 1)]
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    _write_hkl(tmp_path / "F.hkl", 6)
    _write_hkl(tmp_path / "small.hkl", 2)
    (tmp_path / "sources.txt").write_text("-10 0.1 0.05 1 1.0e-10\n-10 -0.08 0 1 1.02e-10\n"
                                          "-10 0 -0.1 1 0.98e-10\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _scene(args: list[str]):
    return Simulation.from_args(list(args) + ["-noprogress"]).scene


def _run(kernel, scene, *, interpolate=None, start_index=0):
    """One kernel call over the scene's ROI; untouched pixels keep the sentinel -1."""
    row_lo, row_hi = scene.row_range
    col_lo, col_hi = scene.col_range
    image = np.full((scene.spixels, scene.fpixels), -1.0, dtype=np.float32)
    omega = np.full(scene.spixels, -1.0)
    fell = np.full(scene.spixels, -7, dtype=np.int64)
    interp = scene.interpolate if interpolate is None else interpolate
    kernel(scene.params, scene.det, scene.sources, scene.cells, scene.a_star, scene.fhkl,
           scene.mask, interp, row_lo, row_hi, col_lo, col_hi, start_index, image, omega, fell)
    return image, omega, fell


def _assert_agree(scene, **kwargs) -> None:
    ref_image, ref_omega, ref_fell = _run(render_exact, scene, **kwargs)
    image, omega, fell = _run(fast.render_vectorised, scene, **kwargs)
    untouched = ref_image == -1.0
    assert np.array_equal(image == -1.0, untouched)
    scale = float(np.max(np.abs(ref_image[~untouched]))) if (~untouched).any() else 1.0
    assert scale > 0.0
    diff = np.abs(image.astype(np.float64) - ref_image.astype(np.float64))
    assert float(diff.max()) <= REL_TOL * scale, float(diff.max()) / scale
    np.testing.assert_allclose(omega, ref_omega, rtol=1e-12, atol=0.0)
    assert np.array_equal(fell, ref_fell)


CASES = {
    "square": [],
    "phi_from_zero": ["-phi", "0", "-osc", "3", "-phisteps", "4"],
    "phi_from_zero_c_parity": ["-phi", "0", "-osc", "3", "-phisteps", "4", "-c_parity"],
    "oversample": ["-oversample", "3"],
    "oversample_flags": ["-oversample", "2", "-oversample_omega", "-oversample_polar",
                         "-oversample_thick", "-detector_thick", "50", "-thicksteps", "2"],
    "divergence_dispersion": ["-divergence", "0.3", "-divsteps", "3", "-dispersion", "2",
                              "-dispsteps", "3"],
    "sourcefile": ["-sourcefile", "sources.txt"],
    "mosaic": ["-mosaic", "0.8", "-mosaic_dom", "6", "-mosaic_seed", "5", "-phisteps", "2",
               "-osc", "1"],
    "round": ["-round_xtal"],
    "gauss": ["-gauss_xtal"],
    "tophat": ["-tophat_spots"],
    "interpolate": ["-interpolate"],
    "interpolate_fallback": ["-hkl", "small.hkl", "-interpolate"],
    "thickness": ["-detector_thick", "100", "-thicksteps", "3", "-detector_abs", "300"],
    "curved": ["-curved_det"],
    "point_pixel": ["-point_pixel"],
    "water": ["-water", "50"],
    "kahn_polar": ["-polar", "0.9"],
    "nopolar": ["-nopolar"],
    "dmin": ["-dmin", "3"],
    "default_F_only": ["-default_F", "40", "-hkl", "small.hkl"],
    "one_cell_axis": ["-Na", "1", "-Nb", "4", "-Nc", "7"],
    "misset_rotated": ["-misset", "10", "20", "30", "-twotheta", "5"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_matches_faithful(workdir, name):
    _assert_agree(_scene(BASE + CASES[name]))


def test_no_hkl_table(workdir):
    args = [a for a in BASE if a not in ("-hkl", "F.hkl")] + ["-default_F", "30"]
    _assert_agree(_scene(args))


def test_roi_mask_and_start_index(workdir):
    scene = _scene(BASE + ["-roi", "3", "30", "5", "25", "-phisteps", "2", "-osc", "1"])
    rng = np.random.default_rng(1)
    mask = (rng.random(scene.fpixels * scene.spixels) > 0.3).astype(np.uint16)
    scene = dataclasses.replace(scene, mask=mask)
    _assert_agree(scene)
    _assert_agree(scene, start_index=11 * scene.fpixels + 17)


def test_interpolation_switched_off_by_host(workdir):
    scene = _scene(BASE + ["-hkl", "small.hkl", "-interpolate"])
    _assert_agree(scene, interpolate=False)


@pytest.mark.parametrize("extra", [[], ["-c_parity"]])
def test_render_sequential_effects(workdir, extra):
    """Whole ``render`` (C's first pass, interpolation switch-off) with either kernel."""
    scene = _scene(BASE + ["-hkl", "small.hkl", "-interpolate", "-phi", "0", "-osc", "2",
                           "-phisteps", "3"] + extra)
    ref = render(scene, render_exact)
    ours = render(scene, fast.render_vectorised)
    assert ours.fallback == ref.fallback
    scale = float(np.abs(ref.image).max())
    assert float(np.abs(ours.image.astype(np.float64) - ref.image).max()) <= REL_TOL * scale
    assert ours.omega_sum == pytest.approx(ref.omega_sum, rel=1e-12)


def test_rows_backend_picks_fast_kernel():
    def rows_backend(device, exact=False):
        return nb_engines.select(device=device, exact=exact).load()

    assert rows_backend("cpu") is fast.render_vectorised
    assert rows_backend("cpu", exact=True) is render_exact  # -c_parity


def test_non_integer_cell_count(workdir):
    """Not reachable from C's flags (integers), but the kernel falls back to C's sincg."""
    scene = _scene(BASE)
    scene = dataclasses.replace(scene, params=scene.params._replace(Na=6.5))
    _assert_agree(scene)


def test_sincg_reduction_matches_libm():
    """±sin(Nπd)/sin(πd) from the reduction equals C's sin(Nπh)/sin(πh) in magnitude."""
    from numba import njit

    from nbnumba.kernels.physics import sincg, sincg_reduced, sincg_reduced_parts

    @njit
    def both(h, n):
        d = h - np.ceil(h - 0.5)
        num, den = sincg_reduced_parts(d, n)
        return sincg(np.pi * h, n), sincg_reduced(d, n), num / den

    rng = np.random.default_rng(0)
    for h in np.concatenate([rng.uniform(-40, 40, 2000), [0.0, 0.5, -0.5, 1e-9]]):
        for n in (2.0, 5.0, 36.0, 47.0):
            ref, reduced, parts = both(h, n)
            # libm's full-argument sines carry ~|Nπh|·1e-16 of rounding: the reference
            # is the less exact of the two near integer h
            assert abs(abs(reduced) - abs(ref)) <= 1e-8 * n
            assert abs(abs(parts) - abs(ref)) <= 1e-8 * n
    # at a nonzero integer h C divides two rounding residues (sin(3π) = 3.7e-16);
    # the reduction gives the limit, N
    assert abs(both(3.0, 5.0)[1]) == 5.0
    assert both(3.0, 5.0)[2] == 5.0


def test_output_conversions_match_numpy():
    rng = np.random.default_rng(2)
    image = (rng.standard_normal((20, 30)) * 300).astype(np.float32)
    image[0, :4] = [np.nan, np.inf, -np.inf, 1e9]
    counts = np.zeros(image.shape, dtype=np.uint16)
    output.smv_counts(image, 1.7, 40.0, 2, 18, 3, 29, counts)
    roi = (slice(2, 18), slice(3, 29))
    with np.errstate(invalid="ignore"):
        test = np.clip(image[roi].astype(np.float64) * 1.7 + 40.0, 0.0, 65535.0)
        want = np.floor((test + 0.5).astype(np.float32))
        want = np.where(np.isnan(want), 0, want).astype(np.uint16)
    assert np.array_equal(counts[roi], want)
    assert not counts[:2].any() and not counts[:, :3].any()
    levels = np.zeros(image.shape, dtype=np.uint8)
    output.pgm_levels(image, 0.9, 0, 20, 0, 30, levels)
    with np.errstate(invalid="ignore"):
        test = np.clip(np.minimum(image.astype(np.float64) * 0.9, 255.0), 0.0, None)
        want = np.where(np.isnan(test), 0, test).astype(np.uint8)
    assert np.array_equal(levels, want)


def test_noise_counts_match_numpy():
    rng = np.random.default_rng(5)
    photons = rng.poisson(3000.0, size=16 * 26).astype(np.float32)
    photons[:3] = [70000.0, 65495.0, 65496.0]
    counts = np.zeros((20, 30), dtype=np.uint16)
    total, overloads = output.noise_counts(photons, 40.0, 2, 18, 3, 29, counts)
    test = photons.astype(np.float64) + 40.0
    assert total == float(np.cumsum(photons.astype(np.float64))[-1])
    assert overloads == int(np.count_nonzero(test > 65535.0))
    want = np.minimum(test, 65535.0).astype(np.uint16).reshape(16, 26)
    assert np.array_equal(counts[2:18, 3:29], want)
    assert not counts[:2].any() and not counts[:, :3].any()
