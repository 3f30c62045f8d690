"""The plugin's gRPC face towards the kubelet: registration, DRA node service, health stream.

Thin on purpose: every decision lives in darwin_dra.plugin; these modules translate between
protobuf messages and plain Python values.
"""
