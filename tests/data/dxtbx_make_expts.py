"""Run by Debian's python3 with dxtbx (tests/test_readers.py): make experiment lists with
dxtbx's own model constructors, write them with ExperimentList.as_file, load them back
with ExperimentListFactory and print (JSON) what dxtbx computes from them.

- PREFIX_multi.expt: a two-level hierarchy (root moved to 150 mm; two tilted, rotated
  groups; two panels each, one tilted) on a kappa goniometer, a tilted beam.
- PREFIX_single.expt: one "+x"/"-y" panel, a goniometer with a setting rotation.

Printed: each panel's global origin, fast, slow, size, pixel size and the lab position of
pixel coordinate (2.5, 3.5); s0, wavelength, rotation axis (S.axis), the crystal's real
space vectors at the datum (S.F.a...), the scan's oscillation and image range.
"""

import json
import math
import sys

from dxtbx.model import (
    BeamFactory,
    Crystal,
    Detector,
    Experiment,
    ExperimentList,
    GoniometerFactory,
    ScanFactory,
)
from dxtbx.model.detector import DetectorFactory
from dxtbx.model.experiment_list import ExperimentListFactory
from scitbx import matrix


def multi_panel():
    det = Detector()
    root = det.hierarchy()
    root.set_local_frame((1, 0, 0), (0, 1, 0), (0, 0, -150.0))
    for q in range(2):
        g = root.add_group()
        g.set_name(f"q{q}")
        a = math.radians(90 * q + 3)
        g.set_local_frame((math.cos(a), math.sin(a), 0.0), (-math.sin(a), math.cos(a), 0.02),
                          (10.0 * q, -5.0, 1.5 * q))
        for m in range(2):
            p = g.add_panel()
            p.set_name(f"q{q}m{m}")
            p.set_image_size((40, 30))
            p.set_pixel_size((0.075, 0.075))
            p.set_thickness(0.45)
            p.set_material("Si")
            p.set_local_frame((1, 0, 0.01 * m), (0, -1, 0), (-20.0 + 25 * m, 30.0, 0.3 * m))
    return det


def main(prefix):
    beam = BeamFactory.simple_directional((0.01, -0.02, 1.0), 0.9793)
    beam.set_polarization_normal((0, 1, 0))
    beam.set_polarization_fraction(0.99)
    kappa = GoniometerFactory.make_kappa_goniometer(50, 10, 20, 30, "-y", "omega")
    scan = ScanFactory.make_scan((1, 5), 0.5, (10.0, 0.2), {i: 0.1 * i for i in range(1, 6)})
    xtal = Crystal((30.0, 1.0, 2.0), (-1.5, 40.0, 0.5), (0.3, -0.7, 55.0),
                   space_group_symbol="P 1")
    ExperimentList([Experiment(beam=beam, detector=multi_panel(), goniometer=kappa,
                               scan=scan, crystal=xtal)]).as_file(prefix + "_multi.expt")
    single = DetectorFactory.simple("PAD", 200.0, (30.0, 40.0), "+x", "-y", (0.172, 0.172),
                                    (487, 619), (0, 1e6))
    gonio = GoniometerFactory.make_goniometer((1, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    setting = matrix.col((0, 1, 0)).axis_and_angle_as_r3_rotation_matrix(5, deg=True)
    gonio.set_setting_rotation(setting.elems)
    ExperimentList([Experiment(beam=BeamFactory.simple(1.2), detector=single,
                               goniometer=gonio, scan=scan, crystal=xtal)]
                   ).as_file(prefix + "_single.expt")
    res = {}
    for name in ("multi", "single"):
        e = ExperimentListFactory.from_json_file(prefix + f"_{name}.expt",
                                                 check_format=False)[0]
        S = matrix.sqr(e.goniometer.get_setting_rotation())
        F = matrix.sqr(e.goniometer.get_fixed_rotation())
        abc = [tuple(S * F * matrix.col(v)) for v in e.crystal.get_real_space_vectors()]
        res[name] = {
            "panels": [{"name": p.get_name(), "origin": p.get_origin(),
                        "fast": p.get_fast_axis(), "slow": p.get_slow_axis(),
                        "size": p.get_image_size(), "pixel": p.get_pixel_size(),
                        "centre": p.get_pixel_lab_coord((2.5, 3.5))} for p in e.detector],
            "s0": e.beam.get_s0(), "wavelength": e.beam.get_wavelength(),
            "axis": e.goniometer.get_rotation_axis(), "abc": abc,
            "osc": e.scan.get_oscillation(), "image_range": e.scan.get_image_range(),
            "pn": e.beam.get_polarization_normal(),
        }
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1])
