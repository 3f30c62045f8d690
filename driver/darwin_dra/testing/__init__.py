"""What the tests and the benchmarks share in place of the API server where none is wanted:
each piece keeps the real contract (kubeapi's), only the storage is in memory."""
