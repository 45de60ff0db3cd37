"""RotNet (Gidaris, Singh & Komodakis, ICLR 2018): `spec` (torch-free) and `method`."""
