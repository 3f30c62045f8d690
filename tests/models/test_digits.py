"""Real exports: digits classifiers trained in snnTorch and Norse and exported by their own
NIR exporters (tests/data, made by darwin_dra.models.digits_export) classify the held-out split
on the engine within 1 point of the framework's own accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.engine import Reset
from darwin_dra.models.digits import evaluate, rate_code
from darwin_dra.models.nirfile import load_model

DATA = Path(__file__).resolve().parents[1] / "data"
ACCURACY = json.loads((DATA / "digits_accuracy.json").read_text())


def test_rate_code_gives_k_spikes_for_pixel_k() -> None:
    spikes = rate_code(np.arange(17)[None, :])
    np.testing.assert_array_equal(spikes.sum(axis=1)[0], np.arange(17))
    np.testing.assert_array_equal(rate_code(np.array([[8]]))[0, :, 0], [0, 1] * 8)
    with pytest.raises(ValueError, match=r"0\.\.16"):
        rate_code(np.array([[17]]))


@pytest.mark.slow
@pytest.mark.parametrize("framework", [k for k in ("snntorch", "norse") if k in ACCURACY])
def test_engine_accuracy_within_one_point_of_the_framework(framework: str) -> None:
    entry = ACCURACY[framework]
    model = load_model(DATA / entry["file"], dt=entry["dt_s"], reset=Reset[entry["reset"].upper()])
    with np.load(DATA / "digits_test.npz") as z:
        pixels, labels = z["pixels"], z["labels"]
    assert len(labels) == ACCURACY["test_samples"]
    got = evaluate(model, pixels, labels)
    assert got.accuracy == pytest.approx(entry["engine_accuracy"], abs=1e-9)
    assert abs(got.accuracy - entry["framework_accuracy"]) <= 0.01
    assert entry["framework_accuracy"] > 0.8
