from __future__ import annotations

from pathlib import Path

import pytest
from darwin_dra.cli import controller as cli
from darwin_dra.cli.main import build_parser, main


@pytest.fixture(autouse=True)
def _keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    # run() configures structlog to print to the stderr of the moment; under capsys that
    # stream is closed after the test and later tests' log calls would fail.
    monkeypatch.setattr("darwin_dra.logs.configure", lambda level="INFO": None)


def test_flags_and_environment_twins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DARWIN_INVENTORY", str(tmp_path / "inv.yaml"))
    monkeypatch.setenv("POD_NAME", "ctrl-7f9")
    monkeypatch.setenv("POD_NAMESPACE", "drivers")
    monkeypatch.setenv("FABRIC_KEPS_FOR", "wafer-0=500,board-7=70")
    args = build_parser().parse_args(["controller", "--fabric-keps", "900", "--resync", "5"])
    opts = cli.options(args)
    assert opts.inventory == tmp_path / "inv.yaml"
    assert (opts.lease.namespace, opts.lease.identity) == ("drivers", "ctrl-7f9")
    assert opts.fabric.keps == 900
    assert dict(opts.fabric.keps_for) == {"wafer-0": 500, "board-7": 70}
    assert opts.install_classes is True
    assert opts.resync_s == 5


@pytest.mark.parametrize("item", ["wafer-0", "=5", "wafer-0=lots", "wafer-0=-5"])
def test_bad_per_fabric_bandwidth_is_refused(item: str) -> None:
    with pytest.raises(ValueError, match="expected FABRIC=KEPS"):
        cli._keps_for([item])


def test_missing_inventory_exits_2_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DARWIN_INVENTORY", raising=False)
    assert main(["controller"]) == 2
    assert "--inventory required" in capsys.readouterr().err


def test_a_bad_inventory_exits_2_before_touching_the_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "inv.yaml"
    bad.write_text("apiVersion: darwin.snn.io/v1alpha1\nkind: Inventory\nnodes: []\n")
    # No kubeconfig exists here: reaching the cluster would be a different error.
    code = main(["controller", "--inventory", str(bad), "--kubeconfig", str(tmp_path / "none")])
    assert code == 2
    assert "nodes: must be a list of at least 1 entry, got 0 entries" in capsys.readouterr().err
