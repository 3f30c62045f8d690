"""Generated from api/kubelet/dra/v1beta1/api.proto."""
