"""Generated from api/kubelet/dra-health/v1alpha1/api.proto."""
