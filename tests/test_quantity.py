"""The one quantity parser, against the forms the API server writes and a reference model."""

from __future__ import annotations

from fractions import Fraction

import pytest
from darwin_dra.quantity import parse_quantity, quantity_or_none
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250", 250),
        ("2k", 2000),
        ("1500m", Fraction(3, 2)),
        ("1Ki", 1024),
        ("3Mi", 3 * 2**20),
        ("1e3", 1000),
        ("0.5", Fraction(1, 2)),
        ("100n", Fraction(1, 10**7)),
    ],
)
def test_quantities(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value
    assert quantity_or_none(text) == value


@pytest.mark.parametrize("text", ["", "k", "1kk", "1 k", "abc", "1Kb"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)
    assert quantity_or_none(text) is None


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["", "k", "M", "G", "Ki", "Mi"]))
def test_an_integer_with_a_suffix_is_its_product(number: int, suffix: str) -> None:
    scale = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20}[suffix]
    assert parse_quantity(f"{number}{suffix}") == number * scale
