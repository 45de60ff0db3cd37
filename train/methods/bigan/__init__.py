"""BiGAN (Donahue, Krähenbühl & Darrell, ICLR 2017): `spec` (torch-free), `method` (the
plug-in and its losses), `nets` (G and the joint D) and `pictures` (sample grids)."""
