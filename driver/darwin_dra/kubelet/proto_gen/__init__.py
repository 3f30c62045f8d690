"""Generated gRPC modules of the kubelet APIs."""
