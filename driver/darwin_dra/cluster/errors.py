"""Errors of the local cluster: each names the part that failed and carries what explains it."""

from __future__ import annotations


class ClusterError(RuntimeError):
    """Base class: anything that stops the local cluster from coming up or going down."""


class ToolchainError(ClusterError):
    """No usable Go toolchain, or the Go module that pins the binaries is missing."""


class BuildError(ClusterError):
    """`go build` of the Kubernetes binaries failed; the message ends with its log tail."""


class ComponentError(ClusterError):
    """A component could not start, died, or did not become ready in time."""

    def __init__(self, component: str, reason: str, log_tail: str = "") -> None:
        self.component = component
        self.reason = reason
        self.log_tail = log_tail
        text = f"{component}: {reason}"
        if log_tail:
            text += f"\n--- last lines of the {component} log ---\n{log_tail}"
        super().__init__(text)


class PortInUseError(ComponentError):
    """The loopback port chosen for a component is already taken."""
