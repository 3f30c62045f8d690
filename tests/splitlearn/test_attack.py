"""The attack metrics against their definitions, and a decoder that must learn an invertible
map."""

from __future__ import annotations

import numpy as np
import pytest
from darwin_dra.splitlearn.attack import auc, quality, ssim, train_decoder


def test_ssim_is_one_for_equal_images_and_lower_otherwise() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((5, 8, 8))
    assert ssim(a, a) == pytest.approx(np.ones(5))
    assert (ssim(a, rng.random((5, 8, 8))) < 0.5).all()
    assert (ssim(a, 1 - a) < 0).all()  # anti-correlated


def test_psnr_and_mse() -> None:
    t = np.zeros((2, 64))
    q = quality(t, np.full((2, 64), 0.1))
    assert q.mse == pytest.approx(0.01)
    assert q.psnr == pytest.approx(20.0)


def test_auc_against_its_definition() -> None:
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    rng = np.random.default_rng(1)
    m, o = rng.normal(size=30), rng.normal(size=20)
    brute = np.mean([(x > y) + 0.5 * (x == y) for x in m for y in o])
    assert auc(m, o) == pytest.approx(brute)


def test_decoder_inverts_a_linear_map() -> None:
    rng = np.random.default_rng(2)
    pix = rng.random((300, 64)).astype(np.float32)
    mix = rng.normal(size=(64, 64)).astype(np.float32)
    dec = train_decoder((pix @ mix).astype(np.float32), pix, seed=0, epochs=60)
    test = rng.random((50, 64)).astype(np.float32)
    q = quality(test.astype(np.float64), dec((test @ mix).astype(np.float32)).astype(np.float64))
    assert q.mse < 0.04  # a blind guess of 0.5 everywhere gives 1/12 = 0.083
