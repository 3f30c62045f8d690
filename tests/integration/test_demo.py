"""`darwin-dra demo`, the main job, run the way a user runs it: three real nodes, the chart
installed with helm, every scenario with workloads whose logs show their networks running, a
chip failure and the workload placed again, a report that renders in headless Chromium (the
screenshot is kept as a test artifact), and nothing left running afterwards."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.cluster import hostdeps, launcher, nodehost
from darwin_dra.demo import pipeline_pictures

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("DARWIN_TEST_ARTIFACTS", ROOT / "out" / "test-artifacts"))
RUN_LINE = re.compile(r"run: recurrent, 400 neurons, 8000 synapses on partition \d+ .* events/s")


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n\n", start)
    return text[start : end if end > 0 else None]


def _blended(hex_colour: str, alpha: float) -> np.ndarray:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float) / 255
    return alpha * rgb + (1 - alpha)  # over white


def test_demo_end_to_end() -> None:
    # Its own directory, not pytest's numbered ones: concurrent pytest runs prune those.
    work = Path(tempfile.mkdtemp(prefix="darwin-demo-test-"))
    out = subprocess.run(
        [sys.executable, "-m", "darwin_dra.cli.main", "demo", "--dir", str(work)],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    text = out.stdout
    assert out.returncode == 0, text[-6000:] + out.stderr[-3000:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "demo-output.txt").write_text(text)

    # set-up steps, each timed
    for step in ("Kubernetes binaries", "the cluster: control plane and 3 real nodes",
                 "helm install", "every node's chips published"):  # fmt: skip
        assert re.search(rf"done {re.escape(step)}.*\(\d+\.\d s\)", text), step
    assert "Darwin DRA: chips by node" in text  # darwin-dra status
    assert "darwin3-fastroute" in text

    examples = _section(text, "Every example of deploy/examples")
    two = examples[examples.index("two-domains\n") :]
    assert re.search(r"given:\s+darwin-node-\d: chip-(\d)-domain-\d+, chip-\1-domain-\d+", two)
    assert "publish darwin.snn.io/chip=" in two
    assert re.search(r"scheduler wrote claim legacy-extended-resources-\w+ for 2 devices", examples)
    assert re.search(r"firstAvailable \['quad', 'domains'\]: took quad", examples)
    assert re.search(r"chip-\d-shared-\d shares 250 of its [\d,]+ KEPS", examples)
    pipeline = examples[examples.index("pipeline\n") :]
    assert re.search(r"given:.*; fabric-wafer-\d \(200 KEPS of the fabric\)", pipeline)
    assert "publish darwin.snn.io/fabric=wafer-" in pipeline
    shared = _section(text, "A KEPS-shared service")
    assert re.search(r"waits:\s+replica #\d stays Pending: 0/3 nodes are available", shared)
    assert re.search(r"given:\s+[1-9] replicas placed; the next one waits", shared)
    meps = _section(text, "A CEL selection on MEPS")
    assert re.search(
        r"given:\s+darwin-node-2: chip-0-domain-\d+ \(darwin3-fastroute chip 0\)", meps
    )
    spiking = _section(text, "A SpikingPipeline")
    assert re.search(r"given:\s+input on darwin-node-0.*s2 on darwin-node-1", spiking, re.S)
    assert re.search(r"spikes across nodes [\d,]+/s", spiking)
    assert '"output_digest"' in spiking  # the output stage finished its run
    # the streams between stages, as the receivers counted them, the cross-node ones marked
    across = r"stream:\s+\w+ -> \w+: [1-9][\d,]* spikes, [\d,]+/s \(across nodes darwin-node-0 ->"
    assert re.search(across + " darwin-node-1", spiking)
    assert re.search(r"stream:\s+input -> s0: [1-9][\d,]* spikes, .*within darwin-node-0", spiking)
    assert re.search(r"measured over the run .*: across nodes [1-9][\d,]*/s", spiking)
    assert re.search(r"spikes:\s+output \(output, darwin-node-1\): [1-9][\d,]* in", spiking)
    fault = _section(text, "A chip fails")
    assert "darwin.snn.io/unhealthy=failed:NoExecute" in fault
    assert re.search(r"kube-controller-manager evicts (\S+, )*resilient-", fault)
    assert re.search(r"given:\s+resilient-\S+ on darwin-node-\d: chip-\d-half-\d", fault)
    # every scenario's workload ran its network in its container
    assert len(RUN_LINE.findall(text)) >= 8, text  # 5 examples, shared, meps, fault

    # nothing left running
    assert "done clean-up" in text
    assert not any(launcher.status(work / "cluster").values())
    cluster_dir = str((work / "cluster").resolve())
    assert not [e for e in nodehost.registered().values() if e.get("directory") == cluster_dir]

    page = Path(re.search(r"report: (\S+index\.html)", text).group(1))  # type: ignore[union-attr]
    assert page.is_file()
    # the pipeline's stages drawn on the chips they ran on (their pods name their claims)
    record = json.loads((page.parent / "record.json").read_text())
    staged = {p["workload"] for p in record["placements"] if p["scenario"] == "pipeline"}
    assert "digits-s0" in staged, staged
    assert staged & {"digits-s1", "digits-s2"}, staged
    _render(page)
    shutil.copytree(page.parent, ARTIFACTS / "demo-report", dirs_exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)


def _render(page: Path) -> None:
    """The report in headless Chromium: its DOM carries both pictures, and the screenshot shows
    the placement picture's colours (the pictures loaded and were drawn)."""
    hostdeps.ensure(hostdeps.BROWSER_PACKAGES)
    shot = ARTIFACTS / "demo-report.png"
    shot.unlink(missing_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="darwin-chromium-"))
    base = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={profile}"]  # fmt: skip
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180,
        check=True,
    ).stdout  # fmt: skip
    assert "<h1>Darwin DRA demo report</h1>" in dom
    assert 'id="placement"' in dom
    assert 'id="timeline"' in dom
    assert 'id="raster"' in dom
    assert 'id="traffic"' in dom
    assert 'id="streams"' in dom
    # the whole page in one screenshot (the pipeline's pictures are far down)
    subprocess.run([*base, "--window-size=1300,9000", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=180, check=True)  # fmt: skip
    shutil.rmtree(profile, ignore_errors=True)
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))[..., :3]
    # the fault's, the MEPS scenario's and the pipeline's partitions
    for colour in ("#d62728", "#9467bd", "#ff7f0e"):
        close = np.abs(pixels - _blended(colour, 0.6)).max(axis=-1) < 0.06
        assert close.sum() > 200, f"{colour} not drawn in {shot}"
    # the pipeline's raster bars and the traffic picture's boxes of the second node
    for colour in (pipeline_pictures.RASTER, pipeline_pictures.NODE_FILLS[1]):
        close = np.abs(pixels - _blended(colour, 1.0)).max(axis=-1) < 0.06
        assert close.sum() > 500, f"{colour} not drawn in {shot}"
