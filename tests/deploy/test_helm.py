"""The chart lints, renders what the driver needs, and refuses what it must (no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from darwin_dra.hardware.inventory import load_inventory
from darwin_dra.hardware.profiles import load_profiles
from helm_chart import CHART, ROOT, by_kind, generator, helm, one, render

EXAMPLE_INVENTORY = ROOT / "deploy" / "examples" / "inventory.yaml"


@pytest.fixture
def values_with_inventory(tmp_path: Path) -> Path:
    path = tmp_path / "values.yaml"
    inventory = yaml.safe_load(EXAMPLE_INVENTORY.read_text())
    path.write_text(yaml.safe_dump({"inventory": inventory}))
    return path


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_lint_is_clean() -> None:
    out = helm(
        "lint", "--strict", str(CHART), "--namespace", "darwin-dra", "--kube-version", "1.37.2"
    )
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout


def test_the_default_namespace_is_refused() -> None:
    proc = helm(
        "template",
        "x",
        str(CHART),
        "--namespace",
        "default",
        "--kube-version",
        "1.37.2",
        check=False,
    )
    assert proc.returncode != 0
    assert "must not be installed in the default namespace" in proc.stderr


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("controller.replicas=0", "minimum"),
        ("kubeletPlugin.stateDir=relative", "pattern"),
        ("controller.surprise=1", "additional properties"),
        ("logLevel=LOUD", "logLevel"),
        ("chipHost.spikeSocketGroup=0", "minimum"),
    ],
)
def test_values_schema_rejects_bad_values(setting: str, complaint: str) -> None:
    proc = helm(
        "template",
        "x",
        str(CHART),
        "--namespace",
        "d",
        "--kube-version",
        "1.37.2",
        "--set",
        setting,
        check=False,
    )
    assert proc.returncode != 0
    assert complaint in proc.stderr


def test_rendered_kinds() -> None:
    kinds = sorted({o["kind"] for o in render()})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
        "Deployment",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    # By default the DeviceClasses are the controller's (docs/install.md says why).
    assert not by_kind(render(), "DeviceClass")


def test_chart_installs_the_controllers_classes_when_asked() -> None:
    from darwin_dra.controller.deviceclasses import ClassSettings, device_classes

    rendered = by_kind(
        render("darwin-dra", None, "controller.deviceClasses=false",
               "controller.fastMinMeps=5000"),
        "DeviceClass",
    )  # fmt: skip
    expected = device_classes(ClassSettings(fast_min_meps=5000))
    for obj in expected:
        obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "Helm"
    assert sorted(rendered, key=lambda o: o["metadata"]["name"]) == expected


def test_chart_classes_template_is_generated_from_the_builder() -> None:
    module = generator("generate_deviceclasses")
    assert module.TEMPLATE.read_text() == module.render(), (
        "run .venv/bin/python deploy/helm/generate_deviceclasses.py"
    )


def test_daemonset_rolls_one_node_at_a_time_with_surge_and_per_pod_sockets() -> None:
    ds = one(render(), "DaemonSet", "darwin-kubelet-plugin")
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = ds["spec"]["template"]["spec"]
    [c] = pod["containers"]
    env = _env(c)
    assert env["POD_UID"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert c["livenessProbe"]["grpc"] == {"port": 51515}
    # A slow start is not a dead plugin: liveness waits for the first answer, up to 300 s.
    assert c["startupProbe"]["grpc"] == {"port": 51515}
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 300
    assert "initialDelaySeconds" not in c["livenessProbe"]
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert host == {
        "plugins-registry": "/var/lib/kubelet/plugins_registry",
        "plugins": "/var/lib/kubelet/plugins",
        "cdi": "/var/run/cdi",
        "state": "/var/lib/darwin-dra",
    }
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert env["PLUGINS_REGISTRY_DIR"] == mounts["plugins-registry"]
    assert env["DARWIN_STATE_DIR"] == mounts["state"]
    assert c["command"] == ["darwin-dra", "kubelet-plugin"]


def test_health_port_zero_drops_the_probe() -> None:
    [c] = one(
        render("d", None, "kubeletPlugin.healthPort=0"), "DaemonSet", "darwin-kubelet-plugin"
    )["spec"]["template"]["spec"]["containers"]
    assert "livenessProbe" not in c
    assert "startupProbe" not in c
    assert "HEALTH_PORT" not in _env(c)


def test_startup_seconds_set_how_long_a_start_may_take() -> None:
    objs = render("d", None, "kubeletPlugin.startupSeconds=60", "controller.startupSeconds=30")
    [plugin] = one(objs, "DaemonSet", "darwin-kubelet-plugin")["spec"]["template"]["spec"][
        "containers"
    ]
    controller = one(objs, "Deployment")["spec"]["template"]["spec"]
    [ctl] = controller["containers"]
    assert plugin["startupProbe"]["failureThreshold"] == 30
    assert ctl["startupProbe"]["failureThreshold"] == 15
    assert ctl["startupProbe"]["httpGet"] == ctl["livenessProbe"]["httpGet"]


def test_controller_deployment_runs_two_replicas_with_leader_election() -> None:
    objs = render("d", None, "controller.fabricKepsFor.wafer-0=500000")
    dep = one(objs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    [c] = dep["spec"]["template"]["spec"]["containers"]
    env = _env(c)
    assert c["command"] == ["darwin-dra", "controller"]
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["LEASE_NAME"] == "darwin-controller"
    assert "FABRIC_KEPS" not in env  # by default the links' bandwidth, from the profiles
    set_keps = _env(one(render("d", None, "controller.fabricKeps=70000"), "Deployment")["spec"]
                    ["template"]["spec"]["containers"][0])  # fmt: skip
    assert set_keps["FABRIC_KEPS"] == "70000"
    assert env["FABRIC_KEPS_FOR"] == "wafer-0=500000"
    role = one(objs, "Role")
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["darwin-controller"],
            "verbs": ["get", "update"],
        }
    ]


def test_plugin_rbac_is_least_privilege() -> None:
    role = one(render(), "ClusterRole", "darwin-kubelet-plugin")
    grants = {
        (g, r): sorted(rule["verbs"])
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert grants == {
        ("resource.k8s.io", "resourceslices"): sorted(
            ["get", "list", "watch", "create", "update", "delete"]
        ),
        ("resource.k8s.io", "resourceclaims"): ["get", "list", "watch"],
        ("resource.k8s.io", "resourceclaims/status"): ["patch", "update"],
        ("resource.k8s.io", "resourceclaims/driver"): [
            "associated-node:patch",
            "associated-node:update",
        ],
        ("resource.k8s.io", "deviceclasses"): ["get"],
        ("", "nodes"): ["get"],
    }


def test_node_slice_policy_matches_only_the_plugin_service_account() -> None:
    vap = one(render("drv"), "ValidatingAdmissionPolicy", "darwin-node-slices")
    [cond] = vap["spec"]["matchConditions"]
    assert '"system:serviceaccount:drv:darwin-kubelet-plugin"' in cond["expression"]
    binding = one(render("drv"), "ValidatingAdmissionPolicyBinding", "darwin-node-slices")
    assert binding["spec"]["validationActions"] == ["Deny"]


def test_admission_policies_can_be_turned_off() -> None:
    objs = render("d", None, "admission.nodeRestrictedSlices=false", "admission.opaqueConfig=false")
    assert not by_kind(objs, "ValidatingAdmissionPolicy")
    assert not by_kind(objs, "ValidatingAdmissionPolicyBinding")


def test_inventory_configmap_is_the_inventory_the_processes_load(
    values_with_inventory: Path, tmp_path: Path
) -> None:
    cm = one(render("d", values_with_inventory), "ConfigMap")
    written = tmp_path / "inventory.yaml"
    written.write_text(cm["data"]["inventory.yaml"])
    profiles = load_profiles()
    assert (
        load_inventory(written, profiles).nodes == load_inventory(EXAMPLE_INVENTORY, profiles).nodes
    )


def test_chip_host_runs_beside_each_plugin_and_is_replaced_only_on_purpose() -> None:
    objs = render()
    plugin = one(objs, "DaemonSet", "darwin-kubelet-plugin")["spec"]["template"]["spec"]
    ds = one(objs, "DaemonSet", "darwin-chip-host")
    assert ds["spec"]["updateStrategy"] == {"type": "OnDelete"}  # a restart is a chip reset
    pod = ds["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False  # it never talks to the API server
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert pod.get(key) == plugin.get(key)
    [c] = pod["containers"]
    assert c["command"] == ["darwin-dra", "chip-host"]
    assert "livenessProbe" not in c
    env = _env(c)
    [p] = plugin["containers"]
    assert env["DARWIN_STATE_DIR"] == _env(p)["DARWIN_STATE_DIR"]  # the socket is shared there
    assert env["DARWIN_CALIBRATE"] == "false"
    assert "DARWIN_CALIBRATE" not in _env(p)
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert host == {"state": "/var/lib/darwin-dra"}
    on = one(render("d", None, "chipHost.calibrate=true"), "DaemonSet", "darwin-chip-host")
    assert _env(on["spec"]["template"]["spec"]["containers"][0])["DARWIN_CALIBRATE"] == "true"


def test_a_spike_socket_group_reaches_the_chip_host_and_its_own_groups() -> None:
    def chip_host(*settings: str) -> dict[str, Any]:
        ds = one(render("d", None, *settings), "DaemonSet", "darwin-chip-host")
        return dict(ds["spec"]["template"]["spec"])

    default = chip_host()
    assert "DARWIN_SPIKE_SOCKET_GROUP" not in _env(default["containers"][0])  # root only
    assert "securityContext" not in default
    grouped = chip_host("chipHost.spikeSocketGroup=4242")
    assert _env(grouped["containers"][0])["DARWIN_SPIKE_SOCKET_GROUP"] == "4242"
    # root without CAP_CHOWN gives its files only to its own groups
    assert grouped["securityContext"] == {"supplementalGroups": [4242]}
    assert grouped["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
