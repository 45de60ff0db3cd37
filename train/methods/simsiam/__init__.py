"""SimSiam (Chen & He, CVPR 2021): `spec` (torch-free) and `method`."""
