"""``nb-compare``: run nanoBragg.c and nanobragg-nb on one command line and compare them.

    nb-compare [--outdir D] [--roi xmin xmax ymin ymax] [--c-bin PATH | --c-image float.bin]
               [--c-trace FILE] [--trace S F] [--c-parity] [--min-corr 0.9995] -- ARGS

Exit codes: 0 thresholds met, 1 a threshold failed, 2 bad usage, 3 a program
failed or an image could not be read.
"""

from __future__ import annotations

import argparse
import math
import sys

from ..errors import EXIT_FILE, EXIT_OK, EXIT_USAGE

# nb-compare's own meaning of 1: the comparison ran and a threshold failed
EXIT_FAILED = 1
EXIT_ERROR = EXIT_FILE  # a program failed or an image could not be read


def _parser() -> argparse.ArgumentParser:
    from ..compare import DEFAULT_MIN_CORR, DEFAULT_TOP_N

    p = argparse.ArgumentParser(
        prog="nb-compare",
        usage="nb-compare [options] -- ARGS (nanoBragg's command line)",
        description="Run nanoBragg.c and nanobragg-nb on the same command line; print and "
                    "save (summary.json, PNGs) how far apart their float images are.")
    p.add_argument("--outdir", default="nb_compare", help="where summary.json and PNGs go "
                   "(default: nb_compare)")
    p.add_argument("--roi", nargs=4, type=int, metavar=("XMIN", "XMAX", "YMIN", "YMAX"),
                   help="passed to both programs as -roi (inclusive, x fast, y slow); "
                        "the numbers cover only this region")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--c-bin", help="nanoBragg.c executable (default: $NB_C_BIN)")
    src.add_argument("--c-image", help="C's saved float image instead of running C")
    p.add_argument("--c-trace", help="C's saved TRACE_C lines (instrumented nanoBragg.c)")
    p.add_argument("--trace", nargs=2, type=int, metavar=("S", "F"),
                   help="also trace pixel (slow S, fast F) and report the first diverging "
                        "quantity")
    p.add_argument("--c-parity", action="store_true",
                   help="pass -c_parity to nanobragg-nb (C's stale φ=0 rotation)")
    p.add_argument("--min-corr", type=float, default=DEFAULT_MIN_CORR,
                   help=f"fail (exit 1) below this correlation (default {DEFAULT_MIN_CORR})")
    p.add_argument("--peaks", type=int, default=DEFAULT_TOP_N,
                   help=f"peaks per image for the peak distance (default {DEFAULT_TOP_N})")
    p.add_argument("--no-png", action="store_true", help="do not write PNGs")
    return p


def _fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} s"


def report(summary: dict) -> list[str]:
    """The lines nb-compare prints for a summary from ``run_comparison``."""
    s = summary
    where = s["max_abs_diff_at"]
    region = "ROI {} {} {} {}".format(*s["roi"]) if s.get("roi") else "whole image"
    lines = [
        f"compared {s['pixels']} pixels ({region}); C from "
        + ("saved image " + s["c_image"] if s["c_source"] == "image" else "nanoBragg.c")
        + (", ours with -c_parity" if s["c_parity"] else ""),
        "inputs copied    " + (", ".join(s["inputs"]) or "none"),
        f"correlation      {s['correlation']:.9f}",
        f"sum ratio        {s['sum_ratio']:.9f}  (ours / C)",
        f"RMSE             {s['rmse']:.6g} photons",
        f"max |ours - C|   {s['max_abs_diff']:.6g} photons at slow {where[0]}, fast {where[1]}",
        f"peak distance    {s['peak_distance_px']:.3g} px  (mean over top {s['peaks']} peaks)",
        f"identical pixels {s['identical_pixels']} of {s['pixels']}",
        f"runtime C        {_fmt_s(s['c_runtime_s'])}",
        f"runtime ours     {_fmt_s(s['ours_runtime_s'])}"
        + (f"  (C / ours = {s['speedup']:.2f})" if s.get("speedup") else ""),
    ]
    t = s.get("trace")
    if t is not None:
        head = f"trace pixel      slow {t['pixel'][0]}, fast {t['pixel'][1]}: "
        if "note" in t:
            lines.append(head + f"{t['lines_ours']} TRACE_PY values; {t['note']}")
        else:
            first = t["first_divergence"]
            lines.append(head + f"{t['lines_ours']} values (C {t['lines_c']}), max relative "
                                f"error {t['max_rel_error']:.3g}")
            if first is None:
                lines.append(f"first divergence none above {t['tolerance']:g}")
            else:
                err = first["rel_error"]
                err_text = "-" if not math.isfinite(err) else f"{err:.3g}"
                lines.append(f"first divergence {first['key']} (line {first['index']}, "
                             f"{first['reason']}): ours {first['ours']}, C {first['c']}, "
                             f"relative error {err_text}")
    if s.get("png_note"):
        lines.append(s["png_note"])
    elif s.get("pngs"):
        lines.append("PNGs             " + ", ".join(s["pngs"]))
    verdict = "PASS" if s["passed"] else "FAIL"
    op = ">=" if s["passed"] else "<"
    lines.append(f"{verdict}: correlation {s['correlation']:.9f} {op} {s['min_corr']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    try:
        return _main(argv)
    except BrokenPipeError:  # `nb-compare --help | head`: the output was not wanted
        from .common import stdout_reader_gone

        stdout_reader_gone()
        return EXIT_OK


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        cut = argv.index("--")
        own, args = argv[:cut], argv[cut + 1:]
    else:
        own, args = argv, []
    parser = _parser()
    try:
        opts = parser.parse_args(own)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    if not args:
        sys.stderr.write("nb-compare: error: give nanoBragg's arguments after --\n")
        return EXIT_USAGE
    from ..compare import CompareError, run_comparison

    try:
        summary = run_comparison(args, c_bin=opts.c_bin, c_image=opts.c_image,
                                 c_trace=opts.c_trace,
                                 trace=tuple(opts.trace) if opts.trace else None,
                                 c_parity=opts.c_parity, outdir=opts.outdir, roi=opts.roi,
                                 min_corr=opts.min_corr, top_n=opts.peaks,
                                 pngs=not opts.no_png)
    except CompareError as exc:
        sys.stderr.write(f"nb-compare: error: {exc}\n")
        return EXIT_ERROR
    try:
        for line in report(summary):
            print(line)
        print(f"summary          {opts.outdir}/summary.json")
    except BrokenPipeError:  # `| head`: the verdict is still the exit code
        from .common import stdout_reader_gone

        stdout_reader_gone()
    return EXIT_OK if summary["passed"] else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
