"""The pods' claims of `darwin-dra bench scheduler`, by layout (pure bodies, no API calls)."""

from __future__ import annotations

from darwin_dra import DRIVER_NAME
from darwin_dra.fleet import claims
from darwin_dra.kubetypes import Obj

CLAIM_KINDS = ("domains", "quad", "share", "domain")


def darwin_claim(kind: str) -> Obj:
    """One Darwin claim spec: ``domains`` (two on one chip), ``quad``, ``share`` (10 k Meps),
    ``domain`` (one, no constraint)."""
    if kind not in CLAIM_KINDS:
        raise ValueError(f"unknown claim kind {kind!r} (known: {', '.join(CLAIM_KINDS)})")
    if kind == "domain":
        return {"devices": {"requests": [{"name": "domain", "exactly": {
            "deviceClassName": "darwin-domain.snn.io"}}]}}  # fmt: skip
    return dict(zip(CLAIM_KINDS[:3], darwin_mix(), strict=True))[kind]


def darwin_mix() -> list[Obj]:
    """The Darwin claims, in rotation: two domains on one chip, a quad, a KEPS share."""
    same_chip = {"requests": ["domains"], "matchAttribute": f"{DRIVER_NAME}/chip"}
    quad = [{"cel": {"expression": f'device.attributes["{DRIVER_NAME}"].partition == "quad"'}}]
    share = {"requests": {"keps": "10000000", "neurons": "4096"}}
    return [
        {
            "devices": {
                "requests": [
                    {
                        "name": "domains",
                        "exactly": {"deviceClassName": "darwin-domain.snn.io", "count": 2},
                    }
                ],
                "constraints": [same_chip],
            }
        },
        {
            "devices": {
                "requests": [
                    {"name": "quad", "exactly": {"deviceClassName": DRIVER_NAME, "selectors": quad}}
                ]
            }
        },
        {
            "devices": {
                "requests": [
                    {
                        "name": "share",
                        "exactly": {"deviceClassName": "darwin-shared.snn.io", "capacity": share},
                    }
                ]
            }
        },
    ]


# The capacity layout's counterparts of the claim kinds: (domains, KEPS, CEL on maxMeps).
# KEPS are about the domains' router share (a darwin3 domain: 27.8 k Meps), the quad's
# selector is the fast class's 100 k Meps (controller/deviceclasses.py).
CAPACITY_ASKS = {
    "domains": (2, 50_000_000, None),
    "quad": (4, 100_000_000, 100_000),
    "share": (1, 10_000_000, None),
    "domain": (1, 25_000_000, None),
}


def capacity_claim(kind: str) -> Obj:
    """A claim of the capacity layout: ``count`` domains of one chip and a KEPS budget, as
    consumable capacity of the chip's one device; the plugin picks which domains."""
    if kind not in CAPACITY_ASKS:
        raise ValueError(f"unknown claim kind {kind!r} (known: {', '.join(CLAIM_KINDS)})")
    count, keps, min_meps = CAPACITY_ASKS[kind]
    exactly: Obj = {
        "deviceClassName": "darwin-capacity.snn.io",
        "capacity": {"requests": {"domains": str(count), "keps": str(keps)}},
    }
    if min_meps is not None:
        expression = f'device.attributes["{DRIVER_NAME}"].maxMeps >= {min_meps}'
        exactly["selectors"] = [{"cel": {"expression": expression}}]
    return {"devices": {"requests": [{"name": kind, "exactly": exactly}]}}


def plain_mix() -> list[Obj]:
    return [
        {
            "devices": {
                "requests": [
                    {"name": "chip", "exactly": {"deviceClassName": claims.BLACKBOX_CLASS}}
                ]
            }
        }
    ]
