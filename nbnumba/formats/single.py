"""``-geometry_out NAME``, ``-cbffile NAME`` and ``-panels_out NAME`` of a ``nanobragg-nb`` run.

Both are written after C's own files, from the run's :class:`~nbnumba.api.Result`: the
miniCBF holds the noise image if the run computes one, else the int image (the pixels
of C's ``-noisefile``/``-intfile``), with the ADC offset removed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .geometry import DetectorGeometry

__all__ = ["extra_output_paths", "write_extra_outputs"]


def extra_output_paths(opts) -> list[str]:
    """The files ``-geometry_out``/``-cbffile`` will write (for clean-up on failure)."""
    from .geometry_files import geometry_names

    paths: list[str] = []
    if getattr(opts, "geometry_out", None):
        paths.extend(geometry_names(opts.geometry_out))
    if getattr(opts, "cbffilename", None):
        paths.append(opts.cbffilename)
    if getattr(opts, "panels_out", None):
        paths.append(opts.panels_out)
    return paths


def write_extra_outputs(result, out: Callable[[str], None],
                        warn: Callable[[str], None]) -> None:
    """Write the ``-geometry_out`` and ``-cbffile`` files of a finished run.

    Parameters
    ----------
    result : nbnumba.api.Result
        The run (its options carry the two flags; its scene the geometry).
    out, warn : callables
        Receive the "writing ..." lines and the warnings.
    """
    opts = result.options
    if getattr(opts, "panels_out", None):
        from .panels import detector_of_result, write_panels_json

        detector = detector_of_result(result)
        write_panels_json(opts.panels_out, detector)
        out(f"writing {opts.panels_out} ({len(detector)} panel"
            f"{'s' if len(detector) != 1 else ''})\n")
    geometry_out = getattr(opts, "geometry_out", None)
    cbffile = getattr(opts, "cbffilename", None)
    if not geometry_out and not cbffile:
        return
    geometry = DetectorGeometry.from_scene(result.scene)
    for problem in geometry.flat_problems():
        warn(f"warning: {problem}")
    if geometry_out:
        from .geometry_files import write_geometry_files

        written = write_geometry_files(geometry_out, geometry, image_format="img")
        out(f"writing {' and '.join(written)}\n")
    if cbffile:
        import tempfile

        from ..io import atomic_write
        from .cbf import write_minicbf

        noise = bool(opts.calculate_noise)
        image = result.noise_image() if noise else result.int_image()
        folder = os.path.dirname(os.path.abspath(cbffile))
        with tempfile.TemporaryDirectory(dir=folder, prefix=".cbf.") as tmp_dir:
            # written under its own name: CBF names its data block after the file
            tmp = os.path.join(tmp_dir, os.path.basename(cbffile))
            for w in write_minicbf(tmp, image, geometry):
                warn(w)
            with open(tmp, "rb") as f:
                atomic_write(cbffile, f.read())
        out(f"writing {cbffile} as miniCBF ({'noise' if noise else 'int'} image, "
            "ADC offset removed)\n")
