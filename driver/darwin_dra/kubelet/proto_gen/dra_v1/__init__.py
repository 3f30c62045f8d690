"""Generated from api/kubelet/dra/v1/api.proto."""
