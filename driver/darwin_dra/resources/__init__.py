"""The driver's ResourceSlices as pure functions of the hardware: no service, no API client.

The plugin publishes a node's chips with ``slices``, the controller a cluster's fabrics with
``fabric``, and the planner reads a topology file through the same builders, so this package
sits below all three (the import-linter contracts in pyproject.toml).
"""

API_VERSION = "resource.k8s.io/v1"  # what the builders write (and the controller's classes)
# The label on the objects the controller owns (its DeviceClasses and fabric slices).
OWNER_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "darwin-dra-controller"
