"""NXmx (NeXus/HDF5) master files: a rotation series with its whole geometry.

One file holds ``/entry`` (``definition = "NXmx"``) with the instrument (beam,
detector with one module and its ``depends_on`` chain), the sample's rotation axis
with one angle per frame, and the frames in ``/entry/data/data`` (N, slow, fast),
chunked one frame per chunk and compressed with bitshuffle/LZ4 (``hdf5plugin``), the
filter DIALS, XDS (durin, neggia) and fabio read. Vectors are converted from
nanoBragg's lab frame to the McStas frame with :func:`~nbnumba.formats.geometry.lab_to_mcstas`.
``specs/formats.md`` lists every field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable

import numpy as np

from .geometry import DetectorGeometry, adc_baseline, saturation_of

__all__ = ["write_nxmx", "nxmx_frame_dtype", "CONTENTS", "counts_from_raw",
           "compress_frame", "bitshuffle_ready"]

CONTENTS = ("float", "int", "noise")
ENTRY = "/entry"
DETECTOR = "/entry/instrument/detector"
DETECTOR_Z = DETECTOR + "/transformations/detector_z"
MODULE = DETECTOR + "/module"
OMEGA = "/entry/sample/transformations/omega"


def nxmx_frame_dtype(content: str) -> np.dtype:
    """The stored pixel type: float32 photons, or int32 counts (ADC offset removed)."""
    return np.dtype("<f4") if content == "float" else np.dtype("<i4")


def counts_from_raw(raw_uint16: np.ndarray, adc_offset: float) -> np.ndarray:
    """C's 16-bit int/noise pixels as counts on a zero baseline (int32).

    ``raw - adc_baseline(adc_offset)``: the value a photon-counting detector would
    have stored; a pixel C clipped at 0 comes out negative (below any valid count).
    """
    return raw_uint16.astype(np.int32) - np.int32(adc_baseline(adc_offset))


def bitshuffle_ready():
    """Import ``hdf5plugin`` with its own bitshuffle/LZ4 filter registered; returns it.

    With ``HDF5_PLUGIN_PATH`` naming hdf5plugin's plugin folder (what dxtbx needs, so
    what a DIALS user has set), HDF5 itself loads ``libh5bshuf.so`` from that folder,
    hdf5plugin's import then finds the filter "available" and skips registering it, and
    the copy HDF5 loaded was never bound to h5py's libhdf5 (hdf5plugin does that when it
    registers): its ``set_local`` callback fails and every dataset creation raises
    "error during user callback". Registering hdf5plugin's copy (once per process)
    replaces HDF5's.

    Raises
    ------
    RuntimeError
        When hdf5plugin is missing or cannot register the filter.
    """
    try:
        import hdf5plugin
    except ImportError as exc:  # pragma: no cover - an install problem
        raise RuntimeError("NXmx files need the hdf5plugin package (bitshuffle/LZ4): "
                           "pip install hdf5plugin") from exc
    # hdf5plugin names the library it registered; HDF5's own loading shows as "unknown"
    loaded = hdf5plugin.get_config().registered_filters.get("bshuf", "unknown")
    if not os.path.isfile(loaded):
        if not hdf5plugin.register("bshuf", force=True):  # pragma: no cover
            raise RuntimeError("hdf5plugin could not register the bitshuffle filter")
    return hdf5plugin


def _compression() -> dict:
    return dict(bitshuffle_ready().Bitshuffle(nelems=0, cname="lz4"))


def _stored(frame: np.ndarray, content: str, adc_offset: float) -> np.ndarray:
    """A frame as the file stores it (float32 photons, or int32 counts)."""
    arr = np.asarray(frame)
    if content != "float":
        arr = counts_from_raw(arr, adc_offset)
    return np.ascontiguousarray(arr, dtype=nxmx_frame_dtype(content))


def compress_frame(frame: np.ndarray, content: str, adc_offset: float) -> bytes:
    """One frame as the file's compressed chunk (bitshuffle/LZ4, HDF5 filter 32008).

    Lets a series' workers compress their own frames in parallel; :func:`write_nxmx`
    with ``compressed=True`` then copies the bytes into the file unchanged
    (``write_direct_chunk``). Same arguments as a frame of :func:`write_nxmx`.
    """
    import uuid

    import h5py

    arr = _stored(frame, content, adc_offset)
    # an in-memory file (HDF5's core driver, nothing on disk) does the filtering
    with h5py.File(f"chunk-{uuid.uuid4().hex}.h5", "w", driver="core",
                   backing_store=False) as h5:
        ds = h5.create_dataset("d", shape=(1, *arr.shape), dtype=arr.dtype,
                               chunks=(1, *arr.shape), **_compression())
        ds[0] = arr
        mask, chunk = ds.id.read_direct_chunk((0, 0, 0))
    if mask != 0:  # pragma: no cover - the filter declined: never for bitshuffle
        raise RuntimeError("bitshuffle/LZ4 did not filter the frame")
    return bytes(chunk)


def _group(parent, name: str, nx_class: str):
    g = parent.create_group(name)
    g.attrs["NX_class"] = nx_class
    return g


def _axis(group, name: str, value, *, kind: str, vector, units: str, depends_on: str,
          offset=(0.0, 0.0, 0.0), component: str | None = None):
    ds = group.create_dataset(name, data=value)
    ds.attrs["transformation_type"] = kind
    ds.attrs["vector"] = np.asarray(vector, dtype=np.float64)
    ds.attrs["offset"] = np.asarray(offset, dtype=np.float64)
    ds.attrs["offset_units"] = "mm"
    ds.attrs["units"] = units
    ds.attrs["depends_on"] = depends_on
    if component:
        ds.attrs["equipment_component"] = component
    return ds


def write_nxmx(path: str, geometry: DetectorGeometry, frames: Iterable[np.ndarray],
               n_frames: int, *, content: str = "float", command: list[str] | None = None,
               compressed: bool = False,
               on_frame: Callable[[int], None] | None = None) -> None:
    """Write an NXmx master file with ``n_frames`` images of ``geometry``.

    Parameters
    ----------
    path : str
        Output file (written in place; callers make it atomic).
    geometry : DetectorGeometry
        Frame 0's geometry; frame ``i`` starts at ``phi_start_deg + i * osc_deg``.
    frames : iterable of ndarray (slow, fast)
        float32 photons (``content="float"``), or C's uint16 int/noise pixels
        (``"int"``/``"noise"``: stored as int32 counts, ADC offset removed, see
        :func:`counts_from_raw`).
    n_frames : int
        How many arrays ``frames`` yields.
    content : {"float", "int", "noise"}
    command : list of str, optional
        Recorded as ``/entry/program_name@command`` (JSON).
    compressed : bool
        ``frames`` yields :func:`compress_frame`'s bytes, copied into the file as they
        are.

    Raises
    ------
    ValueError
        For an unknown content or a frame of the wrong shape.
    """
    import h5py

    if content not in CONTENTS:
        raise ValueError(f"content must be one of {CONTENTS}, not {content!r}")
    g = geometry
    R = g.mcstas()
    shape = (g.slow_pixels, g.fast_pixels)
    dtype = nxmx_frame_dtype(content)
    mm = 1000.0
    n = R @ g.normal
    close_mm = g.close_distance_m * mm
    inplane = R @ np.asarray(g.pix0_m) * mm - close_mm * n
    inplane_len = float(np.linalg.norm(inplane))
    inplane_dir = inplane / inplane_len if inplane_len > 0 else R @ np.asarray(g.fdet)
    omega = g.phi_start_deg + np.arange(n_frames, dtype=np.float64) * g.osc_deg
    with h5py.File(path, "w") as h5:
        h5.attrs["NX_class"] = "NXroot"
        h5.attrs["creator"] = "nbnumba"
        h5.attrs["default"] = "entry"
        entry = _group(h5, "entry", "NXentry")
        entry.attrs["default"] = "data"
        entry.create_dataset("definition", data="NXmx")
        prog = entry.create_dataset("program_name", data="nbnumba (nanoBragg.c port)")
        if command is not None:
            prog.attrs["command"] = json.dumps(list(command))
        _group(entry, "source", "NXsource").create_dataset(
            "name", data="nanoBragg simulation")

        # the data first, so that the detector can link to it
        data_group = _group(entry, "data", "NXdata")
        data_group.attrs["signal"] = "data"
        data = data_group.create_dataset("data", shape=(n_frames, *shape), dtype=dtype,
                                         chunks=(1, *shape), **_compression())
        if content == "float":
            data.attrs["units"] = "photons"
        else:
            data.attrs["units"] = "counts"
            data.attrs["adc_offset_subtracted"] = adc_baseline(g.adc_offset)
        data.attrs["content"] = content
        count = 0
        for i, frame in enumerate(frames):
            if i >= n_frames:
                raise ValueError(f"more frames given than the file's {n_frames}")
            if compressed:
                data.id.write_direct_chunk((i, 0, 0), bytes(frame))
            else:
                arr = np.asarray(frame)
                if arr.shape != shape:
                    raise ValueError(f"frame {i}: shape {arr.shape}, expected {shape}")
                data[i] = _stored(arr, content, g.adc_offset)
            count += 1
            if on_frame is not None:
                on_frame(i)
        if count != n_frames:
            raise ValueError(f"{count} frames given for a file of {n_frames}")

        instrument = _group(entry, "instrument", "NXinstrument")
        instrument.create_dataset("name", data="nanoBragg simulation")
        beam = _group(instrument, "beam", "NXbeam")
        wl = beam.create_dataset("incident_wavelength", data=g.wavelength_m * 1e10)
        wl.attrs["units"] = "angstrom"
        stokes = R @ np.asarray(g.polar)
        pol = beam.create_dataset("incident_polarization_vector", data=stokes)
        pol.attrs["description"] = "unit E-vector direction (McStas), nanoBragg's polar"

        det = _group(instrument, "detector", "NXdetector")
        det.create_dataset("depends_on", data=DETECTOR_Z)
        det.create_dataset("description", data=f"nanoBragg simulated detector "
                                               f"({g.convention} convention, {g.pivot} pivot)")
        det.create_dataset("type", data="simulated pixel array")
        det.create_dataset("sensor_material", data="Si")
        # dxtbx's parallax model needs a real sensor: the run's, else a nominal one
        # (geometry.NOMINAL_SENSOR_THICKNESS_M) that moves no pixel measurably
        det.create_dataset("sensor_thickness", data=g.sensor_thickness_m * mm).attrs[
            "units"] = "mm"
        det.create_dataset("count_time", data=g.exposure_s).attrs["units"] = "s"
        det.create_dataset("frame_time", data=g.exposure_s).attrs["units"] = "s"
        det.create_dataset("distance", data=close_mm).attrs["units"] = "mm"
        fbeam, sbeam = g.beam_spot_m()
        det.create_dataset("beam_center_x", data=fbeam / g.pixel_size_m).attrs["units"] = \
            "pixel"
        det.create_dataset("beam_center_y", data=sbeam / g.pixel_size_m).attrs["units"] = \
            "pixel"
        det.create_dataset("x_pixel_size", data=g.pixel_size_m * mm).attrs["units"] = "mm"
        det.create_dataset("y_pixel_size", data=g.pixel_size_m * mm).attrs["units"] = "mm"
        if content != "float":
            det.create_dataset("saturation_value", data=np.int32(saturation_of(g.adc_offset)))
            det.create_dataset("underload_value", data=np.int32(-1))
            det.create_dataset("adc_offset", data=float(g.adc_offset)).attrs["note"] = (
                "added by nanoBragg to every pixel; subtracted (rounded) from the stored "
                "counts")
        det["data"] = data  # a hard link: the same dataset
        tr = _group(det, "transformations", "NXtransformations")
        _axis(tr, "detector_z", close_mm, kind="translation", vector=n, units="mm",
              depends_on=".", component="detector_arm")
        module = _group(det, "module", "NXdetector_module")
        module.create_dataset("data_origin", data=np.array([0, 0], dtype=np.int32))
        module.create_dataset("data_size", data=np.array(shape, dtype=np.int32))
        module.create_dataset("data_stride", data=np.array([1, 1], dtype=np.int32))
        _axis(module, "module_offset", inplane_len, kind="translation", vector=inplane_dir,
              units="mm", depends_on=DETECTOR_Z, component="detector_arm")
        for name, v in (("fast_pixel_direction", g.fdet), ("slow_pixel_direction", g.sdet)):
            _axis(module, name, g.pixel_size_m * mm, kind="translation",
                  vector=R @ np.asarray(v), units="mm", depends_on=MODULE + "/module_offset",
                  component="detector_module")

        sample = _group(entry, "sample", "NXsample")
        sample.create_dataset("name", data="simulated crystal")
        sample.create_dataset("depends_on", data=OMEGA)
        sample["beam"] = beam  # a hard link to the instrument's NXbeam
        st = _group(sample, "transformations", "NXtransformations")
        _axis(st, "omega", omega, kind="rotation", vector=R @ np.asarray(g.spindle),
              units="deg", depends_on=".")
        st.create_dataset("omega_increment_set", data=g.osc_deg).attrs["units"] = "deg"
        st.create_dataset("omega_end", data=omega + g.osc_deg).attrs["units"] = "deg"
