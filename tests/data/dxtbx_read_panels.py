"""Run by Debian's python3 with dxtbx (tests/test_readers.py): load an image file with
dxtbx's ExperimentListFactory (what dials.import does; an .expt/.json: the experiment
list with its images, check_format=True) and print (JSON) its beam, every
panel's global origin, fast and slow axes (mm), size, pixel size, the sum of its pixels
and the number of masked pixels dxtbx reports."""

import json
import sys

from dxtbx.model.experiment_list import ExperimentListFactory


def main(path):
    if path.endswith((".expt", ".json")):  # an experiment list: its models, its images read
        experiments = ExperimentListFactory.from_json_file(path, check_format=True)
    else:
        experiments = ExperimentListFactory.from_filenames([path])
    e = experiments[0]
    imageset = e.imageset
    data = imageset.get_raw_data(0)
    mask = imageset.get_mask(0)
    print(json.dumps({
        "s0": e.beam.get_s0(), "wavelength": e.beam.get_wavelength(),
        "panels": [{"name": p.get_name(), "origin": p.get_origin(),
                    "fast": p.get_fast_axis(), "slow": p.get_slow_axis(),
                    "size": p.get_image_size(), "pixel": p.get_pixel_size(),
                    "sum": float(sum(data[i].as_double())),
                    "masked": int(mask[i].count(False))}
                   for i, p in enumerate(e.detector)],
    }))


if __name__ == "__main__":
    main(sys.argv[1])
