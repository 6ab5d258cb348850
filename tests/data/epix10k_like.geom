; ePix10k-like test geometry (see make_geoms.py)
photon_energy = 8500
clen = 0.09
res = 10000
adu_per_eV = 0.0125
data = /data/data

p0a0/min_fs = 0
p0a0/max_fs = 191
p0a0/min_ss = 0
p0a0/max_ss = 175
p0a0/fs = -x
p0a0/ss = -y
p0a0/corner_x = 193.6200
p0a0/corner_y = 177.0400
p0a0/coffset = 0.0

p0a1/min_fs = 192
p0a1/max_fs = 383
p0a1/min_ss = 0
p0a1/max_ss = 175
p0a1/fs = -x
p0a1/ss = -y
p0a1/corner_x = -0.8800
p0a1/corner_y = 177.0400
p0a1/coffset = 0.0

p0a2/min_fs = 0
p0a2/max_fs = 191
p0a2/min_ss = 176
p0a2/max_ss = 351
p0a2/fs = -x
p0a2/ss = -y
p0a2/corner_x = 193.6200
p0a2/corner_y = -1.4600
p0a2/coffset = 0.0

p0a3/min_fs = 192
p0a3/max_fs = 383
p0a3/min_ss = 176
p0a3/max_ss = 351
p0a3/fs = -x
p0a3/ss = -y
p0a3/corner_x = -0.8800
p0a3/corner_y = -1.4600
p0a3/coffset = 0.0

p0a3/mask_edge_pixels = 1

badrow/min_fs = 10
badrow/max_fs = 20
badrow/min_ss = 200
badrow/max_ss = 201
badrow/panel = p0a2

badcentre/min_x = -3
badcentre/max_x = 3
badcentre/min_y = -3
badcentre/max_y = 3
