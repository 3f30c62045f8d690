/* Spike ports (address-event representation in and out) and telemetry. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Runs the statements on the loaded network `n` of a partition, under the partition lock. */
#define WITH_NET(e, part, ...)                                                               \
    do {                                                                                     \
        dk_partition *p_;                                                                    \
        int rc_ = dk_part_get((e), (part), &p_);                                             \
        if (rc_) return rc_;                                                                 \
        pthread_mutex_lock(&p_->lock);                                                       \
        dk_network *n = p_->net;                                                             \
        if (!n) rc_ = dk_fail(DK_E_STATE, "partition %u has no network loaded", (part));    \
        else { __VA_ARGS__ }                                                                 \
        pthread_mutex_unlock(&p_->lock);                                                     \
        dk_part_put((e), p_);                                                                \
        return rc_;                                                                          \
    } while (0)

int dk_record(dk_engine *e, uint32_t part, const uint32_t *neurons, uint32_t count, uint32_t capacity) {
    if (!e || (count && !neurons)) return dk_fail(DK_E_INVALID, "dk_record: NULL argument");
    if (capacity > (1u << 28)) return dk_fail(DK_E_INVALID, "record capacity %u is too large", capacity);
    WITH_NET(e, part, {
        for (uint32_t i = 0; i < count && !rc_; i++)
            if (neurons[i] >= n->n_neurons)
                rc_ = dk_fail(DK_E_INVALID, "record: neuron %u does not exist (the network has %u)",
                              neurons[i], n->n_neurons);
        if (!rc_ && count && capacity == 0)
            rc_ = dk_fail(DK_E_INVALID, "record: capacity must be positive to record spikes");
        uint64_t *steps = NULL;
        uint32_t *ids = NULL;
        if (!rc_ && capacity) {
            steps = dk_alloc((size_t)capacity * sizeof *steps);
            ids = dk_alloc((size_t)capacity * sizeof *ids);
            if (!steps || !ids) rc_ = DK_E_NOMEM;
        }
        if (rc_) {
            dk_free(steps);
            dk_free(ids);
        } else {
            memset(n->recorded, 0, n->n_neurons);
            for (uint32_t i = 0; i < count; i++) n->recorded[neurons[i]] = 1;
            dk_free(n->out.steps);
            dk_free(n->out.ids);
            n->out = (dk_spike_ring){.steps = steps, .ids = ids, .cap = capacity};
        }
    });
}

typedef struct {
    uint64_t step;
    uint32_t id;
    uint32_t order;
} pending;

static int cmp_pending(const void *a, const void *b) {
    const pending *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

int dk_inject_check(const dk_network *n, const uint64_t *steps, const uint32_t *inputs,
                    uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        if (inputs[i] >= n->n_inputs)
            return dk_fail(DK_E_INVALID, "inject: spike %u names input %u but the network has %u",
                           i, inputs[i], n->n_inputs);
        if (steps[i] < n->step)
            return dk_fail(DK_E_INVALID, "inject: spike %u is for step %llu, already past (now %llu)",
                           i, (unsigned long long)steps[i], (unsigned long long)n->step);
    }
    return DK_OK;
}

int dk_inject_locked(dk_network *n, const uint64_t *steps, const uint32_t *inputs, uint32_t count,
                     uint32_t *accepted) {
    *accepted = 0;
    int rc_ = dk_inject_check(n, steps, inputs, count);
    dk_spike_ring *in = &n->in;
    uint32_t room = in->cap - in->count;
    uint32_t take = count < room ? count : room;
    pending *all = NULL;
    if (!rc_ && take) {
        all = malloc(((size_t)in->count + count) * sizeof *all);
        if (!all) rc_ = dk_fail(DK_E_NOMEM, "inject: out of memory");
    }
    if (!rc_ && take) {
        /* the batch in time order; the earliest spikes are the ones accepted */
        pending *batch = all + in->count;
        for (uint32_t i = 0; i < count; i++)
            batch[i] = (pending){.step = steps[i], .id = inputs[i], .order = in->count + i};
        qsort(batch, count, sizeof *batch, cmp_pending);
        for (uint32_t i = 0; i < in->count; i++) {
            uint32_t at = (in->head + i) % in->cap;
            all[i] = (pending){.step = in->steps[at], .id = in->ids[at], .order = i};
        }
        uint32_t total = in->count + take;
        qsort(all, total, sizeof *all, cmp_pending);
        for (uint32_t i = 0; i < total; i++) {
            in->steps[i] = all[i].step;
            in->ids[i] = all[i].id;
        }
        in->head = 0;
        in->count = total;
        *accepted = take;
    }
    free(all);
    if (!rc_ && take < count) {
        n->tel.dropped_input += count - take;
        rc_ = dk_fail(DK_E_OVERFLOW,
                      "inject: input queue full: accepted %u of %u spikes (capacity %u); %u "
                      "dropped and counted",
                      take, count, in->cap, count - take);
    }
    return rc_;
}

int dk_inject(dk_engine *e, uint32_t part, const uint64_t *steps, const uint32_t *inputs,
              uint32_t count, uint32_t *accepted) {
    if (!e || !accepted || (count && (!steps || !inputs)))
        return dk_fail(DK_E_INVALID, "dk_inject: NULL argument");
    *accepted = 0;
    WITH_NET(e, part, { rc_ = dk_inject_locked(n, steps, inputs, count, accepted); });
}

int dk_input_capacity(dk_engine *e, uint32_t part, uint32_t capacity) {
    if (!e) return dk_fail(DK_E_INVALID, "dk_input_capacity: NULL argument");
    if (capacity == 0 || capacity > (1u << 26))
        return dk_fail(DK_E_INVALID, "input capacity %u must be 1..%u", capacity, 1u << 26);
    WITH_NET(e, part, {
        dk_spike_ring *in = &n->in;
        if (capacity < in->count) {
            rc_ = dk_fail(DK_E_CONFLICT, "input capacity %u is below the %u spikes pending", capacity,
                          in->count);
        } else {
            uint64_t *steps = dk_alloc((size_t)capacity * sizeof *steps);
            uint32_t *ids = dk_alloc((size_t)capacity * sizeof *ids);
            if (!steps || !ids) {
                dk_free(steps);
                dk_free(ids);
                rc_ = DK_E_NOMEM;
            } else {
                for (uint32_t i = 0; i < in->count; i++) {
                    uint32_t at = (in->head + i) % in->cap;
                    steps[i] = in->steps[at];
                    ids[i] = in->ids[at];
                }
                dk_free(in->steps);
                dk_free(in->ids);
                *in = (dk_spike_ring){.steps = steps, .ids = ids, .cap = capacity, .count = in->count};
            }
        }
    });
}

int dk_read_spikes(dk_engine *e, uint32_t part, uint64_t *steps, uint32_t *neurons, uint32_t cap,
                   uint32_t *count) {
    if (!e || !count || (cap && (!steps || !neurons)))
        return dk_fail(DK_E_INVALID, "dk_read_spikes: NULL argument");
    *count = 0;
    WITH_NET(e, part, {
        dk_spike_ring *o = &n->out;
        uint32_t k = o->count < cap ? o->count : cap;
        for (uint32_t i = 0; i < k; i++) {
            uint32_t at = (o->head + i) % o->cap;
            steps[i] = o->steps[at];
            neurons[i] = o->ids[at];
        }
        if (k) o->head = (o->head + k) % o->cap;
        o->count -= k;
        *count = k;
    });
}

int dk_membrane(dk_engine *e, uint32_t part, float *v, uint32_t count) {
    if (!e || !v) return dk_fail(DK_E_INVALID, "dk_membrane: NULL argument");
    WITH_NET(e, part, {
        if (count != n->n_neurons)
            rc_ = dk_fail(DK_E_INVALID, "membrane: buffer holds %u values, the network has %u neurons",
                          count, n->n_neurons);
        else memcpy(v, n->v, (size_t)count * sizeof *v);
    });
}

int dk_potentials(dk_engine *e, uint32_t part, uint32_t first, uint32_t count, float *v,
                  float *i_syn) {
    if (!e || (!v && count)) return dk_fail(DK_E_INVALID, "dk_potentials: NULL argument");
    WITH_NET(e, part, {
        if (first > n->n_neurons || count > n->n_neurons - first)
            rc_ = dk_fail(DK_E_INVALID, "potentials: neurons %u..%llu do not exist (the network has %u)",
                          first, (unsigned long long)first + count - 1, n->n_neurons);
        else if (count) {
            memcpy(v, n->v + first, (size_t)count * sizeof *v);
            if (i_syn && n->isyn) memcpy(i_syn, n->isyn + first, (size_t)count * sizeof *i_syn);
            else if (i_syn) memset(i_syn, 0, (size_t)count * sizeof *i_syn);
        }
    });
}

int dk_membrane_set(dk_engine *e, uint32_t part, const float *v, uint32_t count) {
    if (!e || !v) return dk_fail(DK_E_INVALID, "dk_membrane_set: NULL argument");
    WITH_NET(e, part, {
        if (count != n->n_neurons)
            rc_ = dk_fail(DK_E_INVALID, "membrane: %u values given, the network has %u neurons",
                          count, n->n_neurons);
        for (uint32_t i = 0; i < count && !rc_; i++)
            if (!isfinite(v[i]))
                rc_ = dk_fail(DK_E_INVALID, "membrane: value %u is not finite", i);
        if (!rc_) memcpy(n->v, v, (size_t)count * sizeof *v);
    });
}

int dk_telemetry_get(dk_engine *e, uint32_t part, dk_telemetry *out) {
    if (!e || !out) return dk_fail(DK_E_INVALID, "dk_telemetry_get: NULL argument");
    WITH_NET(e, part, {
        n->tel.link_util_peak = dk_router_peak(n);
        *out = n->tel;
        out->network_bytes = n->bytes + n->qbytes;
    });
}

int dk_link_events(dk_engine *e, uint32_t part, uint64_t *events, uint32_t count) {
    if (!e || !events) return dk_fail(DK_E_INVALID, "dk_link_events: NULL argument");
    uint32_t links = 0;
    WITH_NET(e, part, {
        pthread_mutex_lock(&e->lock);
        links = e->chips[p_->chip].n_tiles * 4u;
        pthread_mutex_unlock(&e->lock);
        if (count != links) {
            rc_ = dk_fail(DK_E_INVALID, "link events: buffer holds %u values, the chip has %u links",
                          count, links);
        } else {
            dk_network_fold_links(n);
            memcpy(events, n->link_events, (size_t)links * sizeof *events);
        }
    });
}

int dk_link_stats(dk_engine *e, uint32_t part, uint64_t *carried, uint64_t *dropped,
                  uint64_t *backlog, uint32_t count) {
    if (!e) return dk_fail(DK_E_INVALID, "dk_link_stats: NULL engine");
    WITH_NET(e, part, {
        const dk_router *r = &n->rt;
        if (count != r->n_links) {
            rc_ = dk_fail(DK_E_INVALID, "link stats: buffers hold %u values, the chip has %u links",
                          count, r->n_links);
        } else {
            dk_network_fold_links(n);
            if (carried) memcpy(carried, n->link_events, (size_t)count * sizeof *carried);
            if (dropped) memcpy(dropped, r->dropped, (size_t)count * sizeof *dropped);
            for (uint32_t l = 0; backlog && l < count; l++) backlog[l] = r->backlog[l];
        }
    });
}

int dk_core_events(dk_engine *e, uint32_t part, uint64_t *events, uint32_t count) {
    if (!e || !events) return dk_fail(DK_E_INVALID, "dk_core_events: NULL argument");
    WITH_NET(e, part, {
        if (count != n->cores_used)
            rc_ = dk_fail(DK_E_INVALID, "core events: buffer holds %u values, the network uses %u cores",
                          count, n->cores_used);
        else memcpy(events, n->core_events, (size_t)count * sizeof *events);
    });
}

int dk_spike_counts(dk_engine *e, uint32_t part, uint64_t *counts, uint32_t count) {
    if (!e || !counts) return dk_fail(DK_E_INVALID, "dk_spike_counts: NULL argument");
    WITH_NET(e, part, {
        if (count != n->n_src)
            rc_ = dk_fail(DK_E_INVALID, "spike counts: buffer holds %u values, the network has %u "
                          "sources (neurons + inputs)", count, n->n_src);
        else memcpy(counts, n->spike_count, (size_t)count * sizeof *counts);
    });
}
