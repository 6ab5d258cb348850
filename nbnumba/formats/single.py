"""``-geometry_out NAME``, ``-cbffile NAME``, ``-expt_out NAME``, ``-panels_out NAME``,
``-nxmx_out NAME.h5`` and ``-crystfel_out NAME.h5`` of a single run.

All are written after C's own files, from the run's :class:`~nbnumba.api.Result`: the
miniCBF holds the noise image if the run computes one, else the int image (the pixels
of C's ``-noisefile``/``-intfile``), with the ADC offset removed; a ``-cbffile`` name
without an image number gets ``_0001`` (:func:`~nbnumba.formats.cbf.numbered_name`),
as dxtbx needs one. The ``.expt`` (DIALS experiment list, :mod:`.expt`) points at the
miniCBF when there is one, else at C's SMV noise (or int) image (refused before the run
when that name has no image number: dxtbx could not open it). ``-nxmx_out`` and
``-crystfel_out`` hold the miniCBF's pixels for every panel (:func:`.nxmx.write_result_nxmx`,
:func:`.crystfel.write_result_crystfel`); :func:`check_extra_outputs` refuses their names
(and the others') before the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from .geometry import DetectorGeometry

__all__ = ["extra_outputs", "extra_output_paths", "write_extra_outputs", "cbf_path", "expt_image",
           "crystfel_geom_path", "check_extra_outputs", "check_expt_image", "counts_content"]


def counts_content(opts) -> str:
    """The image the counted formats hold (``-cbffile``, ``-nxmx_out``, ``-crystfel_out``):
    ``"noise"`` when the run computes C's noise image, else ``"int"``."""
    return "noise" if opts.calculate_noise else "int"


def crystfel_geom_path(opts) -> str | None:
    """The ``.geom`` that ``-crystfel_out NAME.h5`` writes beside it (``NAME.geom``)."""
    name = getattr(opts, "crystfel_out", None)
    return os.path.splitext(name)[0] + ".geom" if name else None


def cbf_path(opts) -> str | None:
    """The file ``-cbffile`` writes (its name, numbered for dxtbx when it has no number)."""
    name = getattr(opts, "cbffilename", None)
    if not name:
        return None
    from .cbf import numbered_name

    return numbered_name(name)


def expt_image(opts) -> tuple[str, str, str]:
    """The image a single run's ``-expt_out`` points at: ``(path, image_format,
    content)``: the miniCBF if written, else the ``-nxmx_out`` file, else C's noise
    image, else its int image."""
    cbf = cbf_path(opts)
    noise = bool(opts.calculate_noise)
    if cbf:
        return cbf, "cbf", "noise" if noise else "int"
    if getattr(opts, "nxmx_out", None):
        return opts.nxmx_out, "nxmx", counts_content(opts)
    if noise:
        return opts.noisefilename, "other", "noise"
    return opts.intfilename, "other", "int"


def extra_outputs(opts) -> list[tuple[str, str]]:
    """``(flag, path)`` of every file ``-geometry_out``/``-cbffile``/``-expt_out``/
    ``-panels_out``/``-nxmx_out``/``-crystfel_out`` will write (``-crystfel_out``: the
    ``.h5`` and the ``NAME.geom`` beside it), for the checks before the run
    (:func:`nbnumba.validate.check_outputs_not_inputs`) and the clean-up on failure."""
    from .geometry_files import geometry_names

    outputs: list[tuple[str, str]] = []
    if getattr(opts, "geometry_out", None):
        outputs += [("-geometry_out", name) for name in geometry_names(opts.geometry_out)]
    cbf = cbf_path(opts)
    if cbf:
        outputs.append(("-cbffile", cbf))
    for flag, field in (("-expt_out", "expt_out"), ("-panels_out", "panels_out"),
                        ("-nxmx_out", "nxmx_out"), ("-crystfel_out", "crystfel_out")):
        if getattr(opts, field, None):
            outputs.append((flag, getattr(opts, field)))
    if getattr(opts, "crystfel_out", None):
        outputs.append(("-crystfel_out", crystfel_geom_path(opts)))
    return outputs


def extra_output_paths(opts) -> list[str]:
    """The files of :func:`extra_outputs` (for clean-up on failure)."""
    return [path for _, path in extra_outputs(opts)]


def check_extra_outputs(opts) -> None:
    """Refuse, before any computation, an output of ours that cannot be written.

    Raises
    ------
    UsageError
        ``-crystfel_out`` named ``.geom`` (its geometry file would be the image), two
        of our outputs with one name, ``-nxmx_out``/``-crystfel_out`` naming a device,
        ``-expt_out`` pointing at C's SMV image whose name has no image number (dxtbx
        cannot open it).
    OutputPathError
        A folder that does not exist or is not writable; a name that is a folder.
    ResourceError
        ``-nxmx_out``/``-crystfel_out`` without h5py (``pip install 'nbnumba[formats]'``).
    """
    from ..errors import OutputPathError, UsageError

    flags = {"-nxmx_out": getattr(opts, "nxmx_out", None),
             "-crystfel_out": getattr(opts, "crystfel_out", None)}
    if any(flags.values()):
        from ..extras import require

        for flag, name in flags.items():
            if name:
                require(flag, "formats", "h5py")
    name = flags["-crystfel_out"]
    if name and os.path.splitext(name)[1].lower() == ".geom":
        raise UsageError(f"-crystfel_out {name}: name the HDF5 file (NAME.h5); its "
                         "geometry is written beside it as NAME.geom")
    if not getattr(opts, "model_file", None):  # -geom/-expt: checked once it is read (api)
        check_expt_image(opts)
    for flag, name in flags.items():
        if name and os.path.exists(name) and not os.path.isfile(name) \
                and not os.path.isdir(name):
            # the HDF5 file is renamed into place: it would replace the device itself
            raise UsageError(f"{flag} {name}: not a regular file; HDF5 is written to a "
                             "file and renamed into place")
    seen: dict[str, str] = {}
    for path in extra_output_paths(opts):
        real = os.path.realpath(path)
        if real in seen:
            raise UsageError(f"{path}: two of -geometry_out/-cbffile/-expt_out/-panels_out/"
                             "-nxmx_out/-crystfel_out would write this one file")
        seen[real] = path
        if path.endswith(os.sep) or os.path.isdir(path):
            raise OutputPathError(f"{path}: is a folder, not a file name")
        folder = os.path.dirname(real)
        if not os.path.isdir(folder):
            raise OutputPathError(f"{path}: folder {os.path.dirname(path) or '.'} does not "
                                  "exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputPathError(f"{path}: folder {os.path.dirname(path) or '.'} is not "
                                  "writable")


def check_expt_image(opts) -> None:
    """``-expt_out`` that would point at C's SMV image needs an image number in its name:
    dxtbx's SMV reader (``FormatSMVJHSim._scan``) takes the scan's image index from the
    file name and cannot open ``noiseimage.img`` at all ("Could not determine filename
    template"), whatever the experiment list says of it.

    Raises
    ------
    UsageError
        That SMV name has no number dxtbx finds (:func:`.expt.dxtbx_template`).
    """
    expt_out = getattr(opts, "expt_out", None)
    if not expt_out:
        return
    image, image_format, content = expt_image(opts)
    if image_format != "other":
        return
    from ..errors import UsageError
    from .expt import dxtbx_template

    if dxtbx_template(image) is None:
        flag = "-noisefile" if content == "noise" else "-intfile"
        raise UsageError(f"-expt_out {expt_out}: it would point at {image} ({flag}), which "
                         "dxtbx cannot open: its SMV reader takes the image number from the "
                         "file name; add -cbffile NAME.cbf or -nxmx_out NAME.h5, or number "
                         f"the image ({flag} NAME_001.img)")


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
    if getattr(opts, "panels_out", None):
        from .panels import detector_of_result, write_panels_json

        detector = detector_of_result(result)
        write_panels_json(opts.panels_out, detector)
        out(f"writing {opts.panels_out} ({len(detector)} panel"
            f"{'s' if len(detector) != 1 else ''})\n")
    _write_panel_formats(result, out, warn)
    geometry_out = getattr(opts, "geometry_out", None)
    cbffile = cbf_path(opts)
    expt_out = getattr(opts, "expt_out", None)
    if not geometry_out and not cbffile and not expt_out:
        return
    geometry = DetectorGeometry.from_scene(result.scene)
    detector = getattr(result, "detector", None)
    several = detector is not None and len(detector) > 1
    if not several:  # one flat panel: what its writers can say of it
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
        if image_format == "nxmx":  # the file itself; its image 1
            template, first = os.path.abspath(image), 1
        else:
            numbered = dxtbx_template(image)
            template, first = numbered if numbered is not None else (os.path.abspath(image),
                                                                     1)
        if several and image_format != "nxmx":  # checked before the run (api)
            raise ValueError("-expt_out of several panels points at the -nxmx_out file")
        doc = rotation_experiment_list(geometry, cell_vectors_angstrom(result.scene),
                                       images=template, n_images=1,
                                       image_format=image_format, content=content,
                                       first_image=first,
                                       panels=detector if image_format == "nxmx" else None)
        write_experiment_list(expt_out, doc)
        n = len(detector) if detector is not None else 1
        out(f"writing {expt_out} (DIALS experiment list: the true models, {n} panel"
            f"{'s' if n != 1 else ''}, image {image})\n")


def _write_panel_formats(result, out: Callable[[str], None],
                         warn: Callable[[str], None]) -> None:
    """``-nxmx_out`` and ``-crystfel_out``: every panel (one for a command line's detector)
    with the counts ``-cbffile`` holds and the run's bad pixels as the mask; each file
    written under a temporary name and renamed when complete."""
    opts = result.options
    nxmx_out = getattr(opts, "nxmx_out", None)
    crystfel_out = getattr(opts, "crystfel_out", None)
    if not nxmx_out and not crystfel_out:
        return
    content = counts_content(opts)
    mask = getattr(result, "bad_pixels", None)
    if mask is None and getattr(opts, "mask_image", None) is not None \
            and getattr(result, "detector", None) is None:
        # a command line's -mask: its zeros are the pixels C skipped
        mask = np.asarray(opts.mask_image).reshape(result.image.shape) == 0
    if nxmx_out:
        from ..io import put_in_place
        from .nxmx import write_result_nxmx

        folder = os.path.dirname(os.path.abspath(nxmx_out))
        tmp = os.path.join(folder, f".{os.path.basename(nxmx_out)}.{os.getpid()}.tmp")
        try:
            notes = write_result_nxmx(tmp, result, content=content, pixel_mask=mask)
            put_in_place(tmp, nxmx_out)  # recorded: a failed run removes it
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        for note in notes:
            warn(f"note: -nxmx_out {nxmx_out}: {note}")
        n = len(result.detector) if getattr(result, "detector", None) is not None else 1
        out(f"writing {nxmx_out} as NXmx ({content} image, ADC offset removed, {n} "
            f"panel{'s' if n != 1 else ''})\n")
    if crystfel_out:
        from .crystfel import write_result_crystfel

        h5, geom = write_result_crystfel(crystfel_out, result, content=content, mask=mask)
        out(f"writing {h5} (CrystFEL /data/data: {content} image, ADC offset removed) and "
            f"{geom}\n")
