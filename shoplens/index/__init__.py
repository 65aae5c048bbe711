"""Index: the product store, vector indexes, the BM25 index, atomic generations."""
