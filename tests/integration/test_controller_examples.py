"""deploy/examples on the real scheduler, with real plugin processes on both nodes publishing
the chips and the real controller publishing the fabrics and installing the DeviceClasses; the
plugins programming a claim's routes before its pod binds (the chip routers' binding
conditions)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from darwin_dra import DRIVER_NAME, kubeapi
from darwin_dra.chiphost.app import default_socket
from darwin_dra.chiphost.client import ChipHostClient
from darwin_dra.cluster.chiphost import chip_host_args
from darwin_dra.cluster.launcher import LocalCluster
from darwin_dra.quantity import quantity_or_none
from host_plugin import run_fault
from k8s_helpers import Kube, allocated_devices, wait_for
from kubernetes import client

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
FABRIC_KEPS = 1000  # of the two-node fabric, small so the test can use it up
CLAIMS = "resourceclaims"
ON_WAFER_IT = 'device.attributes["darwin.snn.io"].fabric == "wafer-it"'


def _inventory(path: Path, nodes: list[str]) -> Path:
    # node 0: two chips on wafer-it; node 1: one chip on wafer-it, one on board-9. wafer-it is
    # the fabric two nodes share.
    path.write_text(
        f"""apiVersion: darwin.snn.io/v1alpha1
kind: Inventory
nodes:
  - name: {nodes[0]}
    fabrics:
      - id: wafer-it
        chips:
          - {{model: darwin3, serial: EX-0}}
          - {{model: darwin3, serial: EX-1}}
  - name: {nodes[1]}
    fabrics:
      - id: wafer-it
        chips:
          - {{model: darwin3, serial: EX-2}}
      - id: board-9
        chips:
          - {{model: darwin3, serial: EX-3}}
"""
    )
    return path


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _start(name: str, args: list[str], work: Path) -> Proc:
    log = work / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "darwin_dra.cli.main", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    return Proc(name, proc, log)


def controller_args(cluster: LocalCluster, inventory: Path, identity: str, lease: str) -> list[str]:
    return [
        "controller",
        "--kubeconfig", str(cluster.kubeconfig),
        "--inventory", str(inventory),
        "--namespace", "kube-system",
        "--lease-name", lease,
        "--identity", identity,
        "--fabric-keps", str(FABRIC_KEPS),
        "--resync", "2",
        "--lease-duration", "6",
        "--renew-deadline", "4",
        "--retry-period", "1",
    ]  # fmt: skip


@dataclass
class Driver:
    inventory: Path
    work: Path
    nodes: list[str]
    kube: kubeapi.ControllerKube


@pytest.fixture(scope="module")
def darwin(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    """Plugins on both nodes and one controller, for the whole module."""
    assert cluster.state is not None
    work = tmp_path_factory.mktemp("darwin")
    nodes = [n.name for n in cluster.state.nodes]
    inventory = _inventory(work / "inventory.yaml", nodes)
    kube = kubeapi.connect_controller(cluster.kubeconfig)
    procs: list[Proc] = []
    try:
        for node in cluster.state.nodes:
            state = work / node.name / "state"
            args = chip_host_args(node.name, inventory, state, fault_poll_s=1.0)
            procs.append(_start(f"chip-host-{node.name}", args, work))
            procs.append(_start(f"plugin-{node.name}", [
                "kubelet-plugin",
                "--node-name", node.name,
                "--kubeconfig", str(cluster.kubeconfig),
                "--plugins-registry-dir", node.plugins_registry,
                "--plugins-dir", node.plugins,
                "--cdi-dir", str(work / node.name / "cdi"),
                "--state-dir", str(work / node.name / "state"),
            ], work))  # fmt: skip
        procs.append(
            _start("controller", controller_args(cluster, inventory, "it", "it-controller"), work)
        )

        def published() -> bool:
            slices = kube.list_driver_slices(DRIVER_NAME)
            fabric = {s["spec"]["pool"]["name"] for s in slices if "nodeSelector" in s["spec"]}
            node_pools = {s["spec"].get("nodeName") for s in slices} - {None}
            classes = {c["metadata"]["name"] for c in kube.list_device_classes()}
            return (
                fabric == {"fabric-wafer-it", "fabric-board-9"}
                and node_pools == set(nodes)
                and "darwin-domain.snn.io" in classes
            )

        wait_for("plugins, fabric slices and classes", published, timeout=180)
        yield Driver(inventory, work, nodes, kube)
    finally:
        codes = {p.name: p.stop() for p in procs}
        for s in kube.list_driver_slices(DRIVER_NAME):
            kube.delete_slice(s["metadata"]["name"])
        for c in kube.list_device_classes("app.kubernetes.io/managed-by=darwin-dra-controller"):
            kube.delete_device_class(c["metadata"]["name"])
        kube.close()
        for p in procs:
            print(f"--- {p.name} (exit {codes[p.name]})\n{p.tail()}")
        assert set(codes.values()) == {0}, codes


@pytest.fixture
def ns(darwin: Driver, namespace: str, kube: Kube) -> Iterator[str]:
    """The test's namespace; its pods and claims are gone before the next test, so fabric
    bandwidth and partitions are free again."""
    yield namespace
    kube.core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
    wait_for("claims released", lambda: not kube.list_ns(namespace, CLAIMS), timeout=60)


def kubectl_apply(cluster: LocalCluster, namespace: str, text: str) -> None:
    # the kubectl built with the control plane; a fresh machine may have none on PATH
    built = cluster.bin.path("kubectl")
    path = str(built) if built.exists() else shutil.which("kubectl")
    assert path, "no kubectl: neither built with the cluster nor on PATH"
    subprocess.run(
        [path, f"--kubeconfig={cluster.kubeconfig}", "apply", "-n", namespace, "-f", "-"],
        input=text, text=True, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _claim_of(kube: Kube, namespace: str, pod: str, claim: str) -> dict[str, Any]:
    def allocated() -> dict[str, Any] | None:
        name = kube.pod_claim_name(namespace, pod, claim)
        obj = kube.get_ns(namespace, CLAIMS, name) if name else None
        return obj if allocated_devices(obj) else None

    return wait_for(f"the allocated claim {claim} of pod {pod}", allocated, timeout=60)


def _bound(kube: Kube, namespace: str, pod: str) -> str:
    def node() -> str | None:
        return ((kube.pod(namespace, pod) or {}).get("spec") or {}).get("nodeName")

    return wait_for(f"pod {pod} bound to a node", node, timeout=60)


def _attributes(driver: Driver) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for s in driver.kube.list_driver_slices(DRIVER_NAME):
        for d in s["spec"].get("devices", []):
            attrs = {k: next(iter(v.values())) for k, v in d.get("attributes", {}).items()}
            out[(s["spec"]["pool"]["name"], d["name"])] = attrs
    return out


def test_two_domains_on_one_chip(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    kubectl_apply(cluster, ns, (EXAMPLES / "two-domains-one-chip.yaml").read_text())
    results = allocated_devices(_claim_of(kube, ns, "two-domains", "domains"))
    attrs = _attributes(darwin)
    assert len(results) == 2
    assert {r["request"] for r in results} == {"domains"}
    devs = [attrs[(r["pool"], r["device"])] for r in results]
    assert {d["partition"] for d in devs} == {"domain"}
    assert len({(r["pool"], d["chip"]) for r, d in zip(results, devs, strict=True)}) == 1
    assert len({r["device"] for r in results}) == 2


def test_pipeline_stages_stay_on_one_fabric_and_bind(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    kubectl_apply(cluster, ns, (EXAMPLES / "pipeline-one-fabric.yaml").read_text())
    claim = _claim_of(kube, ns, "pipeline", "stages")
    results = {r["request"]: r for r in allocated_devices(claim)}
    assert set(results) == {"encoder", "reservoir", "readout", "links"}
    attrs = _attributes(darwin)
    fabrics = {attrs[(r["pool"], r["device"])]["fabric"] for r in results.values()}
    assert len(fabrics) == 1
    [fabric] = fabrics
    assert results["links"]["device"] == f"fabric-{fabric}"
    assert results["links"]["consumedCapacity"] == {"keps": "200"}
    assert attrs[(results["reservoir"]["pool"], results["reservoir"]["device"])]["partition"] == (
        "quad"
    )
    node = _bound(kube, ns, "pipeline")
    stage_pools = {results[r]["pool"] for r in ("encoder", "reservoir", "readout")}
    assert stage_pools == {node}


def test_quad_first_else_four_domains(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    kubectl_apply(cluster, ns, (EXAMPLES / "quad-or-four-domains.yaml").read_text())
    [result] = allocated_devices(_claim_of(kube, ns, "quad-or-domains", "block"))
    assert result["request"] == "block/quad"
    assert _attributes(darwin)[(result["pool"], result["device"])]["partition"] == "quad"


def test_shared_partition_by_keps(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    kubectl_apply(cluster, ns, (EXAMPLES / "shared-keps.yaml").read_text())
    [result] = allocated_devices(_claim_of(kube, ns, "shared-250k", "share"))
    assert _attributes(darwin)[(result["pool"], result["device"])]["partition"] == "shared"
    assert result["consumedCapacity"]["keps"] == "250"
    assert result["shareID"]


def test_two_small_shares_fit_on_one_shared_device(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    # Both pods on one node: the scheduler takes the first device that fits, so the second
    # share lands on the first one's device exactly when that device still has room.
    pinned = (
        (EXAMPLES / "shared-keps.yaml")
        .read_text()
        .replace(
            "spec:\n  terminationGracePeriodSeconds",
            "spec:\n  nodeSelector: {kubernetes.io/hostname: darwin-node-0}\n"
            "  terminationGracePeriodSeconds",
        )
    )
    kubectl_apply(cluster, ns, pinned)
    kubectl_apply(cluster, ns, pinned.replace("name: shared-250k\nspec:\n  nodeSelector",
                                              "name: second\nspec:\n  nodeSelector"))  # fmt: skip
    first = allocated_devices(_claim_of(kube, ns, "shared-250k", "share"))[0]
    second = allocated_devices(_claim_of(kube, ns, "second", "share"))[0]
    assert first["shareID"] != second["shareID"]
    used = {(first["pool"], first["device"]), (second["pool"], second["device"])}
    assert len(used) == 1, f"two devices used for 500 keps of sharing: {used}"


def test_legacy_pod_gets_two_domains_through_the_extended_resource(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    kubectl_apply(cluster, ns, (EXAMPLES / "legacy-extended-resource.yaml").read_text())

    def claim() -> dict[str, Any] | None:
        status = ((kube.pod(ns, "legacy") or {}).get("status") or {}).get(
            "extendedResourceClaimStatus"
        ) or {}
        name = status.get("resourceClaimName")
        obj = kube.get_ns(ns, CLAIMS, name) if name else None
        return obj if allocated_devices(obj) else None

    obj = wait_for("the scheduler's claim for darwin.snn.io/domain: 2", claim, timeout=60)
    results = allocated_devices(obj)
    attrs = _attributes(darwin)
    assert len(results) == 2
    assert {attrs[(r["pool"], r["device"])]["partition"] for r in results} == {"domain"}
    mapping = (kube.pod(ns, "legacy") or {})["status"]["extendedResourceClaimStatus"]
    [m] = mapping["requestMappings"]
    assert (m["containerName"], m["resourceName"]) == ("model", "darwin.snn.io/domain")
    _bound(kube, ns, "legacy")


def _fabric_pod(name: str, node: str, keps: int, annotations: dict[str, str] | None = None) -> str:
    template = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {
            "metadata": {"annotations": annotations or {}},
            "spec": {
                "devices": {
                    "requests": [
                        {
                            "name": "links",
                            "exactly": {
                                "deviceClassName": "darwin-fabric.snn.io",
                                "capacity": {"requests": {"keps": str(keps)}},
                                "selectors": [{"cel": {"expression": ON_WAFER_IT}}],
                            },
                        }
                    ]
                }
            },
        },
    }  # fmt: skip
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": {"kubernetes.io/hostname": node},
            "containers": [
                {"name": "c", "image": "registry.invalid/x:none",
                 "resources": {"claims": [{"name": "links"}]}}
            ],
            "resourceClaims": [{"name": "links", "resourceClaimTemplateName": name}],
        },
    }  # fmt: skip
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [template, pod]})


def _unschedulable(kube: Kube, ns: str, pod: str) -> str:
    def message() -> str | None:
        cond = kube.scheduled_condition(ns, pod) or {}
        return cond.get("message") if cond.get("status") == "False" else None

    return wait_for(f"pod {pod} reported unschedulable", message, timeout=60)


def test_fabric_bandwidth_is_shared_by_pods_on_two_nodes_until_it_runs_out(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    n0, n1 = darwin.nodes
    shares = set()
    # One after another, each bound before the next.
    for name, node in (("a", n0), ("b", n1), ("c", n0)):
        kubectl_apply(cluster, ns, _fabric_pod(name, node, 300))
        assert _bound(kube, ns, name) == node
        [r] = allocated_devices(_claim_of(kube, ns, name, "links"))
        assert (r["pool"], r["device"], r["consumedCapacity"]) == (
            "fabric-wafer-it", "fabric-wafer-it", {"keps": "300"}
        )  # fmt: skip
        shares.add(r["shareID"])
    assert len(shares) == 3
    # 900 of 1000 used: 300 more would oversubscribe the fabric, from either node.
    kubectl_apply(cluster, ns, _fabric_pod("d", n1, 300))
    message = _unschedulable(kube, ns, "d")
    assert "cannot allocate all claims" in message
    assert not ((kube.pod(ns, "d") or {}).get("spec") or {}).get("nodeName")
    # 100 still fits.
    kubectl_apply(cluster, ns, _fabric_pod("e", n1, 100))
    assert _bound(kube, ns, "e") == n1


def _fabric_device(driver: Driver) -> tuple[int, dict[str, Any], int]:
    """The wafer-it fabric device's (pool generation, attributes, keps) as the API holds it."""
    [s] = [
        s
        for s in driver.kube.list_driver_slices(DRIVER_NAME)
        if s["spec"]["pool"]["name"] == "fabric-wafer-it"
    ]
    [d] = s["spec"]["devices"]
    attrs = {k: next(iter(v.values())) for k, v in d["attributes"].items()}
    keps = quantity_or_none(d["capacity"]["keps"]["value"])
    assert keps is not None
    return int(s["spec"]["pool"]["generation"]), attrs, int(keps)


def test_the_fabric_device_follows_a_fabric_link_fault_and_its_repair(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    n0, n1 = darwin.nodes
    gen, attrs, keps = _fabric_device(darwin)
    assert (attrs["fabricLinks"], attrs["failedFabricLinks"], keps) == (2, 0, FABRIC_KEPS)
    # Node 0's chips 0 and 1 are wafer-it's grid there, a link each way: chip 0 -> 1 fails.
    state = darwin.work / n0 / "state"
    run_fault(state, "inject", "--chip", "0", "--fabric-to", "1")
    injected = time.monotonic()
    try:

        def followed() -> tuple[int, dict[str, Any], int] | None:
            now = _fabric_device(darwin)
            return now if now[1]["failedFabricLinks"] == 1 else None

        cut_gen, cut, cut_keps = wait_for("the fabric device with the fault", followed, 60)
        print(f"\nfabric device followed the fault after {time.monotonic() - injected:.1f}s")
        assert cut_gen > gen
        assert (cut["fabricLinks"], cut_keps) == (1, 0)  # chip 0 has no way out: no grant
        # The real scheduler grants none of it now, from either node.
        kubectl_apply(cluster, ns, _fabric_pod("cut", n1, 100))
        assert "cannot allocate all claims" in _unschedulable(kube, ns, "cut")
    finally:
        run_fault(state, "clear", "--chip", "0", "--all")
    cleared = time.monotonic()
    back = wait_for(
        "the healthy fabric device again",
        lambda: (d := _fabric_device(darwin))[1]["failedFabricLinks"] == 0 and d,
        timeout=60,
    )
    print(f"fabric device healthy again after {time.monotonic() - cleared:.1f}s")
    assert back[0] > cut_gen
    assert back[2] == FABRIC_KEPS
    assert _bound(kube, ns, "cut") == n1  # the waiting pod gets its bandwidth


def _events(kube: Kube, ns: str, pod: str) -> list[str]:
    items = kube.core.list_namespaced_event(ns, field_selector=f"involvedObject.name={pod}").items
    return [f"{e.reason}: {e.message}" for e in items]


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _routed_pod(name: str, node: str, selectors: tuple[str, str], chip_constraint: bool) -> str:
    """A pod whose claim holds two shares and the chip's router, and a route s0 -> s1 between
    the shares in its annotation (as the pipeline controller writes it)."""
    requests: list[dict[str, Any]] = [
        {"name": r, "exactly": {"deviceClassName": "darwin-shared.snn.io",
                                "selectors": [{"cel": {"expression": sel}}]}}
        for r, sel in zip(("s0", "s1"), selectors, strict=True)
    ]  # fmt: skip
    requests.append({"name": "chip-router", "exactly": {"deviceClassName": "darwin-router.snn.io"}})
    devices: dict[str, Any] = {"requests": requests}
    if chip_constraint:
        devices["constraints"] = [
            {"requests": ["s0", "s1", "chip-router"], "matchAttribute": f"{DRIVER_NAME}/chip"}
        ]
    routes = {
        "apiVersion": "darwin.snn.io/v1alpha1",
        "kind": "ClaimRoutes",
        "routes": [{"source": "s0", "destination": "s1", "neuronMap": "0:0:4",
                    "lookaheadSteps": 8}],
    }  # fmt: skip
    template = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {
            "metadata": {"annotations": {"darwin.snn.io/routes": json.dumps(routes)}},
            "spec": {"devices": devices},
        },
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": {"kubernetes.io/hostname": node},
            "containers": [
                {"name": "c", "image": "registry.invalid/x:none",
                 "resources": {"claims": [{"name": "stages"}]}}
            ],
            "resourceClaims": [{"name": "stages", "resourceClaimTemplateName": name}],
        },
    }  # fmt: skip
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [template, pod]})


def test_a_routed_claim_binds_only_once_the_plugin_programmed_its_routes(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    node = darwin.nodes[0]
    kubectl_apply(cluster, ns, _routed_pod("routed", node, (ON_WAFER_IT, ON_WAFER_IT), True))
    assert _bound(kube, ns, "routed") == node
    claim = _claim_of(kube, ns, "routed", "stages")
    uid = claim["metadata"]["uid"]
    by_request = {r["request"]: r for r in allocated_devices(claim)}
    router = by_request["chip-router"]
    assert router["bindingConditions"] == ["RoutesProgrammed"]
    assert router["bindingFailureConditions"] == ["RoutesFailed"]
    chip = router["device"].split("-")[1]  # chip-<c>-router-<r>
    assert router["device"].startswith(f"chip-{chip}-router-")
    assert "shareID" not in router  # a router is one claim's
    assert {by_request[r]["device"].split("-")[1] for r in ("s0", "s1")} == {chip}
    entries = {e["device"]: e for e in claim["status"]["devices"]}
    ready = {c["type"]: c for c in entries[router["device"]]["conditions"]}["RoutesProgrammed"]
    assert ready["status"] == "True"
    assert ready["message"] == f"on chip {chip}'s router: s0->s1"
    # The scheduler waited in PreBind, and bound the pod after the plugin wrote the condition.
    assert any(e.startswith("BindingConditionsPending") for e in _events(kube, ns, "routed"))
    scheduled = kube.scheduled_condition(ns, "routed") or {}
    assert scheduled["status"] == "True"
    assert _time(scheduled["lastTransitionTime"]) >= _time(ready["lastTransitionTime"])
    allocated_at = _time(claim["status"]["allocation"]["allocationTimestamp"])
    assert _time(ready["lastTransitionTime"]) >= allocated_at.replace(microsecond=0)
    # The plugin, not the kubelet, prepared it: before the binding, and the route is real.
    log = (darwin.work / f"plugin-{node}.log").read_text(errors="replace")
    early = [json.loads(line) for line in log.splitlines() if "prepared before binding" in line]
    assert any(e.get("claim_uid") == uid for e in early), early
    with ChipHostClient(default_socket(darwin.work / node / "state")) as chips:
        assert f"{uid}/s0->s1" in [r.name for r in chips.routes()]


def test_a_placement_joined_on_a_fabric_binds_with_its_route_over_the_fabric(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    """The pipeline controller's decision on the live slices: three stages, each more than
    half a half, on node 0 (two chips of wafer-it): s0 and s1 share a chip, s2 gets the other,
    and both groups are one claim (placement.join_on_fabric) whose route s1 -> s2 the plugin
    programs on the chip host across the two chips before the pods bind."""
    from darwin_dra.pipeline import objects
    from darwin_dra.pipeline.chiproutes import claim_routes, on_chip_edges
    from darwin_dra.pipeline.cluster import cluster_view
    from darwin_dra.pipeline.placement import place
    from darwin_dra.pipeline.plan import EdgeLoad, PlanView, StageLoad

    node = darwin.nodes[0]
    labels = [{"metadata": {"name": n, "labels": {"kubernetes.io/hostname": n}}}
              for n in darwin.nodes]  # fmt: skip
    view = cluster_view(darwin.kube.list_driver_slices(DRIVER_NAME), nodes=labels)
    half = min(h.keps for c in view.chips if c.node == node for h in c.halves)
    keps = half * 6 // 10  # one stage a half
    plan = PlanView(
        tuple(StageLoad(f"s{i}", 100, 1000, keps) for i in range(3)),
        (EdgeLoad("s0", "s1", 0.05), EdgeLoad("s1", "s2", 0.04)),
    )
    pin = {"kubernetes.io/hostname": node}
    placement = place(plan, view, 1000, {f"s{i}": pin for i in range(3)})
    [groups] = placement.claims().values()
    assert [len(g.stages) for g in groups] == [2, 1]
    maps = {("s0", "s1"): "0:0:4", ("s1", "s2"): "0:0:4"}
    edges = on_chip_edges(plan, placement, maps)
    assert edges == [("s0", "s1"), ("s1", "s2")]
    owner = {"metadata": {"name": "joined", "namespace": ns, "uid": "none"}}
    body = objects.claim_body(owner, plan, groups, "h", claim_routes(groups, edges, maps, 8))
    del body["metadata"]["ownerReferences"]  # no such pipeline: the collector would delete it
    claim = body["metadata"]["name"]
    pods = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"joined-{s}"},
         "spec": {"terminationGracePeriodSeconds": 0, "nodeSelector": pin,
                  "containers": [{"name": "c", "image": "registry.invalid/x:none",
                                  "resources": {"claims": [{"name": "snn", "request": s}]}}],
                  "resourceClaims": [{"name": "snn", "resourceClaimName": claim}]}}
        for s in ("s0", "s1", "s2")
    ]  # fmt: skip
    kubectl_apply(cluster, ns, json.dumps({"apiVersion": "v1", "kind": "List",
                                           "items": [body, *pods]}))  # fmt: skip
    try:
        _joined_bound(kube, ns, darwin, node, claim)
    finally:  # not a template's claim: the namespace's pods going leave it behind
        kube.custom.delete_namespaced_custom_object("resource.k8s.io", "v1", ns, CLAIMS, claim)


def _joined_bound(kube: Kube, ns: str, darwin: Driver, node: str, claim: str) -> None:
    from darwin_dra.pipeline import objects

    for s in ("s0", "s1", "s2"):
        assert _bound(kube, ns, f"joined-{s}") == node
    got = kube.get_ns(ns, CLAIMS, claim)
    assert got is not None
    uid = got["metadata"]["uid"]
    chip = {r["request"]: r["device"].split("-")[1] for r in allocated_devices(got)}
    assert chip["s0"] == chip["s1"] == chip[objects.ROUTER_REQUEST] != chip["s2"]
    with ChipHostClient(default_socket(darwin.work / node / "state")) as chips:
        names = [r.name for r in chips.routes()]
    assert {f"{uid}/s0->s1", f"{uid}/s1->s2"} <= set(names)


def test_a_route_the_chip_host_refuses_fails_the_binding_with_its_reason(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    # Node 1's two chips are on two fabrics (wafer-it, board-9): no route joins them.
    on_board = 'device.attributes["darwin.snn.io"].fabric == "board-9"'
    kubectl_apply(
        cluster, ns, _routed_pod("refused", darwin.nodes[1], (ON_WAFER_IT, on_board), False)
    )

    def failed() -> str | None:
        hits = [e for e in _events(kube, ns, "refused") if "device binding failed" in e]
        return hits[0] if hits else None

    event = wait_for("a binding failure event", failed, timeout=90)
    assert "reason=RouteProgrammingFailed" in event
    assert "a route stays on one chip's router or one fabric" in event
    time.sleep(1)
    assert not ((kube.pod(ns, "refused") or {}).get("spec") or {}).get("nodeName")


def test_reconcile_restores_classes_and_removes_slices_of_gone_nodes(
    kube: Kube, darwin: Driver
) -> None:
    darwin.kube.delete_device_class("darwin-fast.snn.io")

    def fast() -> list[dict[str, Any]]:
        classes = darwin.kube.list_device_classes()
        return [c for c in classes if c["metadata"]["name"] == "darwin-fast.snn.io"]

    restored = wait_for("the deleted class back", fast, timeout=30)
    assert restored[0]["spec"]["selectors"][-1]["cel"]["expression"].endswith(">= 100000")
    darwin.kube.create_slice({
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
        "metadata": {"name": "darwin-it-ghost"},
        "spec": {"driver": DRIVER_NAME, "nodeName": "node-that-left",
                 "pool": {"name": "node-that-left", "generation": 1, "resourceSliceCount": 1},
                 "devices": [{"name": "chip-0"}]},
    })  # fmt: skip

    def gone() -> bool:
        return all(
            s["metadata"]["name"] != "darwin-it-ghost"
            for s in darwin.kube.list_driver_slices(DRIVER_NAME)
        )

    wait_for("the orphaned slice deleted", gone, timeout=30)

    # A converged cluster is left alone: no pool generation moves over several resyncs.
    def generations() -> dict[str, int]:
        return {
            s["metadata"]["name"]: s["spec"]["pool"]["generation"]
            for s in darwin.kube.list_driver_slices(DRIVER_NAME)
            if "nodeSelector" in s["spec"]
        }

    # (wafer-it's generation is past 1 when the fabric link fault test ran before: its fault
    # and its repair were each written with the next one)
    before = generations()
    time.sleep(5)
    assert generations() == before
    assert set(before) == {"darwin-fabric-board-9", "darwin-fabric-wafer-it"}
    assert before["darwin-fabric-board-9"] == 1


def test_a_standby_controller_takes_over_when_the_leader_stops(
    cluster: LocalCluster, kube: Kube, darwin: Driver, test_id: str
) -> None:
    lease = f"it-{test_id}"
    first = _start("c-a", controller_args(cluster, darwin.inventory, "c-a", lease), darwin.work)
    second: Proc | None = None
    try:

        def holder() -> str:
            try:
                obj = darwin.kube.get_lease("kube-system", lease)
            except kubeapi.NotFound:
                return ""
            return str(obj["spec"].get("holderIdentity") or "")

        wait_for("c-a to lead", lambda: holder() == "c-a", timeout=30)
        second = _start(
            "c-b", controller_args(cluster, darwin.inventory, "c-b", lease), darwin.work
        )
        time.sleep(3)
        assert holder() == "c-a"  # the standby waits while the lease is renewed
        assert first.stop() == 0
        # Released on shutdown: the standby takes over without waiting out the duration.
        started = time.monotonic()
        wait_for("c-b to lead", lambda: holder() == "c-b", timeout=30)
        assert time.monotonic() - started < 6
        # The lease is written before the workers start: wait for them, do not race the log.
        wait_for("c-b's workers", lambda: "leading: workers started" in second.log.read_text(), 30)
    finally:
        first.stop()
        if second is not None:
            assert second.stop() == 0
        client.CoordinationV1Api(kube.api).delete_namespaced_lease(lease, "kube-system")


def test_plan_reads_the_live_cluster_and_leaves_allocated_domains_alone(
    cluster: LocalCluster, kube: Kube, ns: str, darwin: Driver
) -> None:
    kubectl_apply(cluster, ns, (EXAMPLES / "two-domains-one-chip.yaml").read_text())
    results = allocated_devices(_claim_of(kube, ns, "two-domains", "domains"))
    taken = {(r["pool"], int(r["device"].split("-")[1]), int(r["device"].split("-")[3]))
             for r in results}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "darwin_dra.cli.main", "plan", "--generate", "layered",
         "--kubeconfig", str(cluster.kubeconfig), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    chips = {c["chip"]: c for c in doc["topology"]["chips"]}
    assert len(chips) == 4
    for pool, chip, domain in taken:
        entry = chips[f"{pool}/chip-{chip}"]
        assert domain not in entry["free_domains"]
        assert entry["unusable_domains"] == 2
    assert {f["id"] for f in doc["topology"]["fabrics"]} == {"wafer-it", "board-9"}
    used = {(p["chip"], p["domain"]) for p in doc["placement"]}
    assert not used & {(f"{pool}/chip-{chip}", d) for pool, chip, d in taken}
    assert len(doc["placement"]) == 32
