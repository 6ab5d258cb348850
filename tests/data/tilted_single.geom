; a single tilted panel (see make_geoms.py)
photon_energy = 12000
clen = 0.25

panel0/min_fs = 0
panel0/max_fs = 239
panel0/min_ss = 0
panel0/max_ss = 194
panel0/res = 5813.953488372093
panel0/fs = +0.866025403784439x +0.043577871373829y -0.498097349045873z
panel0/ss = +0.000000000000000x +0.996194698091746y +0.087155742747658z
panel0/corner_x = -40.25
panel0/corner_y = -97.5
panel0/coffset = 0.0125
panel0/adu_per_photon = 1
