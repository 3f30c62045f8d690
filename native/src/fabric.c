/* Fabric links: the chips of one fabric (a board or a wafer: the same non-empty
 * dk_chip_desc.fabric) exchange spikes over directed links between neighbours of the fabric's
 * grid (darwin_engine.h, "Fabric links"; fabric_grid_w 0: a link for every ordered pair).
 * A link carries at most `capacity` spikes per timestep (dk_fabric_capacity of the slower end's
 * fabric_events_per_s). It is a FIFO: spikes are taken in the order of their steps (a batch's
 * own order within a step) and each goes at the step it reaches the link or, that step being
 * full, at the first later step with room; one that would wait more than DK_LINK_BACKLOG_STEPS
 * steps is dropped and counted at the link, as a mesh link drops past its backlog. A spike
 * crosses the hops of its path in turn (a hop takes no step of its own) and is injected into
 * the destination partition at the step its last hop carried it. The topology, the paths and
 * the fabric faults are in fabric_topo.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

uint64_t dk_fabric_capacity(double fabric_events_per_s, double dt_ms) {
    const double per = floor(fabric_events_per_s * dt_ms * 1e-3);
    if (!(per >= 1.0)) return 1; /* also NaN */
    return per >= 2147483648.0 ? 2147483648ull : (uint64_t)per;
}

dk_fabric_link *dk_fabric_find(dk_engine *e, uint32_t a, uint32_t b, bool create) {
    for (size_t i = 0; i < e->n_fabric; i++)
        if (e->fabric[i].st.src_chip == a && e->fabric[i].st.dst_chip == b) return &e->fabric[i];
    if (!create) return NULL;
    dk_fabric_link *all = dk_grow(e->fabric, &e->cap_fabric, e->n_fabric + 1, sizeof *all,
                                  UINT32_MAX);
    if (!all) return NULL;
    e->fabric = all;
    dk_fabric_link *l = &all[e->n_fabric++];
    *l = (dk_fabric_link){.st = {.src_chip = a, .dst_chip = b}};
    return l;
}

/* Link l, first used at timestep dt_ms, takes that timestep and its capacity; DK_E_CONFLICT if
 * it already steps by another. */
static int fabric_clock(const dk_engine *e, dk_fabric_link *l, const dk_partition *dst) {
    const float dt = dst->net->dt_ms;
    if (l->st.dt_ms == 0.0f) {
        const double ra = e->chips[l->st.src_chip].prof.fabric_events_per_s;
        const double rb = e->chips[l->st.dst_chip].prof.fabric_events_per_s;
        l->st.dt_ms = dt;
        l->st.capacity = dk_fabric_capacity(ra < rb ? ra : rb, dt);
    }
    if (l->st.dt_ms != dt)
        return dk_fail(DK_E_CONFLICT, "fabric link %u -> %u steps by %g ms; partition %u by %g ms",
                       l->st.src_chip, l->st.dst_chip, (double)l->st.dt_ms, dst->id, (double)dt);
    return DK_OK;
}

/* The step link l carries a spike reaching it at step t (its counters updated), or UINT64_MAX
 * when the spike would wait too long and is dropped there. */
static uint64_t fabric_carry(dk_fabric_link *l, uint64_t t) {
    uint64_t at = t > l->cursor ? t : l->cursor;
    uint64_t load = at == l->cursor ? l->load : 0;
    if (load >= l->st.capacity) {
        at++;
        load = 0;
    }
    if (at - t > DK_LINK_BACKLOG_STEPS) {
        l->st.dropped++;
        return UINT64_MAX;
    }
    l->cursor = at;
    l->load = load + 1;
    l->st.busy_steps += l->load == 1;
    if (l->load > l->st.peak) l->st.peak = l->load;
    l->st.carried++;
    l->st.deferred += at - t;
    l->st.last_step = at;
    return at;
}

typedef struct {
    uint64_t step;
    uint32_t i;
} stamped;

static int cmp_stamped(const void *a, const void *b) {
    const stamped *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The links of the path (hops of them, each clocked to dst's timestep) into `links`; or, with no
 * working path, *lost set to the link where its spikes are lost. */
static int fabric_links_of(dk_engine *e, uint32_t chip, const dk_partition *dst,
                           dk_fabric_link **links, uint32_t *hops, dk_fabric_link **lost) {
    uint32_t *path = dk_alloc((size_t)e->n_chips * sizeof *path), n = 0, ba = 0, bb = 0;
    if (!path) return DK_E_NOMEM;
    int rc = dk_fabric_path(e, chip, dst->chip, path, &n, &ba, &bb);
    *hops = 0;
    *lost = NULL;
    if (!rc && n == 0) {
        *lost = dk_fabric_find(e, ba, bb, true);
        if (!*lost) rc = DK_E_NOMEM;
    }
    for (uint32_t h = 0; !rc && h + 1 < n; h++) {
        dk_fabric_link *l = dk_fabric_find(e, path[h], path[h + 1], true);
        rc = l ? fabric_clock(e, l, dst) : DK_E_NOMEM;
        links[(*hops)++] = l;
    }
    dk_free(path);
    return rc;
}

/* Puts the spikes, in step order, over the path from chip to dst's chip (engine lock taken
 * here): the carried ones go to when/ids (their count in *k) and their steps to at. */
static int fabric_schedule(dk_engine *e, uint32_t chip, const dk_partition *dst, stamped *order,
                           uint32_t n, uint64_t *when, uint32_t *ids, const uint32_t *inputs,
                           uint64_t *at, uint32_t *k) {
    pthread_mutex_lock(&e->lock);
    dk_fabric_link **links = dk_alloc(((size_t)e->n_chips + 1) * sizeof *links), *lost = NULL;
    uint32_t hops = 0;
    int rc = links ? dk_fabric_pair(e, chip, dst->chip) : DK_E_NOMEM;
    if (!rc && (e->chips[chip].failed || e->chips[dst->chip].failed))
        rc = dk_fail(DK_E_STATE, "fabric link %u -> %u: chip %u has failed", chip, dst->chip,
                     e->chips[chip].failed ? chip : dst->chip);
    if (!rc) rc = fabric_links_of(e, chip, dst, links, &hops, &lost);
    if (!rc && lost) lost->st.dropped_fault += n; /* no working path: all of them lost */
    if (!rc && !lost) {
        qsort(order, n, sizeof *order, cmp_stamped);
        for (uint32_t j = 0; j < n; j++) {
            uint64_t step = order[j].step;
            for (uint32_t h = 0; h < hops && step != UINT64_MAX; h++)
                step = fabric_carry(links[h], step);
            if (at) at[order[j].i] = step;
            if (step == UINT64_MAX) continue;
            when[*k] = step;
            ids[(*k)++] = inputs[order[j].i];
        }
    }
    pthread_mutex_unlock(&e->lock);
    dk_free(links);
    return rc;
}

/* dk_fabric_send with dst's lock held. */
static int send_locked(dk_engine *e, uint32_t chip, dk_partition *dst, const uint64_t *steps,
                       const uint32_t *inputs, uint32_t n, uint64_t *at, uint32_t *sent) {
    dk_network *net = dst->net;
    if (!net) return dk_fail(DK_E_STATE, "partition %u has no network loaded", dst->id);
    int rc = dk_inject_check(net, steps, inputs, n);
    if (rc || n == 0) return rc;
    stamped *order = malloc((size_t)n * sizeof *order);
    uint64_t *when = malloc((size_t)n * sizeof *when);
    uint32_t *ids = malloc((size_t)n * sizeof *ids);
    if (!order || !when || !ids) rc = dk_fail(DK_E_NOMEM, "fabric send: out of memory");
    for (uint32_t i = 0; !rc && i < n; i++) order[i] = (stamped){.step = steps[i], .i = i};
    uint32_t k = 0;
    if (!rc) rc = fabric_schedule(e, chip, dst, order, n, when, ids, inputs, at, &k);
    if (!rc) {
        *sent = k;
        uint32_t accepted = 0;
        rc = dk_inject_locked(net, when, ids, k, &accepted);
    }
    free(order);
    free(when);
    free(ids);
    return rc;
}

int dk_fabric_send(dk_engine *e, uint32_t src_part, uint32_t dst_part, const uint64_t *steps,
                   const uint32_t *inputs, uint32_t n, uint64_t *at, uint32_t *sent) {
    if (!e || !sent || (n && (!steps || !inputs)))
        return dk_fail(DK_E_INVALID, "dk_fabric_send: NULL argument");
    *sent = 0;
    if (at)
        for (uint32_t i = 0; i < n; i++) at[i] = UINT64_MAX;
    dk_partition *src, *dst;
    int rc = dk_part_get(e, src_part, &src);
    if (rc) return rc;
    rc = dk_part_get(e, dst_part, &dst);
    if (rc) {
        dk_part_put(e, src);
        return rc;
    }
    pthread_mutex_lock(&dst->lock);
    rc = send_locked(e, src->chip, dst, steps, inputs, n, at, sent);
    pthread_mutex_unlock(&dst->lock);
    dk_part_put(e, dst);
    dk_part_put(e, src);
    return rc;
}

int dk_fabric_link_stats(dk_engine *e, uint32_t src_chip, uint32_t dst_chip,
                         dk_fabric_stats *out) {
    if (!e || !out) return dk_fail(DK_E_INVALID, "dk_fabric_link_stats: NULL argument");
    pthread_mutex_lock(&e->lock);
    int rc = dk_fabric_pair(e, src_chip, dst_chip);
    if (!rc) rc = dk_fabric_adjacent(e, src_chip, dst_chip);
    if (!rc) {
        const dk_fabric_link *l = dk_fabric_find(e, src_chip, dst_chip, false);
        *out = l ? l->st : (dk_fabric_stats){.src_chip = src_chip, .dst_chip = dst_chip};
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}
