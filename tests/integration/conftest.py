"""Real local clusters for the whole session, started by the same launcher as
`darwin-dra cluster up`, and per-test namespaces and cleanup.

`real_cluster`: two real nodes (kubelet, containerd, runc; pods run). `cluster`: two harness
nodes, for the tests of the kubelet's DRA protocol that need no containers (see
docs/testing.md, "Where the harness is still used")."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import k8s_helpers
import pytest
from darwin_dra.cluster import build, launcher
from kubernetes import client, config

NODES = 2
# How much of each node's kubelet and containerd log a failed test's report carries.
LOG_TAIL_LINES = 60


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[Any]:
    """A failed cluster test says what the cluster saw: the namespace's pods and events, and the
    tail of the node logs. CI keeps only the report, not the cluster's log directory."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    for kube_arg, ns_arg, cluster_arg in (
        ("real_kube", "real_namespace", "real_cluster"),
        ("kube", "namespace", "cluster"),
    ):
        if ns_arg in funcargs and kube_arg in funcargs:
            text = k8s_helpers.describe_namespace(funcargs[kube_arg], funcargs[ns_arg])
            report.sections.append((f"cluster: namespace {funcargs[ns_arg]}", text))
        if cluster_arg in funcargs:
            logs = Path(funcargs[cluster_arg].config.directory) / "logs"
            for log in sorted(logs.glob("*.log")):
                if log.name.startswith(("kubelet", "containerd", "kube-scheduler")):
                    tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                    report.sections.append((f"cluster: {log.name} (tail)", "\n".join(tail)))


def _session_cluster(
    request: pytest.FixtureRequest, kind: launcher.NodeKind
) -> Iterator[launcher.LocalCluster]:
    # Short path: the plugin sockets below it must fit in a unix socket address (108 bytes).
    directory = Path(tempfile.mkdtemp(prefix=f"dra-{kind[0]}-"))
    binaries = build.ensure_binaries()
    config = launcher.ClusterConfig(directory, nodes=NODES, node_kind=kind)
    local = launcher.LocalCluster(config, binaries)
    local.up()
    try:
        yield local
    finally:
        local.down()
        if request.session.testsfailed:
            print(f"\nlocal cluster logs kept in {directory / 'logs'}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[launcher.LocalCluster]:
    yield from _session_cluster(request, "harness")


@pytest.fixture(scope="session")
def real_cluster(request: pytest.FixtureRequest) -> Iterator[launcher.LocalCluster]:
    yield from _session_cluster(request, "real")


@pytest.fixture(scope="session")
def real_api(real_cluster: launcher.LocalCluster) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(real_cluster.kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def real_kube(real_api: client.ApiClient, test_id: str) -> Iterator[k8s_helpers.Kube]:
    helper = k8s_helpers.Kube(real_api, {"darwin.snn.io/test": test_id})
    try:
        yield helper
    finally:
        helper.cleanup()


@pytest.fixture
def real_namespace(real_kube: k8s_helpers.Kube, test_id: str) -> Iterator[str]:
    yield from _namespace(real_kube, test_id)


@pytest.fixture(scope="session")
def api(cluster: launcher.LocalCluster) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def kube(api: client.ApiClient, test_id: str) -> Iterator[k8s_helpers.Kube]:
    helper = k8s_helpers.Kube(api, {"darwin.snn.io/test": test_id})
    try:
        yield helper
    finally:
        helper.cleanup()


@pytest.fixture
def namespace(kube: k8s_helpers.Kube, test_id: str) -> Iterator[str]:
    yield from _namespace(kube, test_id)


def _namespace(kube: k8s_helpers.Kube, test_id: str) -> Iterator[str]:
    name = f"t-{test_id}"
    kube.core.create_namespace({"metadata": {"name": name}})

    def has_default_sa() -> bool:
        return any(
            sa.metadata.name == "default"
            for sa in kube.core.list_namespaced_service_account(name).items
        )

    k8s_helpers.wait_for("the default service account", has_default_sa, timeout=30)
    try:
        yield name
    finally:
        kube.core.delete_namespace(name)


@pytest.fixture
def driver(test_id: str) -> str:
    """A driver name of its own per test, so that tests never allocate each other's devices."""
    return f"t{test_id}.test.snn.io"


@pytest.fixture
def nodes(cluster: launcher.LocalCluster) -> list[str]:
    assert cluster.state is not None
    return [n.name for n in cluster.state.nodes]
