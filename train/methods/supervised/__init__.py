"""Full supervision, the paper's reference row: `spec` (torch-free) and `method`."""
