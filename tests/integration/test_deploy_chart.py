"""The Helm chart against the real API server: every rendered object passes a server-side dry
run, and both admission policies do what they claim."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from darwin_dra import schema
from darwin_dra.cluster import launcher
from darwin_dra.plugin import config
from k8s_helpers import Kube, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
import helm_chart

pytestmark = pytest.mark.integration


class Kubectl:
    def __init__(self, kubeconfig: Path) -> None:
        path = shutil.which("kubectl")
        if path is None:
            raise AssertionError("kubectl is not on PATH")
        self.base = [path, f"--kubeconfig={kubeconfig}"]

    def run(
        self,
        *args: str,
        stdin: str = "",
        check: bool = True,
        token: str | None = None,
        server: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        base = self.base
        if token is not None:
            # Another identity: no kubeconfig credentials at all, only the bearer token.
            base = [
                base[0],
                "--kubeconfig=/dev/null",
                f"--server={server}",
                "--insecure-skip-tls-verify",
                f"--token={token}",
            ]
        proc = subprocess.run(
            [*base, *args], input=stdin, capture_output=True, text=True, timeout=60
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture
def kubectl(cluster: launcher.LocalCluster) -> Kubectl:
    return Kubectl(cluster.kubeconfig)


@pytest.fixture
def release(kube: Kube, test_id: str, kubectl: Kubectl) -> Iterator[tuple[str, str]]:
    """(release name, namespace) with the namespace made; cluster-scoped chart objects of the
    release are removed afterwards."""
    name, namespace = f"r{test_id}", f"darwin-{test_id}"
    kube.core.create_namespace({"metadata": {"name": namespace}})
    try:
        yield name, namespace
    finally:
        rendered = helm_chart.render_text(namespace, None, release=name)
        kubectl.run(
            "delete", "--ignore-not-found", "--wait=false", "-f", "-", stdin=rendered, check=False
        )
        kube.core.delete_namespace(namespace)


def _only(rendered: str, kinds: set[str]) -> str:
    import yaml

    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in kinds]
    return yaml.safe_dump_all(docs)


@pytest.mark.parametrize(
    "sets", [(), ("controller.deviceClasses=false",)], ids=["default", "chart-classes"]
)
def test_every_rendered_object_passes_a_server_side_dry_run(
    kubectl: Kubectl, release: tuple[str, str], sets: tuple[str, ...]
) -> None:
    name, namespace = release
    rendered = helm_chart.render_text(namespace, None, *sets, release=name)
    out = kubectl.run("apply", "--dry-run=server", "-o", "json", "-f", "-", stdin=rendered).stdout
    accepted = json.loads(out)
    items: list[dict[str, Any]] = (
        accepted["items"] if accepted.get("kind") == "List" else [accepted]
    )
    assert sorted(o["kind"] for o in items) == sorted(
        d["kind"] for d in helm_chart.render(namespace, None, *sets, release=name)
    )


def _apply_policies(kubectl: Kubectl, name: str, namespace: str) -> None:
    rendered = helm_chart.render_text(namespace, None, release=name)
    kubectl.run(
        "apply",
        "-f",
        "-",
        stdin=_only(
            rendered,
            {
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
            },
        ),
    )


def _slice(name: str, node: str) -> str:
    return json.dumps(
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceSlice",
            "metadata": {"name": name},
            "spec": {
                "driver": "darwin.snn.io",
                "nodeName": node,
                "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                "devices": [{"name": "probe"}],
            },
        }
    )


def _plugin_token(kube: Kube, kubectl: Kubectl, name: str, namespace: str, node: str) -> str:
    """The token a plugin pod on ``node`` holds: bound to the pod, so it names the node."""
    account = f"{name}-kubelet-plugin"
    kube.core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "plugin"},
            "spec": {
                "nodeName": node,
                "serviceAccountName": account,
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "c", "image": "registry.invalid/darwin:none"}],
            },
        },
    )
    uid = kube.core.read_namespaced_pod("plugin", namespace).metadata.uid
    return kubectl.run(
        "create",
        "token",
        account,
        "-n",
        namespace,
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "plugin",
        "--bound-object-uid",
        uid,
    ).stdout.strip()


def test_a_plugin_may_write_only_the_slices_of_its_own_node(
    kube: Kube,
    kubectl: Kubectl,
    release: tuple[str, str],
    nodes: list[str],
    cluster: launcher.LocalCluster,
    test_id: str,
) -> None:
    name, namespace = release
    _apply_policies(kubectl, name, namespace)
    token = _plugin_token(kube, kubectl, name, namespace, nodes[0])
    assert cluster.state is not None
    server = cluster.state.server
    own, other = f"t{test_id}-own", f"t{test_id}-other"
    try:

        def denied() -> str | None:
            # The policy takes effect a moment after it is created.
            proc = kubectl.run(
                "create",
                "--dry-run=server",
                "-f",
                "-",
                stdin=_slice(other, nodes[1]),
                token=token,
                server=server,
                check=False,
            )
            return proc.stderr if proc.returncode != 0 else None

        message = wait_for("the node-restriction policy to deny", denied, timeout=30)
        expected = f"plugin on node {nodes[0]} may not write the ResourceSlices of node {nodes[1]}"
        assert expected in message
        kubectl.run("create", "-f", "-", stdin=_slice(own, nodes[0]), token=token, server=server)
        kubectl.run("delete", "resourceslice", own, token=token, server=server)
        # Others (here: the admin) are not restricted by it.
        kubectl.run("create", "--dry-run=server", "-f", "-", stdin=_slice(other, nodes[1]))
    finally:
        kubectl.run("delete", "resourceslice", own, other, "--ignore-not-found", check=False)


def _allocated_claim(name: str, node: str) -> dict[str, Any]:
    """A claim allocated on ``node``: the node selector form the scheduler writes."""
    result = {"request": "r", "driver": "darwin.snn.io", "pool": node, "device": "chip-0"}
    return {
        "allocation": {
            "devices": {"results": [result]},
            "nodeSelector": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                ]
            },
        }
    }


def test_a_plugin_may_write_the_device_status_only_of_claims_on_its_own_node(
    kube: Kube,
    kubectl: Kubectl,
    release: tuple[str, str],
    nodes: list[str],
    cluster: launcher.LocalCluster,
) -> None:
    name, namespace = release
    _apply_policies(kubectl, name, namespace)
    token = _plugin_token(kube, kubectl, name, namespace, nodes[0])
    assert cluster.state is not None
    server = cluster.state.server
    for claim, node in (("own", nodes[0]), ("other", nodes[1])):
        body = {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": claim},
            "spec": {
                "devices": {
                    "requests": [{"name": "r", "exactly": {"deviceClassName": "darwin.snn.io"}}]
                }
            },
        }
        kubectl.run("create", "-n", namespace, "-f", "-", stdin=json.dumps(body))
        # The admin plays the scheduler here: only the plugin's identity is under test.
        patch = json.dumps({"status": _allocated_claim(claim, node)})
        kubectl.run(
            "patch",
            "resourceclaim",
            claim,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            patch,
        )

    def write_devices(claim: str, node: str) -> subprocess.CompletedProcess[str]:
        # As the plugin does: a PUT of the status with the claim it has just read.
        body = kube.custom.get_namespaced_custom_object(
            "resource.k8s.io", "v1", namespace, "resourceclaims", claim
        )
        body["status"]["devices"] = [
            {"driver": "darwin.snn.io", "pool": node, "device": "chip-0", "data": {"a": 1}}
        ]
        return kubectl.run(
            "replace",
            "-n",
            namespace,
            "--subresource=status",
            "-f",
            "-",
            stdin=json.dumps(body),
            token=token,
            server=server,
            check=False,
        )

    mine = write_devices("own", nodes[0])
    assert mine.returncode == 0, mine.stderr
    theirs = write_devices("other", nodes[1])
    assert theirs.returncode != 0
    assert 'requires resource="resourceclaims/driver"' in theirs.stderr
    devices = kube.custom.get_namespaced_custom_object(
        "resource.k8s.io", "v1", namespace, "resourceclaims", "other"
    )["status"].get("devices")
    assert not devices, "the refused write left device status behind"


def _claim(parameters: Any) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "cfg"},
        "spec": {
            "devices": {
                "requests": [{"name": "r", "exactly": {"deviceClassName": "darwin.snn.io"}}],
                "config": [
                    {"opaque": {"driver": "other.example.com", "parameters": {"anything": 1}}},
                    {
                        "requests": ["r"],
                        "opaque": {"driver": "darwin.snn.io", "parameters": parameters},
                    },
                ],
            }
        },
    }


def _config(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "darwin.snn.io/v1alpha1", "kind": "PartitionConfig", **fields}


# The policy's CEL is generated from the schema (deploy/helm/generate_opaque_config_policy.py):
# the API server must name the same field with the same words as the plugin's validator.
BAD_CONFIGS = [
    _config(timestepUs=5),
    _config(timestepUs="100"),
    _config(timestepUs=100.5),
    _config(routingMode="zigzag"),
    _config(learning="yes"),
    _config(spikeEncoding="aer"),  # removed knobs (issue 10): the schema refuses them
    _config(isolation="strict"),
    _config(colour="blue", zebra=1),
    {"apiVersion": "darwin.snn.io/v2", "kind": "PartitionConfig"},
    {"apiVersion": "darwin.snn.io/v1alpha1", "kind": "Other"},
    {"kind": "PartitionConfig"},
]


@pytest.mark.parametrize("parameters", BAD_CONFIGS, ids=lambda p: json.dumps(p, sort_keys=True))
def test_invalid_opaque_config_is_refused_at_admission_naming_the_field(
    kube: Kube, kubectl: Kubectl, release: tuple[str, str], parameters: Any
) -> None:
    problem = schema.first_problem(
        config.SCHEMA_FILE, parameters, "spec.devices.config[1].opaque.parameters"
    )
    assert problem is not None
    with pytest.raises(config.ConfigError) as plugin:
        config.parse_partition_config(parameters, "spec.devices.config[1].opaque.parameters")
    assert str(plugin.value).startswith(f"{problem.field}: {problem.rule}")
    message = f"{problem.field}: {problem.rule}"
    name, namespace = release
    _apply_policies(kubectl, name, namespace)

    def refused() -> str | None:
        proc = kubectl.run(
            "create",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            "-",
            stdin=json.dumps(_claim(parameters)),
            check=False,
        )
        return proc.stderr if proc.returncode != 0 else None

    error = wait_for("the opaque-config policy to refuse", refused, timeout=30)
    assert "invalid darwin.snn.io PartitionConfig" in error
    assert message in error


def test_valid_config_passes_and_templates_and_classes_are_checked_too(
    kube: Kube, kubectl: Kubectl, release: tuple[str, str], test_id: str
) -> None:
    name, namespace = release
    _apply_policies(kubectl, name, namespace)
    bad = _config(timestepUs=0)
    template = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "t"},
        "spec": {"spec": _claim(bad)["spec"]},
    }
    cls = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": f"t{test_id}.snn.io"},
        "spec": {"config": [{"opaque": {"driver": "darwin.snn.io", "parameters": bad}}]},
    }

    def refused(obj: dict[str, Any]) -> str | None:
        proc = kubectl.run(
            "create",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            "-",
            stdin=json.dumps(obj),
            check=False,
        )
        return proc.stderr if proc.returncode != 0 else None

    assert "spec.spec.devices.config[1].opaque.parameters.timestepUs" in wait_for(
        "the template to be refused", lambda: refused(template), timeout=30
    )
    assert "spec.config[0].opaque.parameters.timestepUs" in wait_for(
        "the class to be refused", lambda: refused(cls), timeout=30
    )
    # Integral JSON numbers written as 100.0 are integers to the plugin's parser too.
    good = _config(timestepUs=100.0, routingMode="multicast-tree", learning=True)
    config.parse_partition_config(good)  # the plugin takes it too
    kubectl.run(
        "create", "--dry-run=server", "-n", namespace, "-f", "-", stdin=json.dumps(_claim(good))
    )


def test_the_api_server_itself_refuses_parameters_that_are_not_an_object(
    kubectl: Kubectl, release: tuple[str, str]
) -> None:
    # No policy needed: resource.k8s.io validation already demands a JSON object.
    _, namespace = release
    proc = kubectl.run(
        "create",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=json.dumps(_claim(["not", "an", "object"])),
        check=False,
    )
    assert proc.returncode != 0
    assert "must be a valid JSON object" in proc.stderr


# What each service account of the chart may do, beyond what every account may (the baseline
# is measured on a fresh account of the same namespace). {release}: the release name.
ALLOWED: dict[str, set[tuple[str, str, str]]] = {
    "kubelet-plugin": {
        ("resourceslices.resource.k8s.io", "[]", "[get list watch create update delete]"),
        # list and watch: the claims whose chip router waits on routes (plugin/earlyprep.py)
        ("resourceclaims.resource.k8s.io", "[]", "[get list watch]"),
        ("resourceclaims.resource.k8s.io/status", "[]", "[update patch]"),
        (
            "resourceclaims.resource.k8s.io/driver",
            "[darwin.snn.io]",
            "[associated-node:update associated-node:patch]",
        ),
        ("deviceclasses.resource.k8s.io", "[]", "[get]"),
        ("nodes", "[]", "[get]"),
    },
    "controller": {
        ("deviceclasses.resource.k8s.io", "[]", "[get list watch create update delete]"),
        ("resourceslices.resource.k8s.io", "[]", "[get list watch create update delete]"),
        # create and delete: the claims of SpikingPipelines' stages (controller.pipelines)
        # (no claim status: the plugins write the routers' binding conditions)
        ("resourceclaims.resource.k8s.io", "[]", "[get list watch create delete]"),
        ("nodes", "[]", "[list]"),
        ("spikingpipelines.darwin.snn.io", "[]", "[get list watch]"),
        ("spikingpipelines.darwin.snn.io/status", "[]", "[patch]"),
        ("spikingpipelines.darwin.snn.io/finalizers", "[]", "[update]"),
        ("pods", "[]", "[get list watch create delete]"),
        ("pods/log", "[]", "[get]"),
        ("configmaps", "[]", "[get create update]"),
        ("secrets", "[]", "[create delete]"),  # the stages' TLS: written, never read
        ("leases.coordination.k8s.io", "[]", "[create]"),
        ("leases.coordination.k8s.io", "[{release}-controller]", "[get update]"),
    },
}


def _can_i(kubectl: Kubectl, namespace: str, account: str) -> set[tuple[str, str, str]]:
    out = kubectl.run(
        "auth",
        "can-i",
        "--list",
        "-n",
        namespace,
        f"--as=system:serviceaccount:{namespace}:{account}",
    ).stdout
    rows = set()
    for line in out.splitlines()[1:]:
        match = re.match(r"^(\S+)\s+\[[^\]]*\]\s+(\[[^\]]*\])\s+(\[.*\])\s*$", line)
        if match:  # rows without a resource are non-resource URLs, granted to everyone
            rows.add((match[1], match[2], match[3]))
    return rows


@pytest.mark.parametrize("account", sorted(ALLOWED))
def test_each_service_account_may_do_exactly_what_its_table_says(
    kube: Kube, kubectl: Kubectl, release: tuple[str, str], account: str
) -> None:
    name, namespace = release
    _apply_policies(kubectl, name, namespace)
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": "baseline"}})
    baseline = _can_i(kubectl, namespace, "baseline")
    granted = _can_i(kubectl, namespace, f"{name}-{account}") - baseline
    expected = {(r, names.format(release=name), verbs) for r, names, verbs in ALLOWED[account]}
    assert granted == expected


def test_helm_install_dry_run_against_the_server_renders_the_notes(
    cluster: launcher.LocalCluster, release: tuple[str, str]
) -> None:
    name, namespace = release
    out = helm_chart.helm(
        "install", name, str(helm_chart.CHART), "--namespace", namespace,
        "--dry-run=server", "--kubeconfig", str(cluster.kubeconfig),
    ).stdout  # fmt: skip
    notes = out.split("NOTES:", 1)[1]
    assert f"Deployment {name}-controller, 2 replica(s)" in notes
    assert f"Lease {namespace}/{name}-controller" in notes
    assert "darwin-domain.snn.io" in notes
