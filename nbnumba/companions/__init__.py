"""nanoBragg.c's companion programs from bl831/nanoBragg: nonBragg.c and noisify.c."""
