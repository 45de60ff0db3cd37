"""DINO (Caron et al., ICCV 2021): `spec` (torch-free) and `method`."""
