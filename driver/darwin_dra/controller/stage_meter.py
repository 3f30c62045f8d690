"""The rates of a pipeline's running stages, read from each stage's /metrics on its pod IP:
one sample per pod kept, rates once two samples are at least 2 s apart (pipeline/rates.py
decides them), forgotten when the pod is gone."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import urllib3

from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline import objects
from darwin_dra.pipeline.rates import Sample, parse_sample, stage_rates
from darwin_dra.pipeline.status import StageRates


@dataclass
class StageMeter:
    metrics_port: int
    _samples: dict[str, Sample] = field(default_factory=dict)  # pod uid -> last kept sample
    _rates: dict[str, StageRates] = field(default_factory=dict)  # pod uid -> last rates
    _http: urllib3.PoolManager = field(
        default_factory=lambda: urllib3.PoolManager(retries=False, timeout=1.0)
    )

    def measure(self, pods: list[Obj]) -> dict[str, StageRates]:
        """Each running stage's rates from its /metrics, read straight from its pod IP."""
        out: dict[str, StageRates] = {}
        live = set()
        for pod in pods:
            uid = str(pod["metadata"].get("uid"))
            stage = (pod["metadata"].get("labels") or {}).get(objects.STAGE_LABEL)
            ip = (pod.get("status") or {}).get("podIP")
            if not stage or not ip or (pod.get("status") or {}).get("phase") != "Running":
                continue
            live.add(uid)
            url = f"http://{ip}:{self.metrics_port}/metrics"
            try:
                resp = self._http.request("GET", url)
                if resp.status != 200:
                    continue
                now = parse_sample(resp.data.decode(), time.monotonic())
            except (urllib3.exceptions.HTTPError, ValueError, UnicodeDecodeError):
                continue  # not serving yet; the next pass tries again
            before = self._samples.get(uid)
            if before is None:
                self._samples[uid] = now
            elif now.at - before.at >= 2.0:
                rates = stage_rates(before, now)
                if rates is not None:
                    self._rates[uid] = rates
                self._samples[uid] = now
            if uid in self._rates:
                out[str(stage)] = self._rates[uid]
        for uid in set(self._samples) - live:
            self._samples.pop(uid, None)
            self._rates.pop(uid, None)
        return out
