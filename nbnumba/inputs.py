"""Each input file of a run read once, with a bound, and known by its identity.

nanoBragg.c opens every input file once and reads it as a stream, so a pipe
(``-mat <(cat A.mat)``), a named FIFO or ``/dev/fd/N`` works with it. Our
checks (:mod:`nbnumba.validate`) and our readers (:mod:`nbnumba.io`, via
:func:`read_input`) look at the same file one after the other; within
:func:`run_inputs` the first of them reads the bytes and the others get the
same bytes, so nothing is read twice and a pipe is read exactly once.

Bounds: a regular file is read whole (a :class:`MemoryError` becomes a
:class:`~nbnumba.errors.ResourceError` naming the file); a pipe, FIFO or device
is read up to :data:`MAX_STREAM_BYTES`. Readers of fscanf formats (hkl files,
matrices) ask for ``stop_at_nul``: C's ``fscanf`` can never read past a NUL
byte (it is neither a number nor white space), so nothing after the first NUL
can matter and ``-hkl /dev/zero`` ends at once, as in C.

The identities (``st_dev``, ``st_ino``) of the files read let the CLI refuse an
output that would overwrite one of them (:func:`same_file`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from .errors import InputFileError, InputFileOpenError, ResourceError

__all__ = ["MAX_STREAM_BYTES", "RunInputs", "run_inputs", "read_input", "input_size",
           "identity", "same_file", "is_stream", "stream_warnings"]

# what a pipe, FIFO or device may give before we stop: larger than any sane input
# text file, small enough to hold in memory on a laptop
MAX_STREAM_BYTES = 1 << 28
_CHUNK = 1 << 20


@dataclass
class _Read:
    data: bytes
    complete: bool  # read to the end (not stopped at a NUL)
    regular: bool
    identity: tuple[int, int] | None


def identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file ``path`` resolves to, None if it does not exist."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two names, however spelled (links, ``..``, hard links), are one regular file."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(sa.st_mode) and (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _too_long(path: str, limit: int, messages: list[str] | None) -> InputFileError:
    return InputFileError(path, f"gives more than {limit} bytes (a pipe or device without "
                                "end?); not an input file", messages=messages)


def _read(path: str, stop_at_nul: bool, messages: list[str] | None,
          max_bytes: int | None = None) -> _Read:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except IsADirectoryError as exc:
        raise InputFileError(path, "is a folder, not a file", messages=messages) from exc
    except OSError as exc:
        raise InputFileOpenError(path, exc, messages) from exc
    with f:
        try:
            st = os.fstat(f.fileno())
            regular = stat.S_ISREG(st.st_mode)
            ident = (st.st_dev, st.st_ino)
            if stat.S_ISDIR(st.st_mode):
                raise InputFileError(path, "is a folder, not a file", messages=messages)
            if max_bytes is not None:
                # C's fread of a size it knows: only those bytes, from a file, a pipe or
                # a device alike (noisify -floatfile /dev/zero -detpixels 64)
                if max_bytes > MAX_STREAM_BYTES and not regular:
                    raise _too_long(path, MAX_STREAM_BYTES, messages)
                data = _read_upto(f, max_bytes)
                return _Read(data, len(data) < max_bytes, regular, ident)
            if regular and not stop_at_nul:
                try:
                    return _Read(f.read(), True, True, ident)
                except MemoryError:
                    raise ResourceError(f"{path}: the file is {st.st_size} bytes, more "
                                        "than the memory available") from None
            limit = None if regular else MAX_STREAM_BYTES
            parts: list[bytes] = []
            size = 0
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    return _Read(b"".join(parts), True, regular, ident)
                if stop_at_nul:
                    nul = chunk.find(b"\0")
                    if nul >= 0:
                        parts.append(chunk[:nul])
                        return _Read(b"".join(parts), False, regular, ident)
                parts.append(chunk)
                size += len(chunk)
                if limit is not None and size > limit:
                    parts.clear()
                    raise _too_long(path, limit, messages)
        except OSError as exc:
            raise InputFileOpenError(path, exc, messages) from exc


def _read_upto(f, max_bytes: int) -> bytes:
    """At most ``max_bytes`` bytes of ``f`` (fewer only at its end)."""
    parts: list[bytes] = []
    left = max_bytes
    while left > 0:
        chunk = f.read(min(left, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class RunInputs:
    """The input files one run has read: their bytes and identities, by name as given."""

    def __init__(self) -> None:
        self._files: dict[str, _Read] = {}

    def read(self, path: str | os.PathLike, *, stop_at_nul: bool = False,
             messages: list[str] | None = None, max_bytes: int | None = None) -> bytes:
        name = os.fspath(path)
        got = self._files.get(name)
        if got is not None:
            if max_bytes is not None and (got.complete or len(got.data) >= max_bytes
                                          or not got.regular):
                return got.data[:max_bytes]
            if got.complete or stop_at_nul:
                return got.data
            if not got.regular:
                # a stream stopped at a NUL by an fscanf reader, now wanted whole:
                # C's other readers would see nothing more of it either
                return got.data
        got = (_read(name, stop_at_nul, messages) if max_bytes is None
               else _read(name, stop_at_nul, messages, max_bytes))
        self._files[name] = got
        return got.data

    def streams(self) -> dict[str, bytes]:
        """The bytes read from pipes, FIFOs and devices, by name: what another process
        (a series' worker) cannot read again and must be given."""
        return {name: r.data for name, r in self._files.items() if not r.regular}

    def preload(self, streams: dict[str, bytes], *, as_files: bool = False) -> None:
        """Take the bytes of :meth:`streams` from another process as read here.

        ``as_files``: the bytes stand for regular files (a stills shot's ``-mat`` and
        ``-sourcefile`` text, made in memory, that ``--explain`` writes as files), so no
        pipe warning (:func:`stream_warnings`) is given for them; default: they were
        read from pipes, FIFOs or devices (a series' worker gets the client's bytes).
        """
        for name, data in streams.items():
            self._files[name] = _Read(bytes(data), True, as_files, None)

    def identities(self) -> dict[tuple[int, int], str]:
        """(st_dev, st_ino) → name of every file read so far."""
        return {r.identity: name for name, r in self._files.items() if r.identity}


def is_stream(path: str | os.PathLike) -> bool:
    """Whether input ``path`` is a pipe, FIFO or device (as read in this run, if it was)."""
    record = _current.get()
    got = record._files.get(os.fspath(path)) if record is not None else None
    if got is not None:
        return not got.regular
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


# what nanoBragg.c makes of a pipe given to a flag whose file it reads twice (rewind)
TWICE_READ_BY_C = {
    "-hkl": "its second pass gets no record, so every F stays default_F",
    "-sourcefile": "it counts the lines, then reads none, so every source is NaN",
    "-stol": "it counts the lines, then reads none, so the table is NaN",
}


def stream_warnings(files: list[tuple[str, str]]) -> list[str]:
    """Warnings for the (flag, path) inputs that are pipes where C would misread them."""
    return [f"warning: {flag} {path} is a pipe or device: nanoBragg.c reads it twice "
            f"(rewind) and {TWICE_READ_BY_C[flag]}; nbnumba reads it once and uses it all"
            for flag, path in files if flag in TWICE_READ_BY_C and path and is_stream(path)]


_current: ContextVar[RunInputs | None] = ContextVar("nbnumba_run_inputs", default=None)


@contextlib.contextmanager
def run_inputs() -> Iterator[RunInputs]:
    """Within the block each input file is read once (an enclosing block's record is used)."""
    active = _current.get()
    if active is not None:
        yield active
        return
    record = RunInputs()
    token = _current.set(record)
    try:
        yield record
    finally:
        _current.reset(token)


def read_input(path: str | os.PathLike, *, stop_at_nul: bool = False,
               messages: list[str] | None = None, max_bytes: int | None = None) -> bytes:
    """The bytes of input file ``path`` (once per :func:`run_inputs` block), bounded.

    ``stop_at_nul``: the bytes before the first NUL only (fscanf readers).
    ``max_bytes``: the first ``max_bytes`` bytes only (fewer if the file ends first):
    what C's ``fread`` of a known size reads, so a device or an endless pipe gives
    them and no more.
    ``messages``: what C prints before it gives up, for the error's ``messages``.
    Raises :class:`InputFileOpenError`, :class:`InputFileError` (a folder, or a
    stream without end: more than :data:`MAX_STREAM_BYTES`) or
    :class:`ResourceError` (a file larger than memory).
    """
    record = _current.get()
    if record is not None:
        return record.read(path, stop_at_nul=stop_at_nul, messages=messages,
                           max_bytes=max_bytes)
    return _read(os.fspath(path), stop_at_nul, messages, max_bytes).data


def input_size(path: str | os.PathLike, messages: list[str] | None = None) -> int | None:
    """The byte size of a regular input file (what C's ``fseek(END)``/``ftell`` gives),
    None for a pipe, FIFO or device (whose size only reading tells; one already read in
    this run counts as its bytes). Raises :class:`InputFileOpenError` if it cannot be
    opened, :class:`InputFileError` for a folder."""
    name = os.fspath(path)
    record = _current.get()
    got = record._files.get(name) if record is not None else None
    if got is not None and not got.regular:
        return len(got.data) if got.complete else None
    try:
        st = os.stat(name)  # not opened: a FIFO's writer must meet the one real read
        if not os.access(name, os.R_OK):  # C's fopen fails here
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
    except OSError as exc:
        raise InputFileOpenError(name, exc, messages) from exc
    if stat.S_ISDIR(st.st_mode):
        raise InputFileError(name, "is a folder, not a file", messages=messages)
    return st.st_size if stat.S_ISREG(st.st_mode) else None
