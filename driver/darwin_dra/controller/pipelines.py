"""The SpikingPipeline worker (the thin, side-effect half; the decisions are pure, in
driver/darwin_dra/pipeline/): for each pipeline, read its model and split it, place the stages
on the live cluster, write its plan ConfigMap, TLS Secret, claims and stage pods, and its status.

Level-triggered: a pass over every pipeline on any change of a pipeline or of a pod the
pipelines own (two watches), and every ``resync_s`` anyway. Runs only on the leader.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from darwin_dra import kubeapi
from darwin_dra.controller.metrics import ControllerMetrics
from darwin_dra.controller.plansource import ModelPending, PlanSource
from darwin_dra.controller.stage_meter import StageMeter
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline import certs, objects
from darwin_dra.pipeline.cluster import cluster_view, fabric_faulted
from darwin_dra.pipeline.placement import Placement, PlacementError, place, placement_from_json
from darwin_dra.pipeline.plan import PlanError, PlanView
from darwin_dra.pipeline.reconcile import Action, Observed, decide
from darwin_dra.pipeline.spec import PipelineSpec, SpecError, parse_spec
from darwin_dra.pipeline.splitter import ModelError
from darwin_dra.pipeline.status import Outcome, StageRates, pipeline_status
from darwin_dra.resources.fabric import ChipKey

log = structlog.get_logger(__name__)


def _role(pod: Obj) -> str:
    return str((pod["metadata"].get("labels") or {}).get(objects.ROLE_LABEL, ""))


def stalled(plan: PlanView, rates: dict[str, StageRates]) -> bool:
    """Every stage measured, and none moved: Ready would be a lie."""
    names = [s.name for s in plan.stages]
    return all(n in rates for n in names) and all(rates[n].timesteps_per_s == 0 for n in names)


@dataclass
class PipelineWorker:
    api: kubeapi.PipelineKube
    metrics: ControllerMetrics
    settings: objects.StageSettings
    # each chip's fabric links with none failed (resources/fabric.py nominal_links): a stage
    # on a chip that publishes fewer is moved off it
    nominal_links: Mapping[ChipKey, int] = field(default_factory=dict)
    resync_s: float = 10.0
    watch_s: int = 30
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _dirty: threading.Event = field(default_factory=threading.Event)
    _meter: StageMeter = field(init=False)
    _source: PlanSource = field(init=False)

    def __post_init__(self) -> None:
        self._meter = StageMeter(self.settings.metrics_port)
        self._source = PlanSource(self.api, self.settings)

    # ---- the loop ----
    def run(self, stop: threading.Event) -> None:
        watchers = [
            threading.Thread(
                target=self._watch, args=(what, sel, stop), daemon=True, name=f"watch-{what}"
            )
            for what, sel in (("pipelines", ""), ("pods", objects.PIPELINE_LABEL))
        ]
        for t in watchers:
            t.start()
        while not stop.is_set():
            self._dirty.clear()
            try:
                self.reconcile_all()
            except kubeapi.KubeApiError as exc:
                self.metrics.errors_total.labels("pipelines").inc()
                log.warning("pipelines: pass failed", error=str(exc), status=exc.status)
            self._dirty.wait(self.resync_s)
            stop.wait(0.2)  # let a burst of events collapse into one pass

    def _watch(self, what: str, selector: str, stop: threading.Event) -> None:
        version = ""
        while not stop.is_set():
            try:
                for _ in self.api.watch_changes(what, selector, version, self.watch_s):
                    self._dirty.set()
                    if stop.is_set():
                        return
            except kubeapi.KubeApiError as exc:
                if exc.status == 404:  # the CRD is not installed yet
                    stop.wait(5.0)
                else:
                    stop.wait(1.0)
            version = ""  # from now; a pass lists everything anyway

    def reconcile_all(self) -> None:
        try:
            pipelines, _ = self.api.list_pipelines()
        except kubeapi.NotFound:
            return  # no CRD: nothing to do
        if not pipelines:
            return
        slices = self.api.list_all_slices()
        claims, _ = self.api.list_claims()
        nodes = self.api.list_nodes()
        for p in pipelines:
            meta = p["metadata"]
            log_ = log.bind(pipeline=f"{meta['namespace']}/{meta['name']}")
            try:
                self.reconcile(p, slices, claims, nodes)
            except kubeapi.Conflict as exc:
                log_.info("pipeline: conflict; next pass", error=str(exc))
            except kubeapi.KubeApiError as exc:
                self.metrics.errors_total.labels("pipelines").inc()
                log_.warning("pipeline: API error", error=str(exc), status=exc.status)
            except Exception:  # a bug on one pipeline must not stop the others' reconciles
                self.metrics.errors_total.labels("pipelines").inc()
                log_.exception("pipeline: reconcile failed")

    # ---- one pipeline ----
    def reconcile(self, p: Obj, slices: list[Obj], claims: list[Obj], nodes: list[Obj]) -> None:
        meta = p["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if meta.get("deletionTimestamp"):
            return  # the garbage collector removes what it owns
        selector = f"{objects.PIPELINE_LABEL}={name}"
        owned_claims, owned_pods = self.api.list_owned(ns, selector)
        split_pods = [x for x in owned_pods if _role(x) == "split"]
        pods = [x for x in owned_pods if _role(x) != "split"]
        try:
            spec = parse_spec(p)
            sourced = self._source.plan(p, spec, split_pods)
        except (SpecError, ModelError, PlanError) as exc:
            reason = "InvalidSpec" if isinstance(exc, SpecError) else "ModelUnusable"
            self._status(p, Outcome("Error", reason, str(exc)))
            return
        except ModelPending as exc:
            self._status(p, Outcome("Pending", "Splitting", str(exc)))
            return
        plan_text, plan = sourced.text, sourced.plan
        if spec.input.in_place:
            plan = plan.drawn_in_place()
        mine = frozenset(str(c["metadata"].get("uid")) for c in owned_claims)
        faulted = fabric_faulted(slices, self.nominal_links)
        view = cluster_view(slices, claims, nodes, ignore_claims=mine, avoid=faulted)
        tainted = frozenset(
            (str(s["spec"]["pool"]["name"]), str(d.get("name")))
            for s in slices
            for d in (s.get("spec") or {}).get("devices") or []
            if d.get("taints")
        )
        # drawing the input in place removes a stage: a new placement (no change otherwise)
        in_place = ("inPlace",) if spec.input.in_place else ()
        inputs_hash = objects.digest(plan_text, spec.target_rate, spec.hint_map(), *in_place)
        try:
            placement, fresh = self._placement(p, plan_text, plan, spec, view, inputs_hash)
        except PlacementError as exc:
            self._status(p, Outcome("Error", "Unschedulable", str(exc)), plan)
            return
        self._secret(p, plan, renew=fresh)
        decision = decide(
            p,
            spec,
            plan,
            placement,
            Observed(owned_claims, pods, tainted, faulted),
            self.settings,
            sourced.maps,
        )
        self._apply(ns, decision.actions)
        if decision.needs_new_placement:
            # The failed hardware is out of the view (tainted, or faulted fabric links); the old
            # claims' share is free.
            try:
                again = place(plan, view, spec.target_rate, spec.hint_map())
                self._write_plan(p, plan_text, again, inputs_hash, replace=True)
                placement = again
            except PlacementError as exc:
                self._status(
                    p,
                    Outcome(
                        "Restarting",
                        "Unschedulable",
                        f"{decision.message}; no new placement: {exc}",
                    ),
                    plan,
                    placement,
                )
                return
        rates = self._meter.measure(pods)
        outcome = Outcome(decision.phase, decision.reason, decision.message)
        if outcome.phase == "Running" and stalled(plan, rates):
            outcome = Outcome(
                "Pending",
                "Stalled",
                "every stage runs, but none advanced a "
                "timestep between the last two reads of its counters",
            )
        self._status(p, outcome, plan, placement, owned_claims, pods, rates)

    def _placement(
        self,
        p: Obj,
        plan_text: str,
        plan: PlanView,
        spec: PipelineSpec,
        view: Any,
        inputs_hash: str,
    ) -> tuple[Placement, bool]:
        """The stored placement while the inputs are the same, else a new one, stored (True)."""
        ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
        try:
            cm = self.api.get_config_map(ns, objects.plan_name(name))
        except kubeapi.NotFound:
            cm = None
        if cm is not None:
            labels = (cm.get("metadata") or {}).get("labels") or {}
            data = cm.get("data") or {}
            if labels.get(objects.HASH_LABEL) == inputs_hash and objects.PLACEMENT_KEY in data:
                try:
                    return placement_from_json(str(data[objects.PLACEMENT_KEY])), False
                except (KeyError, ValueError, TypeError) as exc:  # written by an older version
                    log.warning(
                        "pipeline: stored placement unreadable; placing again",
                        pipeline=f"{ns}/{name}",
                        error=str(exc),
                    )
        placement = place(plan, view, spec.target_rate, spec.hint_map())
        self._write_plan(p, plan_text, placement, inputs_hash, replace=cm is not None)
        return placement, True

    def _write_plan(
        self, p: Obj, plan_text: str, placement: Placement, inputs_hash: str, replace: bool
    ) -> None:
        body = objects.plan_config_map(p, plan_text, placement, inputs_hash)
        ns = p["metadata"]["namespace"]
        if replace:
            current = self.api.get_config_map(ns, body["metadata"]["name"])
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.api.replace_config_map(ns, body)
        else:
            self.api.create(ns, body)
        self.metrics.actions_total.labels("replace" if replace else "create", "ConfigMap").inc()

    def _secret(self, p: Obj, plan: PlanView, renew: bool) -> None:
        """The stages' TLS Secret: made anew with every new plan (``renew``), else made only
        when missing. Never read back: the controller has no right to read Secrets."""
        ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
        stages = [s.name for s in plan.stages]
        if renew:
            self.api.delete(ns, "Secret", objects.tls_name(name))
        material = certs.stage_material(name, stages, self.now())
        try:
            self.api.create(ns, certs.secret_body(p, stages, material))
        except kubeapi.Conflict:
            if renew:
                raise  # the old one is not gone yet: next pass
            return
        self.metrics.actions_total.labels("create", "Secret").inc()

    def _apply(self, ns: str, actions: list[Action]) -> None:
        for a in actions:
            log.info("pipeline", verb=a.verb, kind=a.kind, name=f"{ns}/{a.name}", why=a.why)
            if a.verb == "create":
                assert a.body is not None
                try:
                    self.api.create(ns, a.body)
                except kubeapi.Conflict:
                    continue  # exists already (an older one still terminating): next pass
            else:
                self.api.delete(ns, a.kind, a.name)
            self.metrics.actions_total.labels(a.verb, a.kind).inc()

    def _status(
        self,
        p: Obj,
        outcome: Outcome,
        plan: PlanView | None = None,
        placement: Placement | None = None,
        claims: list[Obj] | None = None,
        pods: list[Obj] | None = None,
        rates: dict[str, StageRates] | None = None,
    ) -> None:
        status = pipeline_status(
            p, outcome, self.now(), plan, placement, claims or [], pods or [], rates
        )
        if status == p.get("status"):
            return
        for key in ("placement", "stages", "edges", "traffic"):
            status.setdefault(key, None)  # a merge patch keeps what it does not name
        meta = p["metadata"]
        self.api.patch_pipeline_status(meta["namespace"], meta["name"], status)
