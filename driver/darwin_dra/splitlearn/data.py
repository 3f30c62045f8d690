"""scikit-learn's digits for split learning: the victims' training and held-out sets and the
attacker's auxiliary set (same distribution, disjoint from both), rate-coded into spikes with
models.digits.rate_code (pixel value k gives k evenly spaced spikes in 16 steps)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from darwin_dra.models.digits import rate_code

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Split:
    train_x: I64  # (n, 64) pixels 0..16
    train_y: I64
    test_x: I64
    test_y: I64
    aux_x: I64
    aux_y: I64


DATASETS = ("digits", "mnist1d")


def _mnist1d() -> tuple[I64, I64, I64, I64]:
    """MNIST-1D (the ``mnist1d`` package's generator, its default arguments: 5,000 signals of
    40 samples from 10 templates, shifted, scaled, sheared and noised; its own 80/20 split),
    made here, offline, not downloaded. Each sample is put on the rate code's 0..16 grid by
    the training set's range (clipped)."""
    from mnist1d.data import get_dataset_args, make_dataset

    d = make_dataset(get_dataset_args())
    x, xt = np.asarray(d["x"], np.float64), np.asarray(d["x_test"], np.float64)
    lo, hi = float(x.min()), float(x.max())

    def grid(v: npt.NDArray[np.float64]) -> I64:
        return np.clip(np.rint(16 * (v - lo) / (hi - lo)), 0, 16).astype(np.int64)

    return grid(x), grid(xt), np.asarray(d["y"], np.int64), np.asarray(d["y_test"], np.int64)


def load(aux_fraction: float = 0.25, limit: int | None = None, dataset: str = "digits") -> Split:
    """digits: the held-out 25% are models/digits_export.py's (stratified, random_state 0).
    mnist1d: its generator's held-out 20%. The rest is cut into the victims' training set and
    the attacker's auxiliary set (stratified, random_state 0)."""
    from sklearn.model_selection import train_test_split

    if dataset == "mnist1d":
        xtr, xte, ytr, yte = _mnist1d()
    elif dataset == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = np.asarray(d.data, np.int64)
        y = np.asarray(d.target, np.int64)
        xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    else:
        raise ValueError(f"no data set {dataset!r}: one of {', '.join(DATASETS)}")
    xv, xa, yv, ya = train_test_split(
        xtr, ytr, test_size=aux_fraction, random_state=0, stratify=ytr
    )
    if limit is not None:
        xv, yv, xte, yte = xv[:limit], yv[:limit], xte[: limit // 2], yte[: limit // 2]
        xa, ya = xa[: limit // 2], ya[: limit // 2]
    return Split(xv, yv, xte, yte, xa, ya)


def save(path: Path | BinaryIO, split: Split) -> None:
    """The split as one .npz (what the edge pod reads: the image has no scikit-learn)."""
    np.savez_compressed(path, **{f.name: getattr(split, f.name) for f in fields(Split)})


def read(path: Path) -> Split:
    """A split written by save(); a missing array is named."""
    with np.load(path) as z:
        missing = [f.name for f in fields(Split) if f.name not in z.files]
        if missing:
            raise ValueError(f"{path}: no {', '.join(missing)} in the data file")
        return Split(**{f.name: np.asarray(z[f.name], np.int64) for f in fields(Split)})


def spikes(pixels: I64, steps: int = 16) -> F32:
    """(n, 64) pixels -> (n, steps, 64) float32 spikes (the rate code)."""
    return rate_code(pixels, steps).astype(np.float32)
