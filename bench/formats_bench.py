"""NXmx (and miniCBF) writing for a full supervisor frame: bytes and the time it adds.

The supervisor command of ../shared/golden (2463×2527 Pilatus 6M geometry, -mat,
-hkl, 10 φ steps) is computed once in this process (after a warm-up run), then its
frame is written the way ``nanobragg-nb series --template run_master.h5`` writes it:
the worker compresses the frame into its chunk (bitshuffle/LZ4) and writes it as a part
(atomic, fsync'd, sha256 for the manifest); the client's assembly reads each part,
checks its sha256 and copies it into the file (``write_direct_chunk``). Reported per
frame: raw and compressed bytes, seconds, and the writing time as a fraction of the
frame's compute time (goal ≤ 20 %). Float photons and int counts (C's int image less
the ADC offset) are both measured; so is one miniCBF (``.cbf`` frames).

    python bench/formats_bench.py [--frames 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

GOLDEN = Path(os.environ.get("NB_GOLDEN", Path(__file__).resolve().parents[2] / "shared"
                             / "golden"))


def supervisor_args() -> list[str]:
    case = json.loads((GOLDEN / "supervisor" / "case.json").read_text())
    args = list(case["args"])
    i = args.index("-floatfile")
    del args[i:i + 2]
    return args


TIMES: dict[str, list[float]] = {}  # every repeat, by label, for the JSON


def _median_time(fn, repeats: int, label: str = "") -> tuple[float, object]:
    """Median seconds of ``repeats`` calls (the machine is shared: minima are kept too)."""
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    if label:
        TIMES[label] = times
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=4, help="frames per NXmx file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    opts = parser.parse_args()

    import h5py

    from nbnumba import io as nbio
    from nbnumba.api import Simulation
    from nbnumba.formats import DetectorGeometry
    from nbnumba.formats.cbf import write_minicbf
    from nbnumba.formats.nxmx import compress_frame, write_nxmx

    workdir = Path(tempfile.mkdtemp(prefix="formats_bench."))
    for f in (GOLDEN / "inputs").iterdir():
        (workdir / f.name).write_bytes(f.read_bytes())
    os.chdir(workdir)
    args = supervisor_args()
    Simulation.from_args(args).run()  # warm-up: kernel compile/cache load, hkl read
    compute_s, result = _median_time(lambda: Simulation.from_args(args).run(), opts.repeats,
                                     "compute")
    geometry = DetectorGeometry.from_scene(result.scene)
    images = {"float": result.image, "int": result.int_image()}
    report: dict = {"frame_compute_s": compute_s, "shape": list(result.image.shape),
                    "frames_per_file": opts.frames, "contents": {}}
    print(f"supervisor frame {result.image.shape}: compute {compute_s:.3f} s (median)")
    for content, image in images.items():
        raw = np.ascontiguousarray(image)
        part = str(workdir / f"part_{content}.raw")

        def worker_part(raw=raw, part=part, content=content):  # a series task's writing
            nbio.atomic_write(part, compress_frame(raw, content, geometry.adc_offset),
                              durable=True)
            return hashlib.sha256(Path(part).read_bytes()).hexdigest()

        part_s, sha = _median_time(worker_part, opts.repeats, f"part_{content}")
        path = str(workdir / f"stack_{content}_master.h5")

        def frames(part=part, sha=sha):
            for _ in range(opts.frames):
                data = Path(part).read_bytes()
                assert hashlib.sha256(data).hexdigest() == sha
                yield data

        def assemble(path=path, frames=frames, content=content):
            write_nxmx(path, geometry, frames(), opts.frames, content=content,
                       compressed=True)

        assemble_s, _ = _median_time(assemble, opts.repeats, f"assemble_{content}")
        with h5py.File(path) as h5:
            data = h5["entry/data/data"]
            stored = [data.id.get_chunk_info(i).size for i in range(opts.frames)]
            stored_bytes = int(np.mean(stored))
            stored_raw = int(np.prod(data.shape[1:]) * data.dtype.itemsize)
        per_frame_s = part_s + assemble_s / opts.frames
        best_s = min(TIMES[f"part_{content}"]) + min(TIMES[f"assemble_{content}"]) / opts.frames
        entry = {"c_pixels_bytes": int(raw.nbytes), "stored_dtype": str(data.dtype),
                 "stored_uncompressed_bytes": stored_raw,
                 "compressed_bytes_per_frame": stored_bytes,
                 "compression_ratio": stored_raw / stored_bytes,
                 "part_write_s": part_s, "assemble_s_per_frame": assemble_s / opts.frames,
                 "write_s_per_frame": per_frame_s,
                 "write_fraction_of_compute": per_frame_s / compute_s,
                 "write_fraction_of_compute_minima": best_s / min(TIMES["compute"]),
                 "file_bytes": os.path.getsize(path)}
        report["contents"][content] = entry
        print(f"NXmx {content:5s}: {stored_raw / 1e6:7.2f} MB raw -> {stored_bytes / 1e6:6.3f} MB "
              f"per frame (x{entry['compression_ratio']:.0f}); write {per_frame_s:.3f} s/frame "
              f"(part {part_s:.3f} + assembly {assemble_s / opts.frames:.3f}) = "
              f"{100 * entry['write_fraction_of_compute']:.1f} % of the frame's compute "
              f"(minima: {100 * entry['write_fraction_of_compute_minima']:.1f} %)")
    cbf = str(workdir / "frame.cbf")
    cbf_s, _ = _median_time(lambda: write_minicbf(cbf, images["int"], geometry),
                            opts.repeats, "minicbf")
    report["minicbf"] = {"bytes": os.path.getsize(cbf), "write_s": cbf_s,
                         "write_fraction_of_compute": cbf_s / compute_s}
    print(f"miniCBF int : {os.path.getsize(cbf) / 1e6:6.3f} MB, write {cbf_s:.3f} s = "
          f"{100 * cbf_s / compute_s:.1f} % of the frame's compute")
    if not opts.no_save:
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(
                __file__).parent, capture_output=True, text=True).stdout.strip()
        except OSError:
            commit = ""
        stamp = time.strftime("%Y-%m-%dT%H%M%S")
        out = Path(__file__).resolve().parent / "results" / f"{stamp}_formats.json"
        out.write_text(json.dumps({"date": stamp, "commit": commit,
                                   "cpu": platform.processor() or platform.machine(),
                                   "cores": os.cpu_count(),
                                   "numba_threads": os.environ.get("NUMBA_NUM_THREADS"),
                                   **report, "times_s": TIMES}, indent=1) + "\n")
        print(f"saved {out}")


if __name__ == "__main__":
    main()
