"""DeepCluster (Caron, Bojanowski, Joulin & Douze, ECCV 2018): `spec` (torch-free),
`method` (the plug-in), `clustering` (the streamed PCA and the clustering step over
ranks) and `shard_index` (random access into the shards, for its per-epoch draws). Its
k-means, the FAISS and torch backends and the choice between them, is
`sslx.common.kmeans`, which the probe's cluster evaluation shares."""
