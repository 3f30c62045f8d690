/* The router's bandwidth: every directed mesh link carries at most rt.cap packets a timestep
 * (a spike crossing it is one packet; unicast XY routing puts one per target core behind it).
 * A step whose spikes cannot overfill any link is routed in bulk (the common case, and then
 * nothing changes: link counters are folded later from the spike counts). Otherwise thread 0
 * routes the step one spike at a time, the waiting spikes first (oldest first), then the new
 * ones in delivery order: a spike enters the mesh only if every link of its route has room for
 * its packets this step; if not, it waits whole in the backlog of the lowest-indexed link it
 * would overfill, or, that backlog being full, is dropped and counted there. A spike that
 * enters the mesh at a later step delivers its events as if emitted then: each step it waits
 * adds one step to every synaptic delay. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* The directed links between neighbouring tiles of a w x h mesh. */
static double mesh_links(uint32_t mesh_w, uint32_t mesh_h) {
    const double w = (double)mesh_w, h = (double)mesh_h;
    return 2.0 * ((w > 0 ? w - 1 : 0) * h + w * (h > 0 ? h - 1 : 0));
}

uint64_t dk_link_capacity(double router_events_per_s, double dt_ms, uint32_t mesh_w,
                          uint32_t mesh_h) {
    const double links = mesh_links(mesh_w, mesh_h);
    const double per = links > 0 ? floor(router_events_per_s * dt_ms * 1e-3 / links) : 0.0;
    if (!(per >= 1.0)) return 1; /* also NaN */
    return per >= 2147483648.0 ? 2147483648ull : (uint64_t)per;
}

/* The most packets one spike puts on one link: 1 for multicast trees, more when unicast routes
 * of one source share links. `count` is a zeroed scratch of n_links entries, left zeroed. */
static uint32_t route_mult(const dk_network *n, uint32_t *count) {
    uint32_t most = 1;
    for (uint32_t t = 0; t < n->n_trees; t++) {
        const uint32_t a = n->tree_link_ptr[t], b = n->tree_link_ptr[t + 1];
        for (uint32_t i = a; i < b; i++) {
            const uint32_t c = ++count[n->tree_links[i]];
            if (c > most) most = c;
        }
        for (uint32_t i = a; i < b; i++) count[n->tree_links[i]] = 0;
    }
    return most;
}

/* The spikes a backlog holds at a link shared by `users`: DK_LINK_BACKLOG_STEPS steps of the
 * larger share, at most UINT32_MAX. */
static uint32_t backlog_of(uint32_t cap, uint32_t users) {
    const uint64_t share = ((uint64_t)cap + users - 1) / users;
    const uint64_t b = share * DK_LINK_BACKLOG_STEPS;
    return b > UINT32_MAX ? UINT32_MAX : (uint32_t)b;
}

/* The links the network's trees cross, each with this network as its only user (the chip's
 * other partitions join at dk_router_shares). */
static int shares_init(dk_network *n) {
    dk_router *r = &n->rt;
    const size_t words = (size_t)r->n_links * sizeof(uint32_t);
    r->uses = dk_alloc(r->n_links);
    r->users = dk_alloc(words);
    r->rank = dk_alloc(words);
    r->lcap = dk_alloc(words);
    r->bcap = dk_alloc(words);
    if (!r->uses || !r->users || !r->rank || !r->lcap || !r->bcap) return DK_E_NOMEM;
    const uint32_t n_tl = n->tree_link_ptr ? n->tree_link_ptr[n->n_trees] : 0;
    for (uint32_t i = 0; i < n_tl; i++) r->uses[n->tree_links[i]] = 1;
    for (uint32_t l = 0; l < r->n_links; l++) {
        r->users[l] = r->uses[l];
        r->lcap[l] = r->cap;
        r->bcap[l] = backlog_of(r->cap, 1);
    }
    r->cap_min = r->cap;
    r->share_epoch = UINT64_MAX;
    return DK_OK;
}

int dk_router_init(dk_network *n, const dk_chip *c) {
    dk_router *r = &n->rt;
    r->n_links = c->n_tiles * 4u;
    const uint64_t cap = dk_link_capacity(c->prof.router_events_per_s, (double)n->dt_ms,
                                          c->prof.mesh_w, c->prof.mesh_h);
    r->cap = (uint32_t)cap;
    r->load = dk_alloc((size_t)r->n_links * sizeof *r->load);
    r->backlog = dk_alloc((size_t)r->n_links * sizeof *r->backlog);
    r->dropped = dk_alloc((size_t)r->n_links * sizeof *r->dropped);
    if (n->n_kernels) {
        r->ktgt = dk_alloc(((size_t)n->kernel_fan + 1) * sizeof *r->ktgt);
        r->kw = dk_alloc(((size_t)n->kernel_fan + 1) * sizeof *r->kw);
        if (!r->ktgt || !r->kw) return DK_E_NOMEM;
    }
    if (!r->load || !r->backlog || !r->dropped) return DK_E_NOMEM;
    r->mult = route_mult(n, r->load);
    if (shares_init(n)) return DK_E_NOMEM;
    n->bytes += (size_t)r->n_links * 33;
    n->tel.link_capacity = cap;
    return DK_OK;
}

void dk_router_free(dk_router *r) {
    void *ptrs[] = {r->load, r->backlog, r->dropped, r->pend_src, r->pend_link, r->routed.ids,
                    r->ktgt, r->kw, r->uses, r->users, r->rank, r->lcap, r->bcap};
    for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) dk_free(ptrs[i]);
}

bool dk_router_needed(const dk_network *n, uint64_t step, uint64_t total) {
    return n->rt.pend_seen[(step + 1) & 1] != 0 || total * n->rt.mult > n->rt.cap_min;
}

void dk_router_bulk(dk_network *n, uint64_t step, uint64_t total) {
    n->tel.routed_spikes += total;
    n->rt.pend_seen[step & 1] = n->rt.pend_n;
}

/* Puts spike `s`'s packets on its links and returns UINT32_MAX; or, if one would overfill a
 * link, puts nothing and returns the lowest such link. */
static uint32_t try_route(dk_network *n, uint32_t s) {
    const uint32_t t = n->src_tree[s], a = n->tree_link_ptr[t], b = n->tree_link_ptr[t + 1];
    uint32_t *load = n->rt.load, blocked = UINT32_MAX;
    const uint32_t *links = n->tree_links;
    for (uint32_t i = a; i < b; i++)
        if (++load[links[i]] > n->rt.lcap[links[i]] && links[i] < blocked) blocked = links[i];
    if (blocked != UINT32_MAX)
        for (uint32_t i = a; i < b; i++) load[links[i]]--;
    return blocked;
}

/* The synaptic events a spike of `s` would deliver: its listed synapses and its kernels'. */
static uint64_t spike_events(dk_network *n, uint32_t s) {
    uint64_t ev = n->src_syn ? n->src_syn[s + 1] - n->src_syn[s] : 0;
    for (uint32_t q = 0; q < n->n_kernels; q++) {
        const dk_kernel_rt *kr = &n->kernels[q];
        if (s >= kr->k.src_first && s < kr->src_end)
            ev += dk_kernel_targets(kr, s - kr->k.src_first, n->rt.ktgt, n->rt.kw);
    }
    return ev;
}

/* Spike `s` is lost at `link` (UINT32_MAX: at none, out of memory before it entered). */
static void drop(dk_network *n, uint32_t s, uint32_t link) {
    if (link < n->rt.n_links) n->rt.dropped[link]++;
    n->tel.dropped_link_spikes++;
    n->tel.dropped_link += spike_events(n, s);
}

/* Spike `s` enters the mesh this step (it is delivered from n->rt.routed). */
static void admit(dk_network *n, uint32_t s, bool waited) {
    dk_router *r = &n->rt;
    spike_list *out = &r->routed;
    uint32_t *ids = dk_grow(out->ids, &r->cap_routed, (size_t)out->n + 1, sizeof *ids, UINT32_MAX);
    if (!ids) { /* out of memory: lost, and its links must not count it */
        if (!waited) n->tree_spikes_folded[s]++;
        drop(n, s, UINT32_MAX);
        return;
    }
    out->ids = ids;
    out->ids[out->n++] = s;
    n->tel.routed_spikes++;
    if (waited) n->tree_spikes_folded[s]--; /* its links count it now */
}

/* Spike `s`, refused by `link`, waits there (at *keep in the backlog) or, that backlog being
 * full, is dropped there. Its links do not count it (the fold skips it) unless it enters. */
static void hold(dk_network *n, uint32_t s, uint32_t link, uint32_t *keep) {
    dk_router *r = &n->rt;
    if (r->backlog[link] >= r->bcap[link]) { drop(n, s, link); return; }
    const size_t need = (size_t)*keep + 1;
    uint32_t *src = dk_grow(r->pend_src, &r->cap_src, need, sizeof *src, UINT32_MAX);
    if (src) r->pend_src = src;
    uint32_t *at = src ? dk_grow(r->pend_link, &r->cap_link, need, sizeof *at, UINT32_MAX) : NULL;
    if (at) r->pend_link = at;
    if (!src || !at) { drop(n, s, link); return; }
    r->pend_src[*keep] = s;
    r->pend_link[*keep] = link;
    (*keep)++;
    r->backlog[link]++;
    n->tel.deferred++;
}

/* This step's share of each link: of a link's capacity B shared by k partitions, each gets
 * floor(B / k) and the B mod k left over go to k consecutive ranks, rotating with the step, so
 * the k shares of one step add up to B and over k steps every partition gets the same. */
static void step_shares(dk_router *r, uint64_t step) {
    for (uint32_t l = 0; l < r->n_links; l++) {
        const uint32_t k = r->users[l];
        if (k <= 1) continue;
        const uint64_t turn = (r->rank[l] + step) % k;
        r->lcap[l] = r->cap / k + (turn < r->cap % k);
    }
}

void dk_router_shares(dk_engine *e, dk_partition *p) {
    dk_router *r = &p->net->rt;
    memset(r->users, 0, (size_t)r->n_links * sizeof *r->users);
    memset(r->rank, 0, (size_t)r->n_links * sizeof *r->rank);
    for (uint32_t i = 0; i < e->cap_parts; i++) {
        const dk_partition *q = e->parts[i];
        if (!q || q == p || q->chip != p->chip || !q->link_uses) continue;
        for (uint32_t l = 0; l < r->n_links; l++) {
            const uint32_t both = r->uses[l] & q->link_uses[l];
            r->users[l] += both;
            r->rank[l] += both & (q->id < p->id);
        }
    }
    r->cap_min = r->cap;
    r->shared = false;
    for (uint32_t l = 0; l < r->n_links; l++) {
        if (!r->uses[l]) continue;
        const uint32_t k = ++r->users[l]; /* this partition too */
        r->shared |= k > 1;
        r->lcap[l] = r->cap / k;
        r->bcap[l] = backlog_of(r->cap, k);
        if (r->lcap[l] < r->cap_min) r->cap_min = r->lcap[l];
    }
    r->share_epoch = e->share_epoch;
}

int dk_link_users(dk_engine *e, uint32_t part, uint32_t *users, uint32_t n) {
    if (!e || !users) return dk_fail(DK_E_INVALID, "dk_link_users: NULL argument");
    dk_partition *p;
    int rc = dk_part_get(e, part, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    dk_router *r = p->net ? &p->net->rt : NULL;
    if (!r) rc = dk_fail(DK_E_STATE, "partition %u has no network loaded", part);
    else if (n != r->n_links)
        rc = dk_fail(DK_E_INVALID, "link users: buffer holds %u values, the chip has %u links", n,
                     r->n_links);
    if (!rc) {
        pthread_mutex_lock(&e->lock);
        if (r->share_epoch != e->share_epoch) dk_router_shares(e, p);
        pthread_mutex_unlock(&e->lock);
        for (uint32_t l = 0; l < n; l++) users[l] = r->uses[l] ? r->users[l] : 0;
    }
    pthread_mutex_unlock(&p->lock);
    dk_part_put(e, p);
    return rc;
}

void dk_router_step(dk_network *n, uint64_t step, const spike_list *const *lists,
                    uint32_t n_lists) {
    dk_router *r = &n->rt;
    memset(r->load, 0, (size_t)r->n_links * sizeof *r->load);
    if (r->shared) step_shares(r, step);
    r->routed.n = 0;
    uint32_t keep = 0;
    const uint32_t waiting = r->pend_n;
    for (uint32_t i = 0; i < waiting; i++) { /* oldest first; kept ones move to the front */
        const uint32_t s = r->pend_src[i];
        r->backlog[r->pend_link[i]]--;
        const uint32_t link = try_route(n, s);
        if (link == UINT32_MAX) admit(n, s, true);
        else hold(n, s, link, &keep);
    }
    for (uint32_t j = 0; j < n_lists; j++) {
        for (uint32_t k = 0; k < lists[j]->n; k++) {
            const uint32_t s = lists[j]->ids[k], link = try_route(n, s);
            if (link == UINT32_MAX) { admit(n, s, false); continue; }
            n->tree_spikes_folded[s]++; /* emitted (counted) but not on its links */
            hold(n, s, link, &keep);
        }
    }
    r->pend_n = keep;
    r->pend_seen[step & 1] = keep;
    n->tel.backlog = keep;
}

double dk_router_peak(dk_network *n) {
    dk_network_fold_links(n);
    const double cap = (double)n->rt.cap * (double)n->tel.steps;
    uint64_t most = 0;
    for (uint32_t l = 0; l < n->rt.n_links; l++)
        if (n->link_events[l] > most) most = n->link_events[l];
    return cap > 0 ? (double)most / cap : 0.0;
}

/* Calibration: loads of the uniform traffic on the healthy mesh, and what still arrives. */
typedef struct {
    const dk_chip *c;
    uint32_t *count, *mark; /* per link: trees crossing it; the stamp of the last tree */
    uint32_t stamp;
    bool broken;            /* the route being walked crosses a failed link */
} saturation_walk;

static void saturation_visit(void *ctx, int32_t link) {
    saturation_walk *w = ctx;
    if (link < 0) return;
    w->broken |= w->c->link_failed[link] != 0;
    if (w->mark[link] == w->stamp) return; /* a multicast tree crosses a link once */
    w->mark[link] = w->stamp;
    w->count[link]++;
}

/* Walks every source's tree over the set; returns the deliveries that arrive in one round. */
static uint64_t saturation_rounds(saturation_walk *w, const uint32_t *cores, uint32_t n) {
    const dk_chip *c = w->c;
    uint64_t arrive = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t s = cores[i];
        w->stamp = i + 1;
        for (uint32_t j = 0; j < n; j++) {
            const uint32_t d = cores[j];
            w->broken = false;
            dk_route_xy(c, c->core_x[s], c->core_y[s], c->core_x[d], c->core_y[d],
                        saturation_visit, w);
            arrive += !w->broken && !c->core_failed[s] && !c->core_failed[d];
        }
    }
    return arrive;
}

static int saturation_locked(const dk_chip *c, const uint32_t *cores, uint32_t n, double *out) {
    for (uint32_t i = 0; i < n; i++)
        if (cores[i] >= c->n_cores)
            return dk_fail(DK_E_INVALID, "saturation: core %u does not exist (the chip has %u)",
                           cores[i], c->n_cores);
    saturation_walk w = {.c = c};
    w.count = dk_alloc((size_t)c->n_tiles * 4 * sizeof *w.count);
    w.mark = dk_alloc((size_t)c->n_tiles * 4 * sizeof *w.mark);
    if (!w.count || !w.mark) {
        dk_free(w.count);
        dk_free(w.mark);
        return DK_E_NOMEM;
    }
    const uint64_t arrive = saturation_rounds(&w, cores, n);
    uint32_t busiest = 1; /* a core's port into the mesh carries one packet a round */
    for (uint32_t l = 0; l < c->n_tiles * 4; l++) busiest = w.count[l] > busiest ? w.count[l] : busiest;
    dk_free(w.count);
    dk_free(w.mark);
    const double links = mesh_links(c->prof.mesh_w, c->prof.mesh_h);
    const double per_link = links > 0 ? c->prof.router_events_per_s / links
                                      : c->prof.router_events_per_s;
    *out = c->failed ? 0.0 : per_link / (double)busiest * (double)arrive;
    return DK_OK;
}

int dk_saturation(dk_engine *e, uint32_t chip, const uint32_t *cores, uint32_t n_cores,
                  double *events_per_s) {
    if (!e || !events_per_s || (n_cores && !cores))
        return dk_fail(DK_E_INVALID, "dk_saturation: NULL argument");
    dk_chip *c;
    int rc = dk_chip_lock(e, chip, &c);
    if (rc) return rc;
    uint32_t *all = NULL;
    if (!n_cores) {
        all = dk_alloc((size_t)c->n_cores * sizeof *all);
        if (!all) rc = DK_E_NOMEM;
        for (uint32_t i = 0; all && i < c->n_cores; i++) all[i] = i;
    }
    if (!rc) rc = saturation_locked(c, all ? all : cores, all ? c->n_cores : n_cores, events_per_s);
    pthread_mutex_unlock(&e->lock);
    dk_free(all);
    return rc;
}
