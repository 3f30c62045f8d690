"""A local Kubernetes control plane built from the upstream Go modules, for tests and the demo."""
