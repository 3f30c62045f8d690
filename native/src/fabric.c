/* Fabric links: the chips of one fabric (a board or a wafer: the same non-empty
 * dk_chip_desc.fabric) exchange spikes over a directed link for every ordered pair of them.
 * A link carries at most `capacity` spikes per timestep (dk_fabric_capacity of the slower end's
 * fabric_events_per_s). It is a FIFO: spikes are taken in the order of their steps (a batch's
 * own order within a step) and each goes at its step or, that step being full, at the first
 * later step with room; one that would wait more than DK_LINK_BACKLOG_STEPS steps is dropped
 * and counted at the link, as a mesh link drops past its backlog. A carried spike is injected
 * into the destination partition at the step the link carried it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

uint64_t dk_fabric_capacity(double fabric_events_per_s, double dt_ms) {
    const double per = floor(fabric_events_per_s * dt_ms * 1e-3);
    if (!(per >= 1.0)) return 1; /* also NaN */
    return per >= 2147483648.0 ? 2147483648ull : (uint64_t)per;
}

/* DK_OK when chips a and b are two chips of one fabric; engine lock held. */
static int fabric_pair(const dk_engine *e, uint32_t a, uint32_t b) {
    if (a >= e->n_chips || b >= e->n_chips)
        return dk_fail(DK_E_NOT_FOUND, "fabric link %u -> %u: no such chip (the engine has %u)",
                       a, b, e->n_chips);
    if (a == b)
        return dk_fail(DK_E_INVALID, "fabric link %u -> %u: both ends are one chip, whose mesh "
                                     "carries its spikes (dk_inject)", a, b);
    const char *fa = e->chips[a].desc.fabric, *fb = e->chips[b].desc.fabric;
    if (!fa[0] || strcmp(fa, fb) != 0)
        return dk_fail(DK_E_INVALID, "chips %u (fabric '%s') and %u (fabric '%s') are not on "
                                     "one fabric", a, fa, b, fb);
    return DK_OK;
}

/* The link a -> b; created on first use with timestep dt_ms when dt_ms > 0, else NULL. */
static dk_fabric_link *fabric_link(dk_engine *e, uint32_t a, uint32_t b, float dt_ms) {
    for (size_t i = 0; i < e->n_fabric; i++)
        if (e->fabric[i].st.src_chip == a && e->fabric[i].st.dst_chip == b) return &e->fabric[i];
    if (!(dt_ms > 0)) return NULL;
    dk_fabric_link *all = dk_grow(e->fabric, &e->cap_fabric, e->n_fabric + 1, sizeof *all,
                                  UINT32_MAX);
    if (!all) return NULL;
    e->fabric = all;
    dk_fabric_link *l = &all[e->n_fabric++];
    const double ra = e->chips[a].prof.fabric_events_per_s;
    const double rb = e->chips[b].prof.fabric_events_per_s;
    *l = (dk_fabric_link){.st = {.src_chip = a, .dst_chip = b, .dt_ms = dt_ms,
                                 .capacity = dk_fabric_capacity(ra < rb ? ra : rb, dt_ms)}};
    return l;
}

/* The step link l carries a spike of step t at (its counters updated), or UINT64_MAX when the
 * spike would wait too long and is dropped there. */
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

/* Puts the spikes, in step order, on the link chip -> dst's chip (engine lock taken here):
 * the carried ones go to when/ids (their count in *k) and their steps to at. */
static int fabric_schedule(dk_engine *e, uint32_t chip, const dk_partition *dst, stamped *order,
                           uint32_t n, uint64_t *when, uint32_t *ids, const uint32_t *inputs,
                           uint64_t *at, uint32_t *k) {
    const float dt = dst->net->dt_ms;
    pthread_mutex_lock(&e->lock);
    int rc = fabric_pair(e, chip, dst->chip);
    if (!rc && (e->chips[chip].failed || e->chips[dst->chip].failed))
        rc = dk_fail(DK_E_STATE, "fabric link %u -> %u: chip %u has failed", chip, dst->chip,
                     e->chips[chip].failed ? chip : dst->chip);
    dk_fabric_link *l = rc ? NULL : fabric_link(e, chip, dst->chip, dt);
    if (!rc && !l) rc = DK_E_NOMEM;
    if (!rc && l->st.dt_ms != dt)
        rc = dk_fail(DK_E_CONFLICT, "fabric link %u -> %u steps by %g ms; partition %u by %g ms",
                     chip, dst->chip, (double)l->st.dt_ms, dst->id, (double)dt);
    if (!rc) {
        qsort(order, n, sizeof *order, cmp_stamped);
        for (uint32_t j = 0; j < n; j++) {
            const uint64_t step = fabric_carry(l, order[j].step);
            if (at) at[order[j].i] = step;
            if (step == UINT64_MAX) continue;
            when[*k] = step;
            ids[(*k)++] = inputs[order[j].i];
        }
    }
    pthread_mutex_unlock(&e->lock);
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
    int rc = fabric_pair(e, src_chip, dst_chip);
    if (!rc) {
        const dk_fabric_link *l = fabric_link(e, src_chip, dst_chip, 0.0f);
        *out = l ? l->st : (dk_fabric_stats){.src_chip = src_chip, .dst_chip = dst_chip};
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}
