"""The workload side of a partition: the SpikePort gRPC service and the stage runtime."""
