"""The one package that talks to the API server through the kubernetes client.

resource.k8s.io/v1 objects travel as plain dicts through the generic custom-objects API: the
Python client's models lag the v1 fields and would silently drop them on a round trip. Every
client error becomes NotFound, Conflict, Unavailable or KubeApiError (kubeapi.errors), so no
caller ever sees the client's types. One client class per caller, each adding to the one
below: Kube (the plugin), ControllerKube, FleetKube and PipelineKube.
"""

from darwin_dra.kubeapi.claims import ClaimSource, ClaimStatusUpdates
from darwin_dra.kubeapi.controller import LEASES_GROUP, ControllerKube, connect_controller
from darwin_dra.kubeapi.errors import (
    ConfigError,
    Conflict,
    KubeApiError,
    NotFound,
    Unavailable,
)
from darwin_dra.kubeapi.fleet import TEMPLATES, FleetKube, connect_fleet
from darwin_dra.kubeapi.kube import CLAIMS, CLASSES, GROUP, SLICES, VERSION, Kube, connect
from darwin_dra.kubeapi.pipelines import (
    PIPELINE_GROUP,
    PIPELINE_VERSION,
    PIPELINES,
    PipelineKube,
    connect_pipelines,
)

__all__ = [
    "CLAIMS",
    "CLASSES",
    "GROUP",
    "LEASES_GROUP",
    "PIPELINES",
    "PIPELINE_GROUP",
    "PIPELINE_VERSION",
    "SLICES",
    "TEMPLATES",
    "VERSION",
    "ClaimSource",
    "ClaimStatusUpdates",
    "ConfigError",
    "Conflict",
    "ControllerKube",
    "FleetKube",
    "Kube",
    "KubeApiError",
    "NotFound",
    "PipelineKube",
    "Unavailable",
    "connect",
    "connect_controller",
    "connect_fleet",
    "connect_pipelines",
]
