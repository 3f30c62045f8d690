"""What every scenario works with: the running cluster's kubectl, the story, the record, and
the waits on pods and on a workload's `darwin-dra run` line; the demo's namespace."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.demo import explain, manifests
from darwin_dra.demo.bringup import Running
from darwin_dra.demo.record import Record, Scenario
from darwin_dra.demo.story import Story, wait_for
from darwin_dra.demo.tools import Kubectl
from darwin_dra.hardware.model import ChipProfile
from darwin_dra.runtime.stage import save_stage

NS = manifests.NAMESPACE
RUNNING_TIMEOUT_S = 180  # a loaded 2-core machine, and the kubelet's back-off after a failure
ATTR = f'device.attributes["{DRIVER_NAME}"]'


@dataclass
class Context:
    story: Story
    running: Running
    profiles: Mapping[str, ChipProfile]
    record: Record = field(default_factory=Record)

    @property
    def kubectl(self) -> Kubectl:
        return self.running.kubectl

    @property
    def image(self) -> str:
        return self.running.image

    def known(self) -> dict[tuple[str, str], explain.Device]:
        return explain.devices(self.kubectl.items("resourceslices"))

    def pods(self, selector: str = "") -> list[dict[str, Any]]:
        args = ["pods", "-n", NS] + (["-l", selector] if selector else [])
        return self.kubectl.items(*args)

    def pod(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.pods() if p["metadata"]["name"] == name), None)

    def claims(self) -> list[dict[str, Any]]:
        return self.kubectl.items("resourceclaims", "-n", NS)

    def wait_running(self, name: str) -> dict[str, Any]:
        def running() -> dict[str, Any] | None:
            pod = self.pod(name)
            if pod and (pod.get("status") or {}).get("phase") == "Running":
                return pod
            return None

        return wait_for(f"pod {name} Running", running, RUNNING_TIMEOUT_S)

    def run_line(self, pod: str, timeout: float = 180, every: float = 1.0) -> str:
        """The first `darwin-dra run` report in the pod's log."""

        def line() -> str | None:
            text = self.kubectl.logs(pod, NS)
            return next((s for s in text.splitlines() if s.startswith("run: ")), None)

        return wait_for(f"the network's report in the log of {pod}", line, timeout, every)

    def place(self, scenario: str, pod: dict[str, Any]) -> list[explain.Placement]:
        claim = explain.claim_of(pod, self.claims())
        if claim is None:
            return []
        got = explain.placements(
            scenario, pod["metadata"]["name"], claim, self.known(), self.profiles
        )
        self.record.placements.extend(got)
        return got

    def show(self, sc: Scenario) -> None:
        self.story.note("asked", sc.asked)
        self.story.note("given", sc.given)
        self.story.note("why", sc.why)
        if sc.waits:
            self.story.note("waits", sc.waits)
        for line in sc.logs:
            self.story.note("log", line)


def setup_namespace(ctx: Context) -> None:
    """The demo's namespace and the ConfigMap holding the workloads' network file."""
    kubectl = ctx.kubectl
    kubectl.run("create", "namespace", NS)
    wait_for(
        "the default service account", lambda: "default" in kubectl.run("get", "sa", "-n", NS), 60
    )
    path = ctx.running.logs.parent / manifests.NETWORK_KEY
    save_stage(path, manifests.network())
    kubectl.apply([manifests.networks_configmap(path.read_bytes())], NS)


def count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
