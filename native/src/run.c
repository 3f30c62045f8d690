/* Advancing a partition: neuron update with in-engine Poisson drive, routing and delivery of
 * events, spread over threads that each own whole cores (asynchronous domains), with one
 * barrier per timestep. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define CHUNK 256u

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A sense-reversing barrier: spins briefly, then yields (2-core machines are shared). */
typedef struct {
    atomic_uint count;
    atomic_uint sense;
    uint32_t n;
} barrier_t;

static void barrier_wait(barrier_t *b, uint32_t *local_sense) {
    uint32_t s = *local_sense ^ 1u;
    *local_sense = s;
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) + 1 == b->n) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_store_explicit(&b->sense, s, memory_order_release);
        return;
    }
    uint32_t spins = 0;
    while (atomic_load_explicit(&b->sense, memory_order_acquire) != s) {
        if (++spins > 2000) sched_yield();
    }
}

struct dk_thread_ctx {
    _Alignas(DK_ALIGN) dk_network *net; /* workers' contexts on their own cache lines */
    dk_partition *part;
    uint32_t tid, n_threads;
    uint32_t c0, c1;               /* owned cores */
    uint64_t steps, cap_per_core;
    uint64_t budget;               /* events this thread may deliver this step (if rate > 0) */
    double rate, credit;           /* KEPS share as events per step, and the unspent part */
    spike_list lists[2];
    barrier_t *barrier;
    uint32_t *sense;               /* this worker's barrier sense */
    atomic_uint *go;               /* 0 wait, 1 run, 2 abort */
    struct dk_thread_ctx *all;
    spike_list inputs[2];          /* injected spikes of the step, filled by thread 0 */
    uint32_t *ktgt;                /* scratch: one source's kernel targets and weights */
    float *kw;
    /* local counters, summed after the run */
    uint64_t spikes, inputs_taken, events, drive, packets, drop_q, drop_f, drop_b, queue_peak;
    uint64_t update_ns, deliver_ns;
    uint64_t qbytes;               /* bytes this worker's queues grew by */
    uint64_t *core_ev;             /* events delivered to each owned core (c1 - c0) */
    uint32_t slot0;                /* the ring slot of the step being run */
    bool nomem;                    /* a queue could not grow (its packet was dropped) */
};

/* xorshift32 on every lane: one independent stream per neuron, vectorisable. */
DK_CLONE_INLINE void draw_uniforms(uint32_t *restrict rng, uint32_t *restrict u, uint32_t m) {
    for (uint32_t i = 0; i < m; i++) {
        uint32_t x = rng[i];
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        rng[i] = x;
        u[i] = x;
    }
}

DK_CLONE_INLINE uint32_t max_u32(const uint32_t *restrict u, uint32_t m) {
    uint32_t hi = 0;
    for (uint32_t i = 0; i < m; i++) hi = u[i] > hi ? u[i] : hi;
    return hi;
}

/* Poisson counts by inverse CDF: k = #{j : u >= T_j}, stopping once no lane can pass T_j. */
DK_CLONE_INLINE uint64_t poisson_counts(const dk_group_rt *g, const uint32_t *restrict u,
                               uint32_t *restrict k, uint32_t m) {
    for (uint32_t i = 0; i < m; i++) k[i] = 0;
    const uint32_t hi = max_u32(u, m);
    for (uint32_t j = 0; j < g->n_thresholds && g->thresholds[j] <= hi; j++) {
        const uint32_t t = g->thresholds[j];
        for (uint32_t i = 0; i < m; i++) k[i] += u[i] >= t;
    }
    uint32_t sum = 0;
    for (uint32_t i = 0; i < m; i++) sum += k[i];
    return sum;
}

/* Exact integration of iaf_psc_delta over one step; inputs during refractoriness are lost. */
DK_CLONE_INLINE void lif_step(const dk_group_rt *g, float *restrict v, uint16_t *restrict refr,
                     float *restrict slot, const uint32_t *restrict k, uint8_t *restrict flag,
                     uint32_t m) {
    const float p22 = g->p22, p20ie = g->p20ie, el = g->e_l, th = g->v_th, wext = g->w_ext;
    for (uint32_t i = 0; i < m; i++) {
        const float in = slot[i];
        slot[i] = 0.f;
        const float old = v[i];
        const float vn = el + p22 * (old - el) + p20ie + in + wext * (float)k[i];
        const uint16_t r = refr[i];
        const float nv = r == 0 ? vn : old;
        v[i] = nv;
        refr[i] = (uint16_t)(r - (r != 0));
        flag[i] = (uint8_t)(nv >= th);
    }
}

/* Updates neurons [i0, i1) of one group; flags threshold crossings. Returns drive events. */
DK_VECTOR_CLONES
static uint64_t update_range(dk_network *n, const dk_group_rt *g, uint32_t i0, uint32_t i1,
                             float *slot) {
    uint64_t drive = 0;
    uint32_t k[CHUNK], u[CHUNK];
    for (uint32_t a = i0; a < i1; a += CHUNK) {
        const uint32_t m = i1 - a < CHUNK ? i1 - a : CHUNK;
        if (g->n_thresholds) {
            draw_uniforms(n->rng + a, u, m);
            drive += poisson_counts(g, u, k, m);
        } else {
            for (uint32_t i = 0; i < m; i++) k[i] = 0;
        }
        lif_step(g, n->v + a, n->refr + a, slot + a, k, n->flag + a, m);
    }
    return drive;
}

/* One exact step of a NIR model group over [i0, i1) (see nir_coefficients in network.c). The
 * operation order is fixed (no contraction), so the numpy reference reproduces it bit for bit. */
DK_VECTOR_CLONES
static void model_update(dk_network *n, const dk_group_rt *g, uint32_t i0, uint32_t i1,
                         float *restrict slot, uint64_t step) {
    float *restrict v = n->v;
    uint8_t *restrict flag = n->flag;
    const float *restrict bias = step >= g->bias_start ? n->bias : NULL;
    const float el = g->e_l, am = g->a_m, gx = g->g_x, th = g->v_th;
    const bool spiking = g->spiking;
    switch (g->model) {
    case DK_MODEL_CUBA_LIF:
    case DK_MODEL_CUBA_LI: {
        float *restrict cur = n->isyn;
        const float as = g->a_s, gs = g->g_s, pvi = g->p_vi;
        for (uint32_t i = i0; i < i1; i++) {
            const float x = bias ? slot[i] + bias[i] : slot[i];
            slot[i] = 0.f;
            const float c = cur[i];
            const float nv = el + am * (v[i] - el) + pvi * c + gx * x;
            cur[i] = as * c + gs * x;
            v[i] = nv;
            flag[i] = (uint8_t)(spiking && nv > th);
        }
        break;
    }
    case DK_MODEL_IF:
        for (uint32_t i = i0; i < i1; i++) {
            const float x = bias ? slot[i] + bias[i] : slot[i];
            slot[i] = 0.f;
            const float nv = v[i] + gx * x;
            v[i] = nv;
            flag[i] = (uint8_t)(nv > th);
        }
        break;
    case DK_MODEL_THRESHOLD:
        for (uint32_t i = i0; i < i1; i++) {
            const float x = bias ? slot[i] + bias[i] : slot[i];
            slot[i] = 0.f;
            v[i] = x;
            flag[i] = (uint8_t)(x > th);
        }
        break;
    default: /* LIF, LI */
        for (uint32_t i = i0; i < i1; i++) {
            const float x = bias ? slot[i] + bias[i] : slot[i];
            slot[i] = 0.f;
            const float nv = el + am * (v[i] - el) + gx * x;
            v[i] = nv;
            flag[i] = (uint8_t)(spiking && nv > th);
        }
        break;
    }
}

/* The index of the first set flag in [i, i1), or i1: eight flags at a time while they are
 * clear (spikes are sparse: most eight-neuron words have none). */
static inline uint32_t next_flag(const uint8_t *restrict flag, uint32_t i, uint32_t i1) {
    while (i + 8 <= i1) {
        uint64_t w;
        memcpy(&w, flag + i, 8);
        if (w) break;
        i += 8;
    }
    while (i < i1 && !flag[i]) i++;
    return i;
}

/* Spikes of a NIR model group: reset to a value or by subtraction (Threshold keeps v = x). */
static void model_emit(dk_network *n, const dk_group_rt *g, uint32_t i0, uint32_t i1,
                       spike_list *out) {
    const uint8_t *restrict flag = n->flag;
    float *restrict v = n->v;
    uint64_t *restrict count = n->spike_count;
    uint32_t *restrict ids = out->ids;
    uint32_t m = out->n;
    const bool keep = g->model == DK_MODEL_THRESHOLD, sub = g->reset == DK_RESET_SUBTRACT;
    for (uint32_t i = next_flag(flag, i0, i1); i < i1; i = next_flag(flag, i + 1, i1)) {
        if (!keep) v[i] = sub ? v[i] - g->sub : g->v_reset;
        count[i]++;
        ids[m++] = i;
    }
    out->n = m;
}

/* Collects the threshold crossings of [i0, i1): reset, refractory, append to the spike list. */
static void emit(dk_network *n, const dk_group_rt *g, uint32_t i0, uint32_t i1, spike_list *out) {
    const uint8_t *restrict flag = n->flag;
    float *restrict v = n->v;
    uint16_t *restrict refr = n->refr;
    uint64_t *restrict count = n->spike_count;
    uint32_t *restrict ids = out->ids;
    uint32_t m = out->n;
    for (uint32_t i = next_flag(flag, i0, i1); i < i1; i = next_flag(flag, i + 1, i1)) {
        v[i] = g->v_reset;
        refr[i] = (uint16_t)g->ref_steps;
        count[i]++;
        ids[m++] = i;
    }
    out->n = m;
}

/* The input sums of ring slot `sl`: its own with slot_sums, else the one set being updated. */
static inline float *slot_sums(const dk_network *n, uint32_t sl) {
    return n->slot_sums ? n->ring + (size_t)sl * n->n_neurons : n->ring;
}

/* The events of segment word `sg` (first synapse `off`, on used core `core`) into the sums. */
static void add_segment(const dk_network *n, float *restrict r, uint32_t sg, uint32_t off,
                        uint32_t core) {
    const float *wtab = n->wtab;
    const uint32_t len = dk_seg_len(n, sg);
    if (n->form == DK_FORM_WIDE) {
        const uint32_t *restrict sy = n->syn + off;
        for (uint32_t i = 0; i < len; i++) r[sy[i] & 0xFFFFFFu] += wtab[sy[i] >> 24];
        return;
    }
    const uint16_t *restrict sy = n->syn16 + off;
    r += (size_t)core * n->per_core;
    if (dk_seg_uniform(n, sg)) {
        const bool compact = n->form == DK_FORM_COMPACT;
        const float w = wtab[compact ? sy[0] >> 12 : n->wid8[off]];
        const uint32_t tm = compact ? 0xFFFu : 0xFFFFu;
        for (uint32_t i = 0; i < len; i++) r[sy[i] & tm] += w;
    } else if (n->form == DK_FORM_MID) {
        const uint8_t *restrict wi = n->wid8 + off;
        for (uint32_t i = 0; i < len; i++) r[sy[i]] += wtab[wi[i]];
    } else {
        for (uint32_t i = 0; i < len; i++) r[sy[i] & 0xFFFu] += wtab[sy[i] >> 12];
    }
}

#define PREFETCH_AHEAD 8u

/* Starts fetching the synapses of the queued packet at `e` (if it is a segment packet);
 * returns the packet after it. */
static const uint32_t *prefetch_packet(const dk_network *n, const uint32_t *e,
                                       const uint32_t *end) {
    if (e >= end) return e;
    if (!e[1]) return e + 2 + 2 * (size_t)e[0];
    if (n->form == DK_FORM_WIDE) {
        __builtin_prefetch(n->syn + e[0]);
    } else {
        __builtin_prefetch(n->syn16 + e[0]);
        if (n->wid8) __builtin_prefetch(n->wid8 + e[0]);
    }
    return e + 2;
}

/* Adds the packets queued for queue `qi` (one slot, used core `core`) into the input sums, in
 * the order they were delivered, and empties the queue. */
static void replay(dk_network *n, uint32_t qi, uint32_t core) {
    /* A queue that never held a packet may have no buffer yet, and NULL + 0 is undefined. */
    if (n->qlen[qi] == 0) return;
    const uint32_t *e = n->qbuf[qi], *end = e + n->qlen[qi], *ahead = e;
    /* The packets of one queue come from many sources, so their synapses lie all over the
     * store: fetch those of the packet PREFETCH_AHEAD places ahead while this one is added. */
    for (uint32_t k = 0; k < PREFETCH_AHEAD; k++) ahead = prefetch_packet(n, ahead, end);
    while (e < end) {
        ahead = prefetch_packet(n, ahead, end);
        if (e[1]) {
            add_segment(n, n->ring, e[1], e[0], core);
            e += 2;
            continue;
        }
        const uint32_t m = e[0];
        e += 2;
        for (uint32_t k = 0; k < m; k++, e += 2) {
            float w;
            memcpy(&w, &e[1], sizeof w);
            n->ring[e[0]] += w;
        }
    }
    n->qlen[qi] = 0;
}

/* Room for `words` more words in queue `qi`; false if it could not grow (t->nomem set). */
static bool queue_room(dk_thread_ctx *t, uint32_t qi, uint64_t words) {
    dk_network *n = t->net;
    const uint64_t need = n->qlen[qi] + words;
    if (need <= n->qcap[qi]) return true;
    size_t cap = n->qcap[qi];
    uint32_t *b = dk_grow(n->qbuf[qi], &cap, (size_t)need, sizeof *b, UINT32_MAX);
    if (!b) {
        t->nomem = true;
        return false;
    }
    t->qbytes += (cap - n->qcap[qi]) * sizeof *b;
    n->qbuf[qi] = b;
    n->qcap[qi] = cap;
    return true;
}

/* The ring slot `delay` steps after the step being run (delay < n_slots). */
static inline uint32_t slot_after(const dk_thread_ctx *t, uint32_t delay) {
    const uint32_t sl = t->slot0 + delay;
    return sl >= t->net->n_slots ? sl - t->net->n_slots : sl;
}

static void thread_update(dk_thread_ctx *t, uint64_t step, spike_list *out) {
    dk_network *n = t->net;
    out->n = 0;
    const uint32_t sl = t->slot0;
    float *slot = slot_sums(n, sl);
    for (uint32_t core = t->c0; core < t->c1; core++) {
        uint32_t a = core * n->per_core, b = a + n->per_core;
        if (b > n->n_neurons) b = n->n_neurons;
        const uint32_t qi = dk_queue_index(n, sl, core);
        uint32_t *cse = n->core_slot_events + qi;
        if (*cse > t->queue_peak) t->queue_peak = *cse;
        *cse = 0;
        if (n->core_dead[core]) { /* a failed core neither integrates nor fires */
            n->qlen[qi] = 0;
            memset(slot + a, 0, (size_t)(b - a) * sizeof *slot);
            continue;
        }
        if (!n->slot_sums) replay(n, qi, core);
        for (uint32_t gi = 0; gi < n->n_groups; gi++) {
            const dk_group_rt *g = &n->groups[gi];
            uint32_t lo = a > g->start ? a : g->start, hi = b < g->end ? b : g->end;
            if (lo >= hi) continue;
            if (g->model != DK_MODEL_IAF_PSC_DELTA) {
                model_update(n, g, lo, hi, slot, step);
                if (g->spiking) model_emit(n, g, lo, hi, out);
                continue;
            }
            t->drive += update_range(n, g, lo, hi, slot);
            emit(n, g, lo, hi, out);
        }
    }
    t->spikes += out->n;
}

/* The synapses a spike of `src` has through the kernels, computed from the kernels: each run
 * of targets on one core is one packet, checked like a segment (this thread's cores only,
 * reachability, queue capacity, the KEPS share). */
static void deliver_kernels(dk_thread_ctx *t, uint32_t src, uint64_t *used) {
    dk_network *n = t->net;
    const uint32_t cu = n->cores_used, c0 = t->c0, c1 = t->c1;
    const uint32_t pc = n->per_core;
    const uint8_t *reach = n->reach + (size_t)n->src_core[src] * cu;
    for (uint32_t q = 0; q < n->n_kernels; q++) {
        const dk_kernel_rt *kr = &n->kernels[q];
        if (src < kr->k.src_first || src >= kr->src_end) continue;
        /* only this thread's cores' targets (ascending): one packet per run on one core */
        const uint32_t m = dk_kernel_window(kr, src - kr->k.src_first, c0 * pc, c1 * pc,
                                            t->ktgt, t->kw);
        const uint32_t sl = slot_after(t, kr->k.delay);
        for (uint32_t i = 0; i < m;) {
            const uint32_t core = t->ktgt[i] / pc, end = (core + 1) * pc;
            uint32_t j = i + 1;
            while (j < m && t->ktgt[j] < end) j++;
            const uint32_t len = j - i, a = i;
            i = j;
            t->packets++;
            if (!reach[core]) { t->drop_f += len; continue; }
            const uint32_t qi = dk_queue_index(n, sl, core);
            uint32_t *qc = n->core_slot_events + qi;
            if (*qc + (uint64_t)len > t->cap_per_core) { t->drop_q += len; continue; }
            if (t->rate > 0 && *used + len > t->budget) { t->drop_b += len; continue; }
            if (n->slot_sums) {
                float *restrict sums = slot_sums(n, sl);
                for (uint32_t k = a; k < j; k++) sums[t->ktgt[k]] += t->kw[k];
            } else if (!queue_room(t, qi, 2 + 2 * (uint64_t)len)) {
                t->drop_q += len;
                continue;
            }
            *qc += len;
            *used += len;
            t->core_ev[core - c0] += len;
            if (n->slot_sums) continue;
            uint32_t *e = n->qbuf[qi] + n->qlen[qi];
            e[0] = len;
            e[1] = 0;
            for (uint32_t k = a; k < j; k++) {
                e[2 + 2 * (k - a)] = t->ktgt[k];
                memcpy(&e[3 + 2 * (k - a)], &t->kw[k], sizeof(float));
            }
            n->qlen[qi] += 2 + 2 * len;
        }
    }
}

/* One packet: the synapses of segment `sg` (source reach row `reach`) into the ring, after the
 * checks a packet gets (this thread's cores only, reachability, queue capacity, the KEPS share). */
/* One packet: segment word `sg` (first synapse `off`, source reach row `reach`) queued for its
 * slot and core, after the checks a packet gets (this thread's cores only, reachability, queue
 * capacity, the KEPS share). */
static inline void deliver_segment(dk_thread_ctx *t, uint32_t sg, uint32_t off,
                                   const uint8_t *reach, uint64_t *used) {
    dk_network *n = t->net;
    const uint32_t core = dk_seg_core(n, sg), len = dk_seg_len(n, sg);
    if (core < t->c0 || core >= t->c1) return;
    t->packets++;
    if (!reach[core]) { t->drop_f += len; return; }
    const uint32_t sl = slot_after(t, dk_seg_delay(n, sg));
    const uint32_t qi = dk_queue_index(n, sl, core);
    uint32_t *q = n->core_slot_events + qi;
    if (*q + (uint64_t)len > t->cap_per_core) { t->drop_q += len; return; }
    if (t->rate > 0 && *used + len > t->budget) { t->drop_b += len; return; }
    if (n->slot_sums) {
        add_segment(n, slot_sums(n, sl), sg, off, core);
    } else if (!queue_room(t, qi, 2)) {
        t->drop_q += len;
        return;
    }
    *q += len;
    *used += len;
    t->core_ev[core - t->c0] += len;
    if (n->slot_sums) return;
    uint32_t *e = n->qbuf[qi] + n->qlen[qi];
    e[0] = off;
    e[1] = sg;
    n->qlen[qi] += 2;
}

#define CORE_BLOCK 256u
#define BY_CORE_SUMS_BYTES 16384u /* well inside a 32 KiB L1 data cache */

/* deliver_list, core by core: for each of this worker's cores, the packets every spike of a
 * block of the list sends it, in list order. A source's segments are sorted by target core, so
 * one cursor per spike walks them. Every (slot, target) sum gets the same additions in the same
 * order as spike by spike, but while one core is served only its own sums are written. */
static void deliver_by_core(dk_thread_ctx *t, const spike_list *list, uint64_t *used) {
    const dk_network *n = t->net;
    uint32_t cur[CORE_BLOCK], end[CORE_BLOCK], off[CORE_BLOCK];
    for (uint32_t b0 = 0; b0 < list->n; b0 += CORE_BLOCK) {
        const uint32_t m = list->n - b0 < CORE_BLOCK ? list->n - b0 : CORE_BLOCK;
        for (uint32_t i = 0; i < m; i++) {
            const uint32_t src = list->ids[b0 + i];
            cur[i] = dk_first_seg(n, src);
            end[i] = dk_first_seg(n, src + 1);
            off[i] = cur[i] < end[i] ? n->src_syn[src] : 0;
            while (cur[i] < end[i] && dk_seg_core(n, n->seg[cur[i]]) < t->c0)
                off[i] += dk_seg_len(n, n->seg[cur[i]++]);
        }
        for (uint32_t c = t->c0; c < t->c1; c++) {
            for (uint32_t i = 0; i < m; i++) {
                const uint32_t src = list->ids[b0 + i];
                const uint8_t *reach = n->reach + (size_t)n->src_core[src] * n->cores_used;
                while (cur[i] < end[i] && dk_seg_core(n, n->seg[cur[i]]) == c) {
                    const uint32_t sg = n->seg[cur[i]++];
                    deliver_segment(t, sg, off[i], reach, used);
                    off[i] += dk_seg_len(n, sg);
                }
            }
        }
    }
}

/* Core by core when it pays and keeps the results: the sums one core's packets can reach
 * (its neurons x the distinct delays) stay in the L1 cache (on the benchmarks: Brunel, one
 * delay, yes; 31 delays, no: measured slower); no kernels (their targets are computed per
 * spike) and no KEPS share (its budget is spent in spike order). */
static bool by_core(const dk_thread_ctx *t) {
    const dk_network *n = t->net;
    return !n->n_kernels && t->rate <= 0 &&
           (size_t)n->per_core * n->n_delays * sizeof(float) <= BY_CORE_SUMS_BYTES;
}

static void deliver_list(dk_thread_ctx *t, const spike_list *list, uint64_t *used) {
    dk_network *n = t->net;
    if (by_core(t)) {
        deliver_by_core(t, list, used);
        return;
    }
    for (uint32_t s = 0; s < list->n; s++) {
        const uint32_t src = list->ids[s];
        const uint32_t *sg = n->seg + dk_first_seg(n, src), *se = n->seg + dk_first_seg(n, src + 1);
        const uint8_t *reach = n->reach + (size_t)n->src_core[src] * n->cores_used;
        /* A source's segments ascend by core: none, or only those from the first on this
         * worker's cores up to the last, are this worker's (layered networks: most spikes
         * reach only one worker). */
        if (sg < se && dk_seg_core(n, se[-1]) >= t->c0 && dk_seg_core(n, *sg) < t->c1) {
            uint32_t off = n->src_syn[src];
            for (; dk_seg_core(n, *sg) < t->c0; sg++) off += dk_seg_len(n, *sg);
            for (; sg < se && dk_seg_core(n, *sg) < t->c1; off += dk_seg_len(n, *sg++))
                deliver_segment(t, *sg, off, reach, used);
        }
        if (n->n_kernels) deliver_kernels(t, src, used);
    }
}

static void record_spikes(dk_network *n, const spike_list *list, uint64_t step) {
    dk_spike_ring *o = &n->out;
    for (uint32_t s = 0; s < list->n; s++) {
        uint32_t id = list->ids[s];
        if (!n->recorded[id]) continue;
        if (o->count == o->cap) { n->tel.dropped_output++; continue; }
        uint32_t at = (o->head + o->count) % o->cap;
        o->steps[at] = step;
        o->ids[at] = id;
        o->count++;
    }
}

/* Moves injected spikes due at `step` into the input list (thread 0, before the barrier). */
static uint32_t take_inputs(dk_network *n, uint64_t step, spike_list *out) {
    dk_spike_ring *in = &n->in;
    out->n = 0;
    while (in->count && in->steps[in->head] == step) {
        out->ids[out->n++] = n->n_neurons + in->ids[in->head];
        n->spike_count[n->n_neurons + in->ids[in->head]]++;
        in->head = (in->head + 1) % in->cap;
        in->count--;
    }
    return out->n;
}

/* The router's bandwidth for the step (router.c): false when its spikes go in bulk (they cannot
 * overfill a link); true when thread 0 routed them one by one into n->rt.routed, which every
 * worker then delivers (after a second barrier). */
static bool route_step(dk_thread_ctx *t, uint64_t step, uint32_t par) {
    dk_network *n = t->net;
    const spike_list *lists[DK_MAX_THREADS + 1];
    uint64_t total = 0;
    for (uint32_t j = 0; j < t->n_threads; j++) {
        lists[j] = &t->all[j].lists[par];
        total += lists[j]->n;
    }
    lists[t->n_threads] = &t->all[0].inputs[par];
    total += lists[t->n_threads]->n;
    if (!dk_router_needed(n, step, total)) {
        if (t->tid == 0) dk_router_bulk(n, step, total);
        return false;
    }
    if (t->tid == 0) dk_router_step(n, step, lists, t->n_threads + 1);
    barrier_wait(t->barrier, t->sense);
    return true;
}

static void *thread_main(void *arg) {
    dk_thread_ctx *t = arg;
    dk_network *n = t->net;
    uint32_t sense = 0;
    t->sense = &sense;
    uint64_t step0 = n->step;
    unsigned go;
    while ((go = atomic_load_explicit(t->go, memory_order_acquire)) == 0) sched_yield();
    if (go != 1) return NULL;
    for (uint64_t k = 0; k < t->steps; k++) {
        const uint64_t step = step0 + k;
        const uint32_t par = (uint32_t)(step & 1);
        uint64_t t0 = now_ns();
        t->slot0 = (uint32_t)(step % n->n_slots);
        thread_update(t, step, &t->lists[par]);
        if (t->tid == 0) t->inputs_taken += take_inputs(n, step, &t->inputs[par]);
        uint64_t t1 = now_ns();
        barrier_wait(t->barrier, &sense);
        uint64_t t2 = now_ns();
        if (t->tid == 0) {
            for (uint32_t j = 0; j < t->n_threads; j++) record_spikes(n, &t->all[j].lists[par], step);
        }
        /* KEPS share as a token bucket: fractional shares add up across steps, and at most
         * one step of unspent share carries over, so the long-run rate is the share. */
        if (t->rate > 0) {
            t->credit = t->credit + t->rate;
            if (t->credit > 2 * t->rate + 1) t->credit = 2 * t->rate + 1;
            t->budget = (uint64_t)t->credit;
        }
        /* Same order for any thread count: neurons in ascending order, then inputs. */
        uint64_t used = 0;
        if (route_step(t, step, par)) {
            deliver_list(t, &n->rt.routed, &used);
        } else {
            for (uint32_t j = 0; j < t->n_threads; j++)
                deliver_list(t, &t->all[j].lists[par], &used);
            deliver_list(t, &t->all[0].inputs[par], &used);
        }
        t->events += used;
        if (t->rate > 0) t->credit -= (double)used;
        uint64_t t3 = now_ns();
        t->update_ns += t1 - t0;
        t->deliver_ns += t3 - t2;
    }
    /* Lists of the last step are read by others: wait for everyone before returning. */
    barrier_wait(t->barrier, &sense);
    return NULL;
}

double dk_keps_of(uint64_t events, uint64_t steps, double dt_ms) {
    const double model_s = (double)steps * dt_ms * 1e-3;
    return model_s > 0 ? (double)events / model_s / (double)DK_EVENTS_PER_KEPS : 0.0;
}

double dk_keps_events_per_step(double keps, double dt_ms) {
    return keps * (double)DK_EVENTS_PER_KEPS * dt_ms * 1e-3;
}

/* The work a worker's core `c` did in a run of `steps`: the events it received and its
 * neuron-steps, weighed by what one of each costs on this network on average. */
static double core_model_work(const dk_network *n, const dk_thread_ctx *t, uint32_t c,
                              uint64_t steps, double ev_cost, double neuron_cost) {
    const uint64_t a = (uint64_t)c * n->per_core;
    const uint64_t m = a >= n->n_neurons ? 0 : n->n_neurons - a;
    const double neurons = (double)(m < n->per_core ? m : n->per_core);
    return (double)t->core_ev[c - t->c0] * ev_cost + (double)steps * neurons * neuron_cost;
}

/* The first core of each of the nt workers (bound[nt] = cores used). Equal numbers of cores;
 * but once the network has run, and if no KEPS share splits its budget by cores, equal busy
 * time: each core weighs the time charged to it so far (charge_cores), so that a feed-forward
 * model whose early layers take most events, or a worker on a slower CPU, does not leave the
 * other idle. The ranges stay contiguous and ascending, so delivery order, and so every
 * result, is the same for any split. */
static void thread_bounds(const dk_network *n, const dk_partition *p, uint32_t nt,
                          uint32_t *bound) {
    const uint32_t cu = n->cores_used;
    for (uint32_t j = 0; j <= nt; j++) bound[j] = (uint32_t)((uint64_t)cu * j / nt);
    if (nt == 1 || p->keps_budget || !n->tel.steps) return;
    double total = 0.0, cum = 0.0;
    for (uint32_t c = 0; c < cu; c++) total += n->core_ns[c];
    if (!(total > 0)) return;
    /* Each boundary goes where the work before it is nearest its share: of the two cores
     * around the ideal point, the closer side. (Taking the first core that reaches the share
     * gave 3 of 4 equal cores to one worker whenever the first two fell a hair short.) */
    uint32_t j = 1;
    for (uint32_t c = 0; c < cu && j < nt; c++) {
        const double before = cum;
        cum += n->core_ns[c];
        while (j < nt && cum >= total * j / nt) {
            const double target = total * j / nt;
            bound[j++] = cum - target <= target - before ? c + 1 : c;
        }
    }
    /* every worker keeps at least one core (nt <= cores used) */
    for (j = 1; j < nt; j++) {
        const uint32_t lo = bound[j - 1] + 1, hi = cu - (nt - j);
        bound[j] = bound[j] < lo ? lo : bound[j] > hi ? hi : bound[j];
    }
}

/* Charges each worker's busy time of a run (update and delivery) to its cores, in proportion
 * to their modelled work (core_model_work, with every worker's delivery time over all events
 * and update time over all neuron-steps as the costs). Within a worker the model splits the
 * time; between workers the clock does: on the conv model an event of the late layers costs
 * about twice one of the early layers, and the model alone (an event and a neuron-step
 * counted alike) gave the first worker 1.5 times the second's busy time. */
static void charge_cores(dk_network *n, const dk_thread_ctx *ctx, uint32_t nt, uint64_t steps) {
    if (!steps || !n->n_neurons) return; /* nothing measured, and no cost to divide by */
    const double ev_cost = n->tel.events ? (double)n->busy_deliver_ns / (double)n->tel.events
                                         : 1.0;
    const double neuron_cost =
        (double)n->busy_update_ns / ((double)n->tel.steps * (double)n->n_neurons);
    for (uint32_t j = 0; j < nt; j++) {
        const dk_thread_ctx *t = &ctx[j];
        const double busy = (double)(t->update_ns + t->deliver_ns);
        double w = 0.0;
        for (uint32_t c = t->c0; c < t->c1; c++)
            w += core_model_work(n, t, c, steps, ev_cost, neuron_cost);
        for (uint32_t c = t->c0; c < t->c1; c++)
            n->core_ns[c] += w > 0 ? busy * core_model_work(n, t, c, steps, ev_cost, neuron_cost) / w
                                   : busy / (double)(t->c1 - t->c0);
    }
}

/* Worker j's share of a run: its cores (from `bound`), its KEPS rate, its spike and kernel
 * buffers. */
static int thread_setup(dk_thread_ctx *ctx, uint32_t j, uint32_t nt, dk_network *n,
                        dk_partition *p, uint64_t steps, uint64_t cap, double per_step,
                        const uint32_t *bound) {
    dk_thread_ctx *t = &ctx[j];
    t->net = n;
    t->part = p;
    t->tid = j;
    t->n_threads = nt;
    t->c0 = bound[j];
    t->c1 = bound[j + 1];
    t->steps = steps;
    t->cap_per_core = cap;
    /* A share of 2^53 events a step or more is unlimited (and stays exact in a double). */
    double share = per_step * (t->c1 - t->c0) / n->cores_used;
    t->rate = p->keps_budget && share < 9007199254740992.0 ? share : 0.0;
    t->all = ctx;
    int rc = DK_OK;
    uint32_t own = (t->c1 - t->c0) * n->per_core;
    for (int b = 0; b < 2; b++) {
        t->lists[b].ids = dk_alloc(((size_t)own + 1) * sizeof(uint32_t));
        t->inputs[b].ids = dk_alloc(((size_t)(j == 0 ? n->in.cap : 0) + 1) * sizeof(uint32_t));
        if (!t->lists[b].ids || !t->inputs[b].ids) rc = DK_E_NOMEM;
    }
    t->core_ev = dk_alloc(((size_t)(t->c1 - t->c0) + 1) * sizeof *t->core_ev);
    if (!t->core_ev) rc = DK_E_NOMEM;
    if (n->n_kernels) {
        t->ktgt = dk_alloc(((size_t)n->kernel_fan + 1) * sizeof *t->ktgt);
        t->kw = dk_alloc(((size_t)n->kernel_fan + 1) * sizeof *t->kw);
        if (!t->ktgt || !t->kw) rc = DK_E_NOMEM;
    }
    return rc;
}

static void threads_free(dk_thread_ctx *ctx, uint32_t nt) {
    if (!ctx) return;
    for (uint32_t j = 0; j < nt; j++) {
        for (int b = 0; b < 2; b++) {
            dk_free(ctx[j].lists[b].ids);
            dk_free(ctx[j].inputs[b].ids);
        }
        dk_free(ctx[j].ktgt);
        dk_free(ctx[j].core_ev);
        dk_free(ctx[j].kw);
    }
    dk_free(ctx);
}

/* Runs the nt workers (this thread is worker 0); DK_E_INTERNAL if one could not start. */
static int threads_run(dk_thread_ctx *ctx, uint32_t nt) {
    pthread_t *tids = dk_alloc(nt * sizeof *tids);
    if (!tids) return DK_E_NOMEM;
    barrier_t barrier = {.n = nt};
    atomic_init(&barrier.count, 0);
    atomic_init(&barrier.sense, 0);
    atomic_uint go;
    atomic_init(&go, 0);
    for (uint32_t j = 0; j < nt; j++) {
        ctx[j].barrier = &barrier;
        ctx[j].go = &go;
    }
    uint32_t started = 1;
    for (uint32_t j = 1; j < nt; j++) {
        if (pthread_create(&tids[j], NULL, thread_main, &ctx[j]) != 0) break;
        started++;
    }
    /* Workers wait for the go signal; if one could not start, the others are sent home. */
    atomic_store_explicit(&go, started == nt ? 1u : 2u, memory_order_release);
    if (started == nt) thread_main(&ctx[0]);
    for (uint32_t j = 1; j < started; j++) pthread_join(tids[j], NULL);
    dk_free(tids);
    if (started != nt)
        return dk_fail(DK_E_INTERNAL, "could not start worker thread %u of %u", started, nt);
    return DK_OK;
}

/* Adds the workers' counts of a run of `steps` that took `wall` ns to the telemetry. */
static void telemetry_add(dk_network *n, const dk_thread_ctx *ctx, uint32_t nt, uint64_t steps,
                          uint64_t wall) {
    n->step += steps;
    dk_telemetry *tel = &n->tel;
    tel->steps += steps;
    tel->wall_ns += wall;
    tel->update_ns += ctx[0].update_ns;
    tel->deliver_ns += ctx[0].deliver_ns;
    tel->threads = nt;
    for (uint32_t j = 0; j < nt; j++) {
        const dk_thread_ctx *t = &ctx[j];
        n->busy_update_ns += t->update_ns;
        n->busy_deliver_ns += t->deliver_ns;
        tel->spikes += t->spikes;
        tel->input_spikes += t->inputs_taken;
        tel->events += t->events;
        tel->drive_events += t->drive;
        tel->packets += t->packets;
        tel->dropped_queue += t->drop_q;
        tel->dropped_fault += t->drop_f;
        tel->dropped_budget += t->drop_b;
        if (t->queue_peak > tel->queue_peak) tel->queue_peak = t->queue_peak;
        n->qbytes += t->qbytes;
        for (uint32_t c = t->c0; c < t->c1; c++) n->core_events[c] += t->core_ev[c - t->c0];
    }
    charge_cores(n, ctx, nt, steps);
    tel->keps = dk_keps_of(tel->events, tel->steps, (double)n->dt_ms);
    tel->host_keps = tel->wall_ns ? (double)tel->events / ((double)tel->wall_ns * 1e-9) /
                                        (double)DK_EVENTS_PER_KEPS
                                  : 0.0;
}

/* Runs `steps` steps of partition p's network (partition lock held) on up to `threads`. */
static int run_locked(dk_engine *e, dk_partition *p, uint64_t steps, uint32_t threads) {
    dk_network *n = p->net;
    if (!n) return dk_fail(DK_E_STATE, "partition %u has no network loaded", p->id);
    pthread_mutex_lock(&e->lock);
    const dk_chip *c = &e->chips[p->chip];
    if (n->fault_epoch != c->fault_epoch) dk_network_refresh_faults(c, p);
    if (n->rt.share_epoch != e->share_epoch) dk_router_shares(e, p);
    const uint64_t cap = c->prof.core_queue_events;
    pthread_mutex_unlock(&e->lock);
    if (steps == 0) return DK_OK;
    n->rt.pend_seen[(n->step + 1) & 1] = n->rt.pend_n; /* what the first step finds waiting */
    const uint32_t nt = threads < n->cores_used ? threads : n->cores_used;
    dk_thread_ctx *ctx = dk_alloc(nt * sizeof *ctx);
    if (!ctx) return DK_E_NOMEM;
    /* KEPS share: thousands of events per simulated second, spread over the threads' cores. */
    double per_step = dk_keps_events_per_step((double)p->keps_budget, (double)n->dt_ms);
    int rc = DK_OK;
    uint32_t bound[DK_MAX_THREADS + 1];
    thread_bounds(n, p, nt, bound);
    for (uint32_t j = 0; j < nt; j++) {
        int r = thread_setup(ctx, j, nt, n, p, steps, cap, per_step, bound);
        if (r) rc = r;
    }
    if (!rc) {
        uint64_t t0 = now_ns();
        rc = threads_run(ctx, nt);
        if (!rc) telemetry_add(n, ctx, nt, steps, now_ns() - t0);
        for (uint32_t j = 0; j < nt && !rc; j++)
            if (ctx[j].nomem)
                rc = dk_fail(DK_E_NOMEM, "out of memory growing a delay queue (packets dropped)");
    }
    threads_free(ctx, nt);
    return rc;
}

int dk_run(dk_engine *e, uint32_t part, uint64_t steps, uint32_t threads) {
    if (threads == 0 || threads > DK_MAX_THREADS)
        return dk_fail(DK_E_INVALID, "threads must be 1..%u", DK_MAX_THREADS);
    if (steps > (1ull << 40)) return dk_fail(DK_E_INVALID, "steps %llu is implausibly large",
                                             (unsigned long long)steps);
    dk_partition *p;
    int rc = dk_part_get(e, part, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    rc = run_locked(e, p, steps, threads);
    pthread_mutex_unlock(&p->lock);
    dk_part_put(e, p);
    return rc;
}
