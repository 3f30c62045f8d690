"""The pure plan of real nodes: addresses, slots, and the kubelet/containerd/CNI files."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

import pytest
from darwin_dra.cluster import components, realnode


def test_each_node_gets_its_own_address_and_pod_cidr_in_its_slot() -> None:
    nets = realnode.networks(3, 4)
    assert [n.node_ip for n in nets] == [f"10.240.3.{10 + i}" for i in range(4)]
    assert {n.gateway for n in nets} == {"10.240.3.1"}
    cidrs = [n.pod_cidr for n in nets]
    assert len(set(cidrs)) == 4
    assert all(c.subnet_of(realnode.slot_networks(3)[1]) for c in cidrs)
    assert all(ipaddress.ip_address(n.node_ip) in n.subnet for n in nets)


def test_a_slot_is_only_taken_when_none_of_its_networks_is_on_the_host() -> None:
    assert realnode.free_slot([]) == 0
    taken = [ipaddress.IPv4Network("10.240.0.0/24"), ipaddress.IPv4Network("10.65.7.0/24")]
    assert realnode.free_slot(taken) == 2  # slot 0: node net; slot 1: a pod net
    everything = [ipaddress.IPv4Network("10.0.0.0/8")]
    with pytest.raises(ValueError, match="overlap"):
        realnode.free_slot(everything)


def test_bad_plans_are_refused_naming_the_limit() -> None:
    with pytest.raises(ValueError, match="slot 64"):
        realnode.networks(64, 1)
    with pytest.raises(ValueError, match="at most 200"):
        realnode.networks(0, 201)


def test_host_object_names_fit_the_kernel_limit() -> None:
    tag = realnode.cluster_tag(Path("/some/where"))
    assert len(tag) == 6
    assert len(realnode.bridge_name(tag)) <= 15
    assert len(realnode.veth_name(tag, realnode.MAX_REAL_NODES - 1)) <= 15
    assert realnode.cgroup_root(tag, 1) == f"/darwin-dra-{tag}-1"


def test_kubelet_configuration_for_these_machines(tmp_path: Path) -> None:
    net = realnode.networks(0, 2)[1]
    cfg = realnode.kubelet_configuration(
        net=net,
        tag="abc123",
        runtime_socket=tmp_path / "c.sock",
        client_ca=tmp_path / "ca.crt",
        feature_gates=components.FEATURE_GATES,
    )
    assert cfg["failCgroupV1"] is False
    assert cfg["cgroupRoot"] == "/darwin-dra-abc123-1"
    assert cfg["address"] == net.node_ip
    assert cfg["containerRuntimeEndpoint"] == f"unix://{tmp_path / 'c.sock'}"
    assert cfg["authorization"] == {"mode": "AlwaysAllow"}
    assert cfg["authentication"]["anonymous"] == {"enabled": False}
    assert cfg["imageGCHighThresholdPercent"] == 100  # imported images are never collected
    assert cfg["crashLoopBackOff"] == {"maxContainerRestartPeriod": "5s"}
    assert set(cfg["featureGates"]) == set(components.FEATURE_GATES)


def test_kubelet_args_set_the_labels_the_kubelet_does_not_set_itself() -> None:
    net = realnode.networks(0, 1)[0]
    labels = {
        "kubernetes.io/hostname": "n",
        "kubernetes.io/os": "linux",
        "topology.kubernetes.io/zone": "local-a",
        "darwin.snn.io/simulated": "true",
    }
    args = realnode.kubelet_args(
        config=Path("/c"), kubeconfig=Path("/k"), name="n", net=net, labels=labels
    )
    [node_labels] = [a for a in args if a.startswith("--node-labels=")]
    assert (
        node_labels
        == "--node-labels=darwin.snn.io/simulated=true,topology.kubernetes.io/zone=local-a"
    )
    assert "--hostname-override=n" in args
    assert f"--node-ip={net.node_ip}" in args


def test_containerd_configuration_parses_as_toml_with_cdi_and_runc(tmp_path: Path) -> None:
    layout = realnode.NodeLayout(tmp_path / "n0")
    text = realnode.containerd_config(
        layout=layout, sandbox_image="darwin-dra.local/pause:x", cdi_dirs=[Path("/run/cdi")]
    )
    doc = tomllib.loads(text)
    assert doc["version"] == 3
    assert doc["root"] == str(layout.containerd_root)
    assert doc["grpc"]["address"] == str(layout.containerd_socket)
    cri = doc["plugins"]["io.containerd.cri.v1.runtime"]
    assert cri["cdi_spec_dirs"] == ["/run/cdi"]
    assert cri["restrict_oom_score_adj"] is True
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["options"]["BinaryName"] == realnode.RUNC
    assert cri["cni"]["conf_dir"] == str(layout.cni_conf_dir)
    images = doc["plugins"]["io.containerd.cri.v1.images"]
    assert images["pinned_images"]["sandbox"] == "darwin-dra.local/pause:x"


def test_cni_network_hands_out_the_node_pod_cidr_without_masquerade() -> None:
    net = realnode.networks(2, 3)[2]
    conf = realnode.cni_config(net)
    [bridge] = conf["plugins"]
    assert bridge["type"] == "bridge"
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.66.2.0/24"}]]


def test_node_directories_bound_over_the_fixed_host_paths(tmp_path: Path) -> None:
    layout = realnode.NodeLayout(tmp_path)
    assert layout.kubelet_dir == tmp_path / "root" / "var-lib-kubelet"
    assert layout.cdi_dir == tmp_path / "root" / "run-cdi"
    bound = {layout.bound(t) for t in realnode.BOUND_PATHS}
    assert len(bound) == len(realnode.BOUND_PATHS)
