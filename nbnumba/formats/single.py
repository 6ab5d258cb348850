"""``-geometry_out NAME``, ``-cbffile NAME`` and ``-expt_out NAME`` of a single run.

All are written after C's own files, from the run's :class:`~nbnumba.api.Result`: the
miniCBF holds the noise image if the run computes one, else the int image (the pixels
of C's ``-noisefile``/``-intfile``), with the ADC offset removed; a ``-cbffile`` name
without an image number gets ``_0001`` (:func:`~nbnumba.formats.cbf.numbered_name`),
as dxtbx needs one. The ``.expt`` (DIALS experiment list, :mod:`.expt`) points at the
miniCBF when there is one, else at C's SMV noise (or int) image.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .geometry import DetectorGeometry

__all__ = ["extra_output_paths", "write_extra_outputs", "cbf_path", "expt_image"]


def cbf_path(opts) -> str | None:
    """The file ``-cbffile`` writes (its name, numbered for dxtbx when it has no number)."""
    name = getattr(opts, "cbffilename", None)
    if not name:
        return None
    from .cbf import numbered_name

    return numbered_name(name)


def expt_image(opts) -> tuple[str, str, str]:
    """The image a single run's ``-expt_out`` points at: ``(path, image_format,
    content)``: the miniCBF if written, else C's noise image, else its int image."""
    cbf = cbf_path(opts)
    noise = bool(opts.calculate_noise)
    if cbf:
        return cbf, "cbf", "noise" if noise else "int"
    if noise:
        return opts.noisefilename, "other", "noise"
    return opts.intfilename, "other", "int"


def extra_output_paths(opts) -> list[str]:
    """The files ``-geometry_out``/``-cbffile``/``-expt_out`` will write (for clean-up
    on failure)."""
    from .geometry_files import geometry_names

    paths: list[str] = []
    if getattr(opts, "geometry_out", None):
        paths.extend(geometry_names(opts.geometry_out))
    cbf = cbf_path(opts)
    if cbf:
        paths.append(cbf)
    if getattr(opts, "expt_out", None):
        paths.append(opts.expt_out)
    return paths


def write_extra_outputs(result, out: Callable[[str], None],
                        warn: Callable[[str], None]) -> None:
    """Write the ``-geometry_out``, ``-cbffile`` and ``-expt_out`` files of a finished run.

    Parameters
    ----------
    result : nbnumba.api.Result
        The run (its options carry the flags; its scene the geometry).
    out, warn : callables
        Receive the "writing ..." lines and the warnings.
    """
    opts = result.options
    geometry_out = getattr(opts, "geometry_out", None)
    cbffile = cbf_path(opts)
    expt_out = getattr(opts, "expt_out", None)
    if not geometry_out and not cbffile and not expt_out:
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

        if cbffile != opts.cbffilename:
            warn(f"note: -cbffile {opts.cbffilename}: written as {cbffile} (dxtbx reads "
                 "the image number from the file name)")
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
    if expt_out:
        from .expt import (
            cell_vectors_angstrom,
            dxtbx_template,
            rotation_experiment_list,
            write_experiment_list,
        )

        image, image_format, content = expt_image(opts)
        numbered = dxtbx_template(image)
        template, first = numbered if numbered is not None else (os.path.abspath(image), 1)
        doc = rotation_experiment_list(geometry, cell_vectors_angstrom(result.scene),
                                       images=template, n_images=1,
                                       image_format=image_format, content=content,
                                       first_image=first)
        write_experiment_list(expt_out, doc)
        out(f"writing {expt_out} (DIALS experiment list: the true models, image {image})\n")
