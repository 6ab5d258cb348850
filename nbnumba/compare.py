"""Compare nanobragg-nb with nanoBragg.c: images, runtimes and per-pixel traces.

:func:`compare_images` gives the numbers for two float images,
:func:`compare_traces` pairs ``TRACE_PY`` lines with the instrumented C's
``TRACE_C`` lines, and :func:`run_comparison` runs both programs on one
command line and writes ``summary.json`` and PNGs.  ``nb-compare``
(``nbnumba.cli.compare``) is the command-line face of the last one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EXIT_FILE, NbError

DEFAULT_MIN_CORR = 0.9995
DEFAULT_TOP_N = 20
TRACE_TOLERANCE = 1e-9  # relative, per trace value
# C's output-file flags (matched as substrings, as C does)
OUTPUT_FLAGS = ("-floatfile", "-floatimage", "-intfile", "-intimage", "-noisefile",
                "-noiseimage", "-pgmfile", "-pgmimage")


class CompareError(NbError):
    """A comparison could not be made (a program failed, a file is missing or mismatched)."""

    exit_code = EXIT_FILE


# ----------------------------------------------------------------------- images

def roi_slices(shape: tuple[int, int], roi: Sequence[int] | None) -> tuple[slice, slice]:
    """Rows and columns of C's inclusive ``-roi xmin xmax ymin ymax`` (x fast, y slow)."""
    if roi is None:
        return slice(0, shape[0]), slice(0, shape[1])
    xmin, xmax, ymin, ymax = (int(v) for v in roi)
    rows = slice(max(ymin, 0), max(min(ymax, shape[0] - 1) + 1, 0))
    cols = slice(max(xmin, 0), max(min(xmax, shape[1] - 1) + 1, 0))
    return rows, cols


def find_peaks(image: np.ndarray, n: int = DEFAULT_TOP_N,
               min_separation: float = 3.0) -> np.ndarray:
    """The ``n`` brightest local maxima (≥ their 8 neighbours, > 0) as (slow, fast) rows.

    Maxima closer than ``min_separation`` px to a brighter one already taken
    are skipped, so a flat-topped spot counts once.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    padded = np.pad(img, 1, mode="constant", constant_values=-np.inf)
    is_max = img > 0
    rows, cols = img.shape
    for ds in (-1, 0, 1):
        for df in (-1, 0, 1):
            if ds or df:
                is_max &= img >= padded[1 + ds:1 + ds + rows, 1 + df:1 + df + cols]
    cand = np.argwhere(is_max)
    if cand.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    order = np.argsort(-img[cand[:, 0], cand[:, 1]], kind="stable")
    taken: list[np.ndarray] = []
    limit = min_separation * min_separation
    for i in order:
        p = cand[i]
        if all(float(np.sum((p - q) ** 2)) >= limit for q in taken):
            taken.append(p)
            if len(taken) == n:
                break
    return np.array(taken, dtype=np.int64).reshape(-1, 2)


def mean_peak_distance(ours: np.ndarray, ref: np.ndarray, n: int = DEFAULT_TOP_N) -> float:
    """Mean distance (px) from each of ``ref``'s top-n peaks to the nearest of ours'."""
    p_ref = find_peaks(ref, n)
    p_ours = find_peaks(ours, n)
    if len(p_ref) == 0 and len(p_ours) == 0:
        return 0.0
    if len(p_ref) == 0 or len(p_ours) == 0:
        return math.inf
    d = np.sqrt(((p_ref[:, None, :] - p_ours[None, :, :]) ** 2).sum(axis=2))
    return float(d.min(axis=1).mean())


def compare_images(ours: np.ndarray, ref: np.ndarray, roi: Sequence[int] | None = None,
                   top_n: int = DEFAULT_TOP_N) -> dict:
    """Agreement of two float images [slow, fast], over C's inclusive ``roi`` if given.

    Returns ``correlation`` (Pearson), ``sum_ratio`` (ours / ref), ``rmse`` and
    ``max_abs_diff`` (photons), ``max_abs_diff_at`` ([slow, fast] in the full
    image), ``peak_distance_px`` (see :func:`mean_peak_distance`) and the
    sums and maxima of both.
    """
    ours = np.asarray(ours)
    ref = np.asarray(ref)
    if ours.shape != ref.shape:
        raise CompareError(f"image shapes differ: ours {ours.shape}, C {ref.shape}")
    rows, cols = roi_slices(ours.shape, roi)
    a = ours[rows, cols].astype(np.float64)
    b = ref[rows, cols].astype(np.float64)
    if a.size == 0:
        raise CompareError("the region compared is empty")
    diff = a - b
    where = np.unravel_index(int(np.argmax(np.abs(diff))), diff.shape)
    if np.array_equal(a, b):
        corr = 1.0  # corrcoef may round this to 1 - 2e-16
    elif np.std(a) > 0 and np.std(b) > 0:
        corr = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    else:
        corr = 0.0
    sum_a = float(a.sum())
    sum_b = float(b.sum())
    if sum_b != 0.0:
        sum_ratio = sum_a / sum_b
    else:
        sum_ratio = 1.0 if sum_a == 0.0 else math.inf
    return {
        "correlation": corr,
        "sum_ratio": sum_ratio,
        "rmse": float(np.sqrt(np.mean(diff * diff))),
        "max_abs_diff": float(np.abs(diff[where])),
        "max_abs_diff_at": [int(where[0]) + rows.start, int(where[1]) + cols.start],
        "peak_distance_px": mean_peak_distance(a, b, top_n),
        "peaks": int(top_n),
        "sum_ours": sum_a,
        "sum_c": sum_b,
        "max_ours": float(a.max()),
        "max_c": float(b.max()),
        "pixels": int(a.size),
        "identical_pixels": int(np.count_nonzero(ours[rows, cols] == ref[rows, cols])),
    }


# ----------------------------------------------------------------------- traces

@dataclass(frozen=True)
class TraceEntry:
    """One traced quantity: ``key`` as C names it (``PHI[3].k_frac`` for per-φ fields)."""

    key: str
    values: tuple[float, ...]
    text: str  # the values as printed


def _number(token: str) -> float:
    try:
        return float(token)
    except ValueError:
        return math.nan


def parse_trace(text: str) -> list[TraceEntry]:
    """``TRACE_C:``/``TRACE_PY:`` and ``TRACE_C_PHI``/``TRACE_PY_PHI`` lines, in order.

    Other lines (setup traces such as ``TRACE_C:detector_convention=...``,
    ``TRACE_CONFIG``, program output) are ignored.
    """
    entries: list[TraceEntry] = []
    for line in text.splitlines():
        line = line.strip()
        for prefix in ("TRACE_C: ", "TRACE_PY: "):
            if line.startswith(prefix):
                parts = line[len(prefix):].split()
                if parts:
                    entries.append(TraceEntry(parts[0], tuple(_number(t) for t in parts[1:]),
                                              " ".join(parts[1:])))
                break
        else:
            for prefix in ("TRACE_C_PHI ", "TRACE_PY_PHI "):
                if line.startswith(prefix):
                    fields = dict(f.split("=", 1) for f in line[len(prefix):].split() if "=" in f)
                    tic = fields.pop("phi_tic", "?")
                    for name, token in fields.items():
                        entries.append(TraceEntry(f"PHI[{tic}].{name}", (_number(token),), token))
                    break
    return entries


def _rel_error(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """max |a - b| over the components / the largest |component| of either."""
    if len(a) != len(b):
        return math.inf
    if not a:
        return 0.0
    worst = 0.0
    scale = 0.0
    for x, y in zip(a, b, strict=True):
        if math.isnan(x) or math.isnan(y):
            if not (math.isnan(x) and math.isnan(y)):
                return math.inf
            continue
        if x == y:
            scale = max(scale, abs(x))
            continue
        if math.isinf(x) or math.isinf(y):
            return math.inf
        worst = max(worst, abs(x - y))
        scale = max(scale, abs(x), abs(y))
    if worst == 0.0:
        return 0.0
    return worst / scale


def _key_group(key: str) -> str:
    """Per-φ keys summarised over φ steps: ``PHI[3].k_frac`` → ``PHI.k_frac``."""
    if key.startswith("PHI[") and "]." in key:
        return "PHI." + key.split("].", 1)[1]
    return key


def compare_traces(ours: Sequence[TraceEntry], ref: Sequence[TraceEntry],
                   tolerance: float = TRACE_TOLERANCE) -> dict:
    """Pair the two traces line by line; report errors and the first divergence.

    ``per_key``: the largest relative error per key (per-φ keys grouped);
    ``first_divergence``: the first entry whose key differs or whose relative
    error exceeds ``tolerance`` (None when there is none).
    """
    per_key: dict[str, float] = {}
    first = None
    n = min(len(ours), len(ref))
    keys_match = [e.key for e in ours] == [e.key for e in ref]
    for i in range(n):
        a, b = ours[i], ref[i]
        if a.key != b.key:
            if first is None:
                first = {"index": i, "key": b.key, "ours_key": a.key, "ours": a.text,
                         "c": b.text, "rel_error": math.inf, "reason": "key order differs"}
            break
        err = _rel_error(a.values, b.values)
        group = _key_group(a.key)
        per_key[group] = max(per_key.get(group, 0.0), err)
        if first is None and err > tolerance:
            first = {"index": i, "key": a.key, "ours": a.text, "c": b.text, "rel_error": err,
                     "reason": "value differs"}
    if first is None and len(ours) != len(ref):
        i = n
        longer = ours if len(ours) > len(ref) else ref
        first = {"index": i, "key": longer[i].key, "ours": ours[i].text if i < len(ours) else None,
                 "c": ref[i].text if i < len(ref) else None, "rel_error": math.inf,
                 "reason": "ours has more lines" if len(ours) > len(ref) else "C has more lines"}
    return {
        "lines_ours": len(ours),
        "lines_c": len(ref),
        "keys_match": keys_match,
        "max_rel_error": max(per_key.values(), default=0.0),
        "per_key": per_key,
        "first_divergence": first,
        "tolerance": tolerance,
    }


# --------------------------------------------------------------- running both

@dataclass
class ProgramRun:
    command: list[str]
    workdir: Path
    returncode: int
    seconds: float
    stdout: str
    stderr: str


def _input_files(args: Sequence[str], cwd: Path) -> list[str]:
    """Relative paths named in ``args`` that exist under ``cwd`` (copied for each run)."""
    names = []
    for i, token in enumerate(args):
        if token.startswith("-") or os.path.isabs(token):
            continue
        if i > 0 and any(flag in args[i - 1] for flag in OUTPUT_FLAGS):
            continue  # an output file left by an earlier run
        if (cwd / token).is_file() and token not in names:
            names.append(token)
    # without -hkl both programs read Fdump.bin left by an earlier run
    if not any("-hkl" in t for t in args) and (cwd / "Fdump.bin").is_file():
        names.append("Fdump.bin")
    return names


def _stage(workdir: Path, names: Sequence[str], cwd: Path) -> None:
    for name in names:
        dst = workdir / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cwd / name, dst)


def _run(command: list[str], workdir: Path) -> ProgramRun:
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                              errors="replace")
    except OSError as exc:
        raise CompareError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    seconds = time.perf_counter() - start
    return ProgramRun(command, workdir, proc.returncode, seconds, proc.stdout, proc.stderr)


def _output_names(args: Sequence[str], workdir: Path) -> tuple[str, str]:
    """The float and SMV int image names nanoBragg.c writes for ``args`` (read as C does)."""
    from .cargs import parse_args

    opts, _ = parse_args(list(args), cwd=workdir)
    return opts.floatfilename, opts.intfilename


def _read_float(path: Path, shape: tuple[int, int], who: str) -> np.ndarray:
    if not path.is_file():
        raise CompareError(f"{who}: float image {path} was not written")
    if path.suffix == ".gz":  # as the golden folder stores some images
        import gzip

        data = np.frombuffer(gzip.decompress(path.read_bytes()), dtype="<f4")
    else:
        data = np.fromfile(path, dtype="<f4")
    if data.size != shape[0] * shape[1]:
        raise CompareError(f"{who}: float image {path} holds {data.size} pixels, "
                           f"expected {shape[1]}x{shape[0]}")
    return data.reshape(shape)


def _shape_from_smv(path: Path) -> tuple[int, int]:
    from .io import read_smv

    frame = read_smv(path)
    return frame.height, frame.width


def _fail(run: ProgramRun, who: str) -> CompareError:
    tail = (run.stderr.strip() or run.stdout.strip()).splitlines()[-1:] or [""]
    return CompareError(f"{who} exited with {run.returncode}: {tail[0]}")


def _pool(image: np.ndarray, target: int = 1000) -> np.ndarray:
    """Shrink by an integer factor to at most ``target`` px, keeping the largest |value|."""
    factor = math.ceil(max(image.shape) / target)
    if factor <= 1:
        return image
    rows = math.ceil(image.shape[0] / factor) * factor
    cols = math.ceil(image.shape[1] / factor) * factor
    padded = np.zeros((rows, cols), dtype=image.dtype)
    padded[:image.shape[0], :image.shape[1]] = image
    blocks = padded.reshape(rows // factor, factor, cols // factor, factor)
    blocks = blocks.transpose(0, 2, 1, 3).reshape(rows // factor, cols // factor, -1)
    pick = np.abs(blocks).argmax(axis=2)
    return np.take_along_axis(blocks, pick[..., None], axis=2)[..., 0]


def save_pngs(ours: np.ndarray, ref: np.ndarray, outdir: Path,
              roi: Sequence[int] | None = None, title: str = "") -> list[str] | str:
    """C, ours and ours − C as PNGs (C and ours on one colour scale), plus all three side by side.

    Returns the file names, or a one-line note when matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'nbnumba[compare]'): no PNGs"
    rows, cols = roi_slices(ours.shape, roi)
    a = ours[rows, cols].astype(np.float64)
    b = ref[rows, cols].astype(np.float64)
    diff = a - b
    positive = np.concatenate([a[a > 0], b[b > 0]])
    vmax = float(np.percentile(positive, 99.9)) if positive.size else 1.0
    nonzero = np.abs(diff[diff != 0])
    # clipped like the images, so that a few outliers do not hide the pattern
    dmax = float(np.percentile(nonzero, 99.9)) if nonzero.size else 1.0
    # screen-sized, keeping each block's extreme so that one-pixel spots stay visible
    a, b, diff = _pool(a), _pool(b), _pool(diff)
    extent = (cols.start - 0.5, cols.stop - 0.5, rows.stop - 0.5, rows.start - 0.5)
    panels = [("c.png", b, "nanoBragg.c", dict(cmap="gray_r", vmin=0.0, vmax=vmax)),
              ("ours.png", a, "nanobragg-nb", dict(cmap="gray_r", vmin=0.0, vmax=vmax)),
              ("diff.png", diff, "nanobragg-nb − C", dict(cmap="RdBu_r", vmin=-dmax, vmax=dmax))]
    names = []
    for name, data, label, style in panels:
        fig, ax = plt.subplots(figsize=(6, 6 * data.shape[0] / max(data.shape[1], 1) + 0.6))
        im = ax.imshow(data, extent=extent, interpolation="nearest", **style)
        ax.set_title(label)
        ax.set_xlabel("fast pixel")
        ax.set_ylabel("slow pixel")
        fig.colorbar(im, ax=ax, label="photons", shrink=0.8, extend="max" if name != "diff.png"
                     else "both")
        fig.tight_layout()
        fig.savefig(outdir / name, dpi=120)
        plt.close(fig)
        names.append(name)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6))
    for ax, (_, data, label, style) in zip(axes, panels, strict=True):
        im = ax.imshow(data, extent=extent, interpolation="nearest", **style)
        ax.set_title(label)
        ax.set_xlabel("fast pixel")
        fig.colorbar(im, ax=ax, shrink=0.8, extend="both" if style["cmap"] == "RdBu_r" else "max")
    axes[0].set_ylabel("slow pixel")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(outdir / "comparison.png", dpi=110)
    plt.close(fig)
    names.append("comparison.png")
    return names


def run_comparison(args: Sequence[str], c_bin: str | os.PathLike | None = None,
                   c_image: str | os.PathLike | None = None,
                   c_trace: str | os.PathLike | None = None,
                   trace: tuple[int, int] | None = None, c_parity: bool = False,
                   outdir: str | os.PathLike = "nb_compare",
                   roi: Sequence[int] | None = None, min_corr: float = DEFAULT_MIN_CORR,
                   top_n: int = DEFAULT_TOP_N, pngs: bool = True,
                   cwd: str | os.PathLike | None = None) -> dict:
    """Run nanoBragg.c and nanobragg-nb on ``args``; write summary.json and PNGs to ``outdir``.

    C is ``c_bin`` (else ``$NB_C_BIN``) run in a temporary folder holding
    copies of the input files named in ``args``; with ``c_image`` its saved
    float image is read instead.  Ours runs as ``python -m nbnumba.cli.main``
    the same way, with ``-c_parity`` when ``c_parity``.  ``roi`` (C's
    inclusive xmin xmax ymin ymax) is passed to both programs as ``-roi`` and
    limits the numbers to that region.  ``trace`` (slow, fast) adds
    ``-trace_pixel`` to both; the C trace comes from ``c_trace`` if given,
    else from C's stdout (an instrumented build).  Returns the summary dict;
    ``summary["passed"]`` is False when the correlation is below ``min_corr``.
    Raises :class:`CompareError` when a program fails or an image is missing.
    """
    cwd = Path(cwd or os.getcwd()).resolve()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    args = [str(a) for a in args]
    if c_image is None:
        c_bin = c_bin or os.environ.get("NB_C_BIN")
        if not c_bin:
            raise CompareError("no C program: give --c-bin, set NB_C_BIN, or read a saved "
                               "image with --c-image")
        c_bin = str(Path(c_bin).resolve())
        if not Path(c_bin).is_file():
            raise CompareError(f"C program {c_bin} does not exist")
    else:
        c_image = (cwd / c_image).resolve()
        if not c_image.is_file():
            raise CompareError(f"C image {c_image} does not exist")
    if c_trace is not None:
        c_trace = (cwd / c_trace).resolve()
        if not c_trace.is_file():
            raise CompareError(f"C trace {c_trace} does not exist")
    extra: list[str] = []
    if roi is not None:
        extra += ["-roi", *(str(int(v)) for v in roi)]
    if trace is not None:
        extra += ["-trace_pixel", str(int(trace[0])), str(int(trace[1]))]
    inputs = _input_files(args, cwd)

    with tempfile.TemporaryDirectory(prefix="nb-compare-") as tmp:
        ours_dir = Path(tmp) / "ours"
        c_dir = Path(tmp) / "c"
        ours_dir.mkdir()
        _stage(ours_dir, inputs, cwd)
        ours_cmd = [sys.executable, "-m", "nbnumba.cli.main", *args,
                    *(["-c_parity"] if c_parity else []), *extra]
        ours_run = _run(ours_cmd, ours_dir)
        if ours_run.returncode != 0:
            raise _fail(ours_run, "nanobragg-nb")
        float_name, int_name = _output_names(args, ours_dir)
        shape = _shape_from_smv(ours_dir / int_name)
        ours_img = _read_float(ours_dir / float_name, shape, "nanobragg-nb")

        c_run = None
        if c_image is None:
            c_dir.mkdir()
            _stage(c_dir, inputs, cwd)
            c_run = _run([c_bin, *args, *extra], c_dir)
            if c_run.returncode != 0:
                raise _fail(c_run, "nanoBragg.c")
            c_img = _read_float(c_dir / float_name, shape, "nanoBragg.c")
        else:
            c_img = _read_float(c_image, shape, "C image")

        summary: dict = {
            "args": args,
            "c_parity": bool(c_parity),
            "roi": list(roi) if roi is not None else None,
            "shape": list(shape),
            "c_source": "image" if c_image is not None else "program",
            "c_image": str(c_image) if c_image is not None else None,
            "inputs": list(inputs),
            "c_command": c_run.command if c_run else None,
            "ours_command": ["nanobragg-nb", *ours_cmd[3:]],
        }
        summary.update(compare_images(ours_img, c_img, roi=roi, top_n=top_n))
        summary["c_runtime_s"] = c_run.seconds if c_run else None
        summary["ours_runtime_s"] = ours_run.seconds
        summary["speedup"] = (c_run.seconds / ours_run.seconds
                              if c_run and ours_run.seconds > 0 else None)
        summary["min_corr"] = min_corr
        summary["passed"] = bool(summary["correlation"] >= min_corr)

        if trace is not None:
            ours_trace = parse_trace(ours_run.stdout)
            if c_trace is not None:
                c_entries = parse_trace(c_trace.read_text(errors="replace"))
                source = str(c_trace)
            else:
                c_entries = parse_trace(c_run.stdout) if c_run else []
                source = "C stdout" if c_entries else None
            (outdir / "trace_py.txt").write_text(
                "".join(line + "\n" for line in ours_run.stdout.splitlines()
                        if line.startswith(("TRACE_PY", "TRACE_CONFIG"))))
            result: dict = {"pixel": [int(trace[0]), int(trace[1])], "c_trace": source}
            if c_entries:
                result.update(compare_traces(ours_trace, c_entries))
            else:
                result["note"] = ("no TRACE_C lines: the C build is not instrumented; "
                                  "give a saved trace with --c-trace")
                result["lines_ours"] = len(ours_trace)
            summary["trace"] = result

    if pngs:
        saved = save_pngs(ours_img, c_img, outdir, roi=roi,
                          title=f"correlation {summary['correlation']:.6f}, "
                                f"sum ratio {summary['sum_ratio']:.6f}")
        summary["pngs"] = saved if isinstance(saved, list) else []
        if isinstance(saved, str):
            summary["png_note"] = saved
    (outdir / "summary.json").write_text(json.dumps(_jsonable(summary), indent=1) + "\n")
    return summary


def _jsonable(obj):
    """Infinities and NaNs as strings: JSON has neither."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj
