"""BYOL (Grill et al., NeurIPS 2020): `spec` (torch-free) and `method`."""
