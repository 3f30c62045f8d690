"""Darwin DRA: a Kubernetes DRA driver for Darwin-class neuromorphic chips."""

__version__ = "0.1.0"
DRIVER_NAME = "darwin.snn.io"
