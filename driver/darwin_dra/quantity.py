"""Kubernetes quantities ("250", "1500m", "2k", "1Ki", "1e3") as exact numbers: the one parser
the plugin, the controller, the planner and the fleet replay read capacities with. (The
kubernetes client ships one too, but only kubeapi may import the client.)"""

from __future__ import annotations

import re
from fractions import Fraction

_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)
_SUFFIX = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    **{s: Fraction(1024**i) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), 1)},
}


def parse_quantity(text: str) -> Fraction:
    """The exact value of a quantity; ValueError naming the text when it is not one."""
    m = _QUANTITY.match(str(text).strip())
    if not m:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number, exponent, suffix = m.groups()
    value = Fraction(number)
    if exponent:
        value *= Fraction(10) ** int(exponent[1:])
    return value * _SUFFIX[suffix or ""]


def quantity_or_none(text: str) -> Fraction | None:
    try:
        return parse_quantity(text)
    except ValueError:
        return None
