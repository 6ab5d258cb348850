"""Writes the CrystFEL test geometries in this folder (run once; the .geom files are kept).

(Plain numbers for clen and photon_energy: cfel_fmt, which extra-geom uses, reads no units.)
Layouts follow public descriptions, not any facility's calibration:
- jungfrau4m_like.geom: 8 JUNGFRAU modules (512 x 1024 pixels of 75 um read out as 8 ASICs
  of 256 x 256, 2-pixel gaps between ASICs), two columns of four, the right-hand column
  turned by 180 degrees; small in-plane rotations, two modules tilted out of plane.
- epix10k_like.geom: one ePix10k module, 4 ASICs of 176 x 192 pixels of 100 um (2 x 2),
  read as one 352 x 384 array, fs along -x and ss along -y, a gap between ASICs; a bad
  region, mask_edge_pixels and adu_per_eV.
- tilted_single.geom: one 195 x 240 panel of 172 um turned 30 degrees about +y and
  5 degrees about +x (with a coffset).
"""

import math
from pathlib import Path

HERE = Path(__file__).parent


def f(x):
    return f"{x:+.15f}"


def rot(axis, deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    if axis == "x":
        return [[1, 0, 0], [0, c, -s], [0, s, c]]
    if axis == "y":
        return [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    return [[c, -s, 0], [s, c, 0], [0, 0, 1]]


def mul(a, v):
    return [sum(a[i][k] * v[k] for k in range(3)) for i in range(3)]


def vec(v):
    return " ".join(f"{f(c)}{n}" for c, n in zip(v, "xyz", strict=True))


def jungfrau():
    lines = ["; JUNGFRAU-4M-like test geometry (see make_geoms.py)", "res = 13333.3333333333",
             "clen = 0.12", "photon_energy = 9300", "adu_per_photon = 1.0",
             "data = /data/data", "dim0 = ss", "dim1 = fs", ""]
    for m in range(8):
        col, row = divmod(m, 4)
        inplane = [0.0, 0.3, -0.2, 0.1, 0.0, -0.4, 0.25, 0.0][m]
        tilt = {2: ("x", 1.5), 5: ("y", -2.0)}.get(m)
        R = rot("z", inplane + (180.0 if col else 0.0))
        if tilt:
            R = [[sum(rot(*tilt)[i][k] * R[k][j] for k in range(3)) for j in range(3)]
                 for i in range(3)]
        fs = mul(R, [-1.0, 0.0, 0.0])
        ss = mul(R, [0.0, -1.0, 0.0])
        # module centre (pixels): columns at x = +-560, rows 550 apart
        cx = 560.0 if col == 0 else -560.0
        cy = (1.5 - row) * 550.0 + [0, 3, -2, 1, -1, 2, 0, -3][m]
        mod_corner = [cx - 0.5 * (1030 * fs[0] + 514 * ss[0]),
                      cy - 0.5 * (1030 * fs[1] + 514 * ss[1])]
        for a in range(8):
            r, c = divmod(a, 4)
            off = [c * 258 * fs[i] + r * 258 * ss[i] for i in range(2)]
            name = f"p{m}a{a}"
            lines += [f"{name}/min_fs = {c * 256}", f"{name}/max_fs = {c * 256 + 255}",
                      f"{name}/min_ss = {m * 512 + r * 256}",
                      f"{name}/max_ss = {m * 512 + r * 256 + 255}",
                      f"{name}/fs = {vec(fs)}", f"{name}/ss = {vec(ss)}",
                      f"{name}/corner_x = {mod_corner[0] + off[0]:.10f}",
                      f"{name}/corner_y = {mod_corner[1] + off[1]:.10f}",
                      f"{name}/coffset = {0.0005 * (m % 3):.6f}", ""]
    lines += ["rigid_group_q0 = " + ",".join(f"p0a{a}" for a in range(8)), ""]
    (HERE / "jungfrau4m_like.geom").write_text("\n".join(lines))


def epix():
    lines = ["; ePix10k-like test geometry (see make_geoms.py)", "photon_energy = 8500",
             "clen = 0.09", "res = 10000", "adu_per_eV = 0.0125", "data = /data/data", ""]
    gap = 2.5  # pixels between ASICs
    for a in range(4):
        row, col = divmod(a, 2)
        name = f"p0a{a}"
        cx = 192 - col * (192 + gap) + gap / 2 + 0.37
        cy = 176 - row * (176 + gap) + gap / 2 - 0.21
        lines += [f"{name}/min_fs = {col * 192}", f"{name}/max_fs = {col * 192 + 191}",
                  f"{name}/min_ss = {row * 176}", f"{name}/max_ss = {row * 176 + 175}",
                  f"{name}/fs = -x", f"{name}/ss = -y", f"{name}/corner_x = {cx:.4f}",
                  f"{name}/corner_y = {cy:.4f}", f"{name}/coffset = 0.0", ""]
    lines += ["p0a3/mask_edge_pixels = 1", "",
              "badrow/min_fs = 10", "badrow/max_fs = 20", "badrow/min_ss = 200",
              "badrow/max_ss = 201", "badrow/panel = p0a2", "",
              "badcentre/min_x = -3", "badcentre/max_x = 3", "badcentre/min_y = -3",
              "badcentre/max_y = 3", ""]
    (HERE / "epix10k_like.geom").write_text("\n".join(lines))


def tilted():
    R = [[sum(rot("x", 5.0)[i][k] * rot("y", 30.0)[k][j] for k in range(3)) for j in range(3)]
         for i in range(3)]
    fs, ss = mul(R, [1.0, 0.0, 0.0]), mul(R, [0.0, 1.0, 0.0])
    lines = ["; a single tilted panel (see make_geoms.py)", "photon_energy = 12000",
             "clen = 0.25", "",
             "panel0/min_fs = 0", "panel0/max_fs = 239", "panel0/min_ss = 0",
             "panel0/max_ss = 194", "panel0/res = 5813.953488372093",
             f"panel0/fs = {vec(fs)}", f"panel0/ss = {vec(ss)}",
             "panel0/corner_x = -40.25", "panel0/corner_y = -97.5",
             "panel0/coffset = 0.0125", "panel0/adu_per_photon = 1", ""]
    (HERE / "tilted_single.geom").write_text("\n".join(lines))


if __name__ == "__main__":
    jungfrau()
    epix()
    tilted()
