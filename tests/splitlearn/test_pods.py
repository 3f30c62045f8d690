"""The split run's pods (splitlearn/pods.py): two nodes, the data only where the edge is, the
server reached by pod IP, the reports read back from the logs; the data file round-trips."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.splitlearn import pods
from darwin_dra.splitlearn.data import Split, load, read, save
from darwin_dra.splitlearn.parts import Config

S = pods.PodSettings("run1", "darwin-dra:test", edge_node="node-a")


def test_the_parties_repel_each_other_and_only_the_edge_mounts_the_data() -> None:
    server = pods.pod(S, "server", Config(), 3)
    edge = pods.pod(S, "edge", Config(), 3, server_ip="10.1.2.3")
    for p in (server, edge):
        term = p["spec"]["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ][0]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"] == {pods.RUN_LABEL: "run1"}
        assert p["metadata"]["labels"][pods.RUN_LABEL] == "run1"
        assert p["spec"]["resourceClaims"] == [
            {"name": "chip", "resourceClaimName": p["metadata"]["name"]}
        ]
    assert edge["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "node-a"}
    assert "nodeSelector" not in server["spec"]
    # The server, scheduled before the edge exists, keeps off the edge's node.
    [term] = server["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["node-a"]}
    ]
    assert "nodeAffinity" not in edge["spec"]["affinity"]
    volumes = {v["name"]: v for v in server["spec"]["volumes"]}
    assert set(volumes) == {"tls"}
    assert volumes["tls"]["secret"]["secretName"] == "run1-server-tls"
    assert {v["name"] for v in edge["spec"]["volumes"]} == {"tls", "data"}
    cmd = edge["spec"]["containers"][0]["command"]
    assert cmd[cmd.index("--connect") + 1] == f"10.1.2.3:{pods.PORT}"
    assert "--report-weights" in cmd
    assert "--data" not in server["spec"]["containers"][0]["command"]


def test_the_edge_pod_needs_the_servers_ip() -> None:
    with pytest.raises(ValueError, match="server pod's IP"):
        pods.pod(S, "edge", Config(), 0)


def test_objects_names_everything_a_run_creates() -> None:
    made = [
        pods.claim(S, "edge"), pods.claim(S, "server"), pods.pod(S, "server", Config(), 0),
        pods.pod(S, "edge", Config(), 0, "10.0.0.1"), pods.data_config_map(S, b"x"),
        pods.tls_secret(S, "edge", b"a", b"b", b"c"),
        pods.tls_secret(S, "server", b"a", b"b", b"c"),
    ]  # fmt: skip
    assert sorted((o["kind"], o["metadata"]["name"]) for o in made) == sorted(pods.objects(S))


def test_the_report_is_the_last_json_line_of_the_role() -> None:
    log = 'noise\n{"role": "edge", "accuracy": 0.5}\n{"not": "it"}\nTraceback...\n'
    assert pods.report_of_log("edge", log)["accuracy"] == 0.5
    with pytest.raises(ValueError, match="server pod's log holds no report"):
        pods.report_of_log("server", log)


def test_pod_state_says_why_a_pod_waits() -> None:
    p = {
        "spec": {"nodeName": "n1"},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {"state": {"waiting": {"reason": "ErrImageNeverPull", "message": "no image"}}}
            ],
        },
    }
    st = pods.pod_state(p)
    assert (st.phase, st.node, st.ip) == ("Pending", "n1", "")
    assert st.reason == "ErrImageNeverPull: no image"
    unsched = {"status": {"conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2"}
    ]}}  # fmt: skip
    assert pods.pod_state(unsched).reason == "Unschedulable: 0/2"


def test_the_data_file_round_trips_and_names_what_is_missing(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 17, (5, 64)) if i % 2 == 0 else rng.integers(0, 10, 5)
              for i in range(6)]  # fmt: skip
    split = Split(*arrays)
    buf = io.BytesIO()
    save(buf, split)
    (tmp_path / "d.npz").write_bytes(buf.getvalue())
    back = read(tmp_path / "d.npz")
    for a, b in zip(arrays, (back.train_x, back.train_y, back.test_x, back.test_y, back.aux_x,
                             back.aux_y), strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    np.savez(tmp_path / "bad.npz", train_x=arrays[0])
    with pytest.raises(ValueError, match=r"bad\.npz: no train_y"):
        read(tmp_path / "bad.npz")
    assert json.loads(json.dumps(pods.claim(S, "edge")))["spec"]["devices"]["requests"][0][
        "exactly"
    ] == {"deviceClassName": "darwin-domain.snn.io"}


@pytest.mark.slow  # makes the whole data set with mnist1d's generator: about 8 s
def test_mnist1d_is_made_offline_on_the_rate_codes_grid_and_its_sets_are_disjoint() -> None:
    d = load(dataset="mnist1d")
    assert d.train_x.shape[1] == d.test_x.shape[1] == d.aux_x.shape[1] == 40
    assert (len(d.train_x), len(d.aux_x), len(d.test_x)) == (3000, 1000, 1000)
    for x in (d.train_x, d.test_x, d.aux_x):
        assert x.min() >= 0
        assert x.max() <= 16
    assert set(np.unique(d.train_y)) == set(range(10))
    rows = {r.tobytes() for r in d.train_x}
    assert not rows & {r.tobytes() for r in d.aux_x}
    assert not rows & {r.tobytes() for r in d.test_x}
    with pytest.raises(ValueError, match="no data set 'cifar'"):
        load(dataset="cifar")
