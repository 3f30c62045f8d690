from __future__ import annotations

import re
from pathlib import Path

from darwin_dra.cluster import components

PORTS = components.Ports(
    etcd=2379, etcd_peer=2380, apiserver=6443, controller_manager=10257, scheduler=10259
)
PKI = Path("/c/pki")


def _all() -> dict[str, list[str]]:
    kubeconfig = Path("/c/k")
    return {
        "etcd": components.etcd(Path("/c/etcd"), PORTS),
        "kube-apiserver": components.apiserver(PKI, PORTS),
        "kube-controller-manager": components.controller_manager(PKI, kubeconfig, PORTS),
        "kube-scheduler": components.scheduler(PKI, kubeconfig, PORTS),
        "kubelet-harness": components.kubelet_harness(
            kubeconfig, "n0", Path("/c/reg"), Path("/c/state")
        ),
    }


def _flag(args: list[str], name: str) -> str | None:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    assert len(values) <= 1, f"--{name} given twice"
    return values[0] if values else None


def test_every_kubernetes_component_gets_the_same_explicit_gates() -> None:
    expected = dict.fromkeys(components.FEATURE_GATES, "true")
    for name, args in _all().items():
        if name == "etcd":
            continue
        gates = _flag(args, "feature-gates")
        assert gates is not None, f"{name} has no --feature-gates"
        assert dict(g.split("=") for g in gates.split(",")) == expected, name


def test_everything_listens_on_loopback_only() -> None:
    for name, args in _all().items():
        for arg in args:
            if re.match(r"--(bind|advertise)-address=|--(listen|advertise)-\S*urls=", arg):
                host = re.sub(r"^.*=(https?://)?", "", arg).rsplit(":", 1)[0]
                assert host == "127.0.0.1", f"{name}: {arg}"


def test_apiserver_serves_every_resource_version_and_dra_controllers_run() -> None:
    runtime = _flag(components.apiserver(PKI, PORTS), "runtime-config") or ""
    assert "resource.k8s.io/v1=true" in runtime.split(",")
    controllers = (_flag(_all()["kube-controller-manager"], "controllers") or "").split(",")
    for needed in (
        "resourceclaim-controller",
        "device-taint-eviction-controller",
        "garbage-collector-controller",
        "node-lifecycle-controller",
        "namespace-controller",
    ):
        assert needed in controllers


def test_scheduler_with_a_config_file_drops_the_flags_it_would_ignore() -> None:
    kubeconfig = Path("/c/k")
    plain = components.scheduler(PKI, kubeconfig, PORTS)
    assert _flag(plain, "kubeconfig") == str(kubeconfig)
    assert _flag(plain, "config") is None
    with_config = components.scheduler(PKI, kubeconfig, PORTS, Path("/c/s.json"))
    assert _flag(with_config, "config") == "/c/s.json"
    # kube-scheduler ignores these with --config: their values must come from the file.
    assert _flag(with_config, "kubeconfig") is None
    assert _flag(with_config, "profiling") is None
    assert _flag(with_config, "secure-port") == str(PORTS.scheduler)
    assert _flag(with_config, "authentication-kubeconfig") == str(kubeconfig)


def test_scheduler_configuration_merges_settings_over_the_launcher_defaults() -> None:
    body = components.scheduler_configuration(
        Path("/c/k"),
        {"percentageOfNodesToScore": 10, "clientConnection": {"qps": 500}, "enableProfiling": True},
    )
    assert body["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert body["kind"] == "KubeSchedulerConfiguration"
    assert body["percentageOfNodesToScore"] == 10
    assert body["clientConnection"] == {"kubeconfig": "/c/k", "qps": 500}
    assert body["leaderElection"] == {"leaderElect": False}
    assert body["enableProfiling"] is True
