"""Sum raw float32 images before noise, as bl831's ``float_add`` does (not in nanoBragg).

The pipeline's combine rule (``../shared/companions/README.md``): ``((a + b) + c)`` in
float32, left to right, element by element. Used by ``nb-float-add``, by
``noisify-nb -add FILE`` and by ``Noisify.run(image=[a, b, c])``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import InputFileError, UsageError
from ..inputs import input_size, read_input

__all__ = ["float_add", "read_float_image", "float_add_files"]


def float_add(images: Sequence[np.ndarray]) -> np.ndarray:
    """Element-wise float32 sum ``((images[0] + images[1]) + ...)``, in order.

    Parameters
    ----------
    images : sequence of arrays, all of one shape
        photons/pixel; converted to float32 first (as C reads them).

    Returns
    -------
    numpy.ndarray
        float32, the common shape.

    Raises
    ------
    UsageError
        No images, shapes that differ, or values that are not real numbers.
    """
    if len(images) == 0:
        raise UsageError("float_add needs at least one image")
    shapes = {np.shape(a) for a in images}
    if len(shapes) != 1:
        raise UsageError(f"float_add: images of different shapes {sorted(shapes)}")
    for a in images:
        kind = np.asarray(a).dtype.kind
        if kind not in "biuf":  # complex would lose its imaginary part, objects/strings fail
            raise UsageError(f"float_add: images must hold real numbers (photons/pixel), "
                             f"not dtype {np.asarray(a).dtype}")
    total = np.array(images[0], dtype=np.float32, copy=True)
    for other in images[1:]:
        total += np.asarray(other, dtype=np.float32)  # float32 + float32, rounded each step
    return total


def _as_floats(path: str | os.PathLike, data: bytes) -> np.ndarray:
    if len(data) % 4:
        raise InputFileError(path, f"{len(data)} bytes is not a whole number of float32 values")
    return np.frombuffer(data, dtype="<f4").copy()


def read_float_image(path: str | os.PathLike, max_bytes: int | None = None) -> np.ndarray:
    """A raw float32 little-endian file as a flat array, read once and bounded
    (:func:`nbnumba.inputs.read_input`; ``max_bytes``: at most that many bytes).

    Raises :class:`~nbnumba.errors.InputFileError` (a folder, a pipe or device without
    end, a length that is not a multiple of 4)."""
    return _as_floats(path, read_input(path, max_bytes=max_bytes))


def float_add_files(paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """Read and sum float images (all the same byte length), in order.

    The first image fixes the length; of the others no more than one byte past it
    is read, so a device or an endless pipe among them ends in a size error at once."""
    first = read_input(paths[0])
    size = len(first)
    images = [_as_floats(paths[0], first)]
    for p in paths[1:]:
        other = input_size(p)  # a regular file's size, None for a pipe or device
        data = read_input(p, max_bytes=size + 1) if other in (None, size) else b""
        held = other if other not in (None, size) else len(data)
        if held != size:
            said = f"more than {size}" if held > size and other is None else f"{held}"
            raise InputFileError(p, f"holds {said} bytes, {os.fspath(paths[0])} holds "
                                    f"{size}: images must have the same size")
        images.append(_as_floats(p, data))
    return float_add(images)
