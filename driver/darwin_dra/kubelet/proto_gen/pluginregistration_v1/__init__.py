"""Generated from api/kubelet/pluginregistration/v1/api.proto."""
