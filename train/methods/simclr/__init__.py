"""SimCLR (Chen, Kornblith, Norouzi & Hinton, ICML 2020): `spec` (torch-free) and `method`."""
