"""Generated from api/kubelet/dra-health/v1/api.proto."""
