/*
 * Fuzz target for the Darwin engine: bytes become a chip profile, a network description (groups,
 * synapse arrays with possibly invalid values, dt, seeds) and a sequence of API calls. Every
 * call must return one of the documented codes; crashes, leaks and UB are found by ASan/UBSan.
 *
 * With libFuzzer (clang is not required by the build; when it is installed):
 *   clang -std=c11 -g -O1 -D_GNU_SOURCE -DDARWIN_LIBFUZZER -fsanitize=fuzzer,address,undefined
 *     -Inative/include -Inative/src -pthread native/tests/fuzz_engine.c native/src/[a-z]*.c
 *     -lm -o native/out/fuzz_engine_lf && native/out/fuzz_engine_lf -max_total_time=60
 * Without it (gcc), the main() below generates and mutates inputs from a fixed seed:
 *   native/out/fuzz_engine [--seconds N | --runs N] [--seed S]
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "darwin_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- reading the input; past its end every read is zero ---- */

typedef struct {
    const uint8_t *p;
    size_t n, i;
} reader;

static uint8_t u8(reader *r) { return r->i < r->n ? r->p[r->i++] : 0; }

static uint16_t u16(reader *r) { return (uint16_t)(u8(r) | (uint32_t)u8(r) << 8); }

static uint32_t u32(reader *r) { return u16(r) | (uint32_t)u16(r) << 16; }

static uint64_t u64(reader *r) { return u32(r) | (uint64_t)u32(r) << 32; }

static bool more(const reader *r) { return r->i < r->n; }

/* Mostly plausible values, sometimes any bit pattern (NaN, infinities, subnormals). */
static float fval(reader *r, float plausible) {
    static const float table[] = {0.f, 1.f, -1.f, 0.5f, 2.f, 5.f, 10.f, 20.f, 100.f, -70.f, 1e-3f, 1e6f};
    uint8_t sel = u8(r);
    if (sel < 232) return plausible;
    if (sel < 244) return table[sel % (sizeof table / sizeof table[0])];
    if (sel < 250) return (float)(int8_t)u8(r) / 4.f;
    uint32_t bits = u32(r);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void fail(const char *what, int rc) {
    fprintf(stderr, "fuzz_engine: %s returned %d (%s)\n", what, rc, dk_last_error());
    abort();
}

/* Errors are fine; only the documented ones, with a message, and never NOMEM or INTERNAL at
 * these sizes. */
static int checked(const char *what, int rc) {
    if (rc == DK_OK) return rc;
    if (rc < DK_E_STATE || rc > DK_E_INVALID || rc == DK_E_NOMEM) fail(what, rc);
    if (dk_last_error()[0] == '\0') fail(what, rc);
    return rc;
}
#define CALL(expr) checked(#expr, (expr))

/* ---- the network description ---- */

enum { MAX_SYN = 600, SLOTS = 4 };

typedef struct {
    dk_group groups[DK_MAX_GROUPS];
    uint32_t src[MAX_SYN], dst[MAX_SYN];
    float weight[MAX_SYN];
    uint16_t delay[MAX_SYN];
    float bias[160];
    dk_kernel kernels[3];
    float kweights[3][64];
    dk_network_desc desc;
} net_buf;

/* Up to three kernels over the sources, small and mostly plausible; sometimes out of range. */
static void decode_kernels(reader *r, net_buf *b, uint32_t n_src, uint32_t n_neurons) {
    uint32_t nk = u8(r) % 4u;
    for (uint32_t q = 0; q < nk; q++) {
        dk_kernel *k = &b->kernels[q];
        uint32_t groups = 1 + u8(r) % 2u;
        *k = (dk_kernel){
            .c_in = groups * (1 + u8(r) % 2u), .h_in = 1 + u8(r) % 5u, .w_in = 1 + u8(r) % 5u,
            .c_out = groups * (1 + u8(r) % 2u), .h_out = 1 + u8(r) % 5u, .w_out = 1 + u8(r) % 5u,
            .k_h = 1 + u8(r) % 3u, .k_w = 1 + u8(r) % 3u,
            .stride_h = 1 + u8(r) % 2u, .stride_w = 1 + u8(r) % 2u,
            .pad_h = u8(r) % 3u, .pad_w = u8(r) % 3u, .dil_h = 1 + u8(r) % 2u,
            .dil_w = 1 + u8(r) % 2u, .groups = groups, .delay = (uint16_t)(1 + u8(r) % 8u),
            .weight = b->kweights[q]};
        uint32_t n_in = k->c_in * k->h_in * k->w_in, n_out = k->c_out * k->h_out * k->w_out;
        k->src_first = n_src > n_in ? u16(r) % (n_src - n_in + 1) : 0;
        k->dst_first = n_neurons > n_out ? u16(r) % (n_neurons - n_out + 1) : 0;
        uint32_t nw = k->c_out * (k->c_in / k->groups) * k->k_h * k->k_w; /* <= 36 */
        for (uint32_t i = 0; i < nw && i < 64; i++) b->kweights[q][i] = fval(r, (float)(int8_t)u8(r) / 16.f);
        uint8_t spoil = u8(r);
        if (spoil == 1) k->groups = 3;
        if (spoil == 2) k->stride_h = 0;
        if (spoil == 3) k->src_first = n_src;
        if (spoil == 4) k->delay = 0;
        if (spoil == 5) k->weight = NULL;
    }
    b->desc.n_kernels = nk;
    b->desc.kernels = nk ? b->kernels : NULL;
}

static void decode_network(reader *r, net_buf *b) {
    memset(&b->desc, 0, sizeof b->desc);
    uint32_t n_neurons = u8(r) % 160u;
    if (u8(r) == 0xFF) n_neurons = u32(r) % 100000u; /* rarely, more than fits */
    uint32_t n_inputs = u8(r) % 6u;
    uint32_t n_groups = 1 + u8(r) % 4u;
    if (u8(r) == 0xFE) n_groups = u8(r) % (DK_MAX_GROUPS + 2u);
    uint32_t left = n_neurons;
    for (uint32_t g = 0; g < n_groups && g < DK_MAX_GROUPS; g++) {
        dk_group *gr = &b->groups[g];
        uint32_t count = g + 1 == n_groups ? left : (left ? u8(r) % (left + 1) : 0);
        if (u8(r) == 0xFD) count += 1; /* rarely, groups that do not sum up */
        left -= count <= left ? count : left;
        gr->count = count;
        gr->tau_m = fval(r, 10.f);
        gr->v_th = fval(r, 10.f);
        gr->v_reset = fval(r, 0.f);
        gr->e_l = fval(r, 0.f);
        gr->i_e_mv_per_ms = fval(r, (float)(u8(r) % 4) * 0.5f);
        gr->t_ref = fval(r, (float)(u8(r) % 3));
        gr->v_init = fval(r, (float)(u8(r) % 12));
        gr->poisson_rate_hz = fval(r, (float)(u8(r) % 4) * 500.f);
        gr->poisson_weight = fval(r, 3.f);
        gr->model = 0;
        gr->reset = 0;
        gr->tau_syn = gr->r = gr->w_in = 0.f;
        gr->bias_start = 0;
        if (u8(r) < 96) { /* a NIR model: the iaf_psc_delta fields usually zero */
            gr->model = (int32_t)(u8(r) % (DK_N_MODELS + 1u));
            gr->reset = (int32_t)(u8(r) % 3u);
            gr->tau_syn = fval(r, 5.f);
            gr->r = fval(r, 1.f);
            gr->w_in = fval(r, 1.f);
            gr->bias_start = u8(r) % 4u;
            if (u8(r) < 224) {
                gr->t_ref = gr->i_e_mv_per_ms = 0.f;
                gr->poisson_rate_hz = gr->poisson_weight = 0.f;
            }
        }
    }
    uint32_t n_src = n_neurons + n_inputs;
    uint32_t ns = u8(r) < 240 ? u8(r) % 97u : u16(r) % (MAX_SYN + 1u); /* leave bytes for ops */
    bool bad = u8(r) < 16; /* a few out-of-range values somewhere */
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t range = n_src ? n_src : 1;
        b->src[i] = u16(r) % range;
        b->dst[i] = u16(r) % (n_neurons ? n_neurons : 1);
        b->weight[i] = fval(r, (float)(int8_t)u8(r) / 16.f);
        b->delay[i] = (uint16_t)(1 + u8(r) % 8u);
        if (bad) {
            uint8_t k = u8(r);
            if (k == 1) b->src[i] = n_src + u8(r);
            if (k == 2) b->dst[i] = n_neurons + u8(r);
            if (k == 3) b->delay[i] = (uint16_t)(u16(r) % 300u);
        }
    }
    static const float dts[] = {1.f, 0.1f, 0.5f, 2.f, 10.f, 1e-4f, 0.f, -1.f, 11.f, NAN};
    uint8_t sel = u8(r);
    float dt = dts[sel < 224 ? sel % 6u : sel % 10u]; /* invalid ones only rarely */
    if (sel >= 250) {
        uint32_t bits = u32(r);
        memcpy(&dt, &bits, sizeof dt);
    }
    b->desc = (dk_network_desc){.n_neurons = n_neurons, .n_inputs = n_inputs, .n_groups = n_groups,
                                .groups = b->groups, .n_synapses = ns, .src = b->src,
                                .dst = b->dst, .weight = b->weight, .delay = b->delay,
                                .dt_ms = dt, .seed = u64(r)};
    if (u8(r) == 0xFC) b->desc.src = NULL; /* NULL arrays with synapses */
    if (u8(r) < 64 && n_neurons <= 160) {
        for (uint32_t i = 0; i < n_neurons; i++) b->bias[i] = fval(r, 0.f);
        b->desc.bias = b->bias;
    }
    if (u8(r) < 96) decode_kernels(r, b, n_src, n_neurons);
}

/* ---- the operations ---- */

/* How much of the engine the inputs reached; printed by the stand-alone driver. */
static unsigned long long n_loads, n_runs, n_spikes_read;

typedef struct {
    bool live, loaded;
    uint32_t id;
    uint32_t n_neurons, n_src;
    uint64_t step;
} slot;

static void query(dk_engine *e, slot *s, uint32_t chip, uint32_t n_links, reader *r) {
    dk_telemetry t;
    uint64_t *buf = NULL;
    if (CALL(dk_telemetry_get(e, s->id, &t)) == DK_OK) {
        if (t.steps != s->step || t.cores_used == 0) fail("telemetry steps/cores", (int)t.steps);
        buf = calloc(t.cores_used, sizeof *buf);
        if (!buf) abort();
        CALL(dk_core_events(e, s->id, buf, t.cores_used));
        free(buf);
    }
    if (s->loaded) {
        buf = calloc(s->n_src + (size_t)n_links + 1, sizeof *buf);
        float *v = calloc(s->n_neurons + 1u, sizeof *v);
        if (!buf || !v) abort();
        CALL(dk_spike_counts(e, s->id, buf, s->n_src));
        CALL(dk_link_events(e, s->id, buf, n_links));
        CALL(dk_link_stats(e, s->id, u8(r) & 1 ? buf : NULL, buf, u8(r) & 1 ? buf : NULL,
                           u8(r) < 250 ? n_links : n_links + 1));
        uint32_t *users = calloc((size_t)n_links + 1, sizeof *users);
        if (!users) abort();
        if (CALL(dk_link_users(e, s->id, users, u8(r) < 250 ? n_links : n_links + 1)) == DK_OK)
            for (uint32_t l = 0; l < n_links; l++)
                if (users[l] > SLOTS) fail("link users", (int)users[l]);
        free(users);
        CALL(dk_membrane(e, s->id, v, s->n_neurons));
        float cur[8];
        uint32_t first = u8(r) % (s->n_neurons + 2u), cnt8 = u8(r) % 9u;
        CALL(dk_potentials(e, s->id, first, cnt8, cnt8 && first + cnt8 <= s->n_neurons ? v + first : cur, u8(r) & 1 ? cur : NULL));
        uint32_t core = 0;
        CALL(dk_neuron_core(e, s->id, u8(r) % (s->n_neurons + 1u), &core));
        free(buf);
        free(v);
    }
    uint32_t cores[16], cnt = 0, ch = 0, ids[4];
    int32_t mode = 0;
    uint64_t budget = 0;
    CALL(dk_partition_cores(e, s->id, &ch, cores, u8(r) % 17u, &cnt, &mode, &budget));
    CALL(dk_partition_ids(e, ids, u8(r) % 5u, &cnt));
    CALL(dk_partition_count(e, &cnt));
    uint32_t some[2] = {u8(r), u8(r)};
    double sat = 0;
    CALL(dk_saturation(e, chip, some, u8(r) % 3u, &sat));
    if (sat < 0) fail("saturation below zero", 0);
    dk_chip_info ci;
    dk_domain_info di;
    dk_core_info ki;
    int32_t li = 0;
    CALL(dk_chip_info_get(e, chip, &ci));
    CALL(dk_domain_info_get(e, chip, u8(r) % 40u, &di));
    CALL(dk_core_info_get(e, chip, u8(r), &ki));
    CALL(dk_link_index(e, chip, u8(r) % 8u, u8(r) % 8u, u8(r) % 5u, &li));
}

/* Spikes of slot `from` over the fabric link to slot `s` (chips of one fabric, or refused). */
static void fabric_op(dk_engine *e, const slot *from, const slot *s, const uint64_t *steps,
                      const uint32_t *inputs, uint32_t n) {
    uint64_t at[24];
    uint32_t sent = 0;
    int rc = CALL(dk_fabric_send(e, from->id, s->id, steps, inputs, n, at, &sent));
    if (sent > n) fail("fabric sent count", (int)sent);
    uint32_t carried = 0;
    for (uint32_t i = 0; rc != DK_E_INVALID && rc != DK_E_NOT_FOUND && rc != DK_E_STATE && i < n;
         i++) {
        if (at[i] == UINT64_MAX) continue;
        carried++;
        if (at[i] < steps[i] || at[i] - steps[i] > DK_LINK_BACKLOG_STEPS)
            fail("fabric step", (int)i);
    }
    if ((rc == DK_OK || rc == DK_E_OVERFLOW) && carried != sent) fail("fabric carried", (int)sent);
    dk_fabric_stats fs;
    CALL(dk_fabric_link_stats(e, 0, 1, &fs));
    if (fs.peak > fs.capacity) fail("fabric link over its capacity", (int)fs.peak);
}

static void run_ops(dk_engine *e, reader *r, net_buf *net, uint32_t chip, uint32_t n_cores,
                    uint32_t n_domains, uint32_t n_links) {
    slot slots[SLOTS];
    memset(slots, 0, sizeof slots);
    /* Most inputs start with a partition over every core and the network loaded, so that the
     * operations reach the simulation instead of stopping at validation. */
    if (u8(r) < 224) {
        uint32_t *all = calloc(n_cores, sizeof *all), id = 0;
        if (!all) abort();
        for (uint32_t i = 0; i < n_cores; i++) all[i] = i;
        if (CALL(dk_partition_create(e, chip, all, n_cores, DK_PART_EXCLUSIVE, 0, &id)) != DK_OK)
            fail("a partition over a free chip", -1);
        free(all);
        slots[0] = (slot){.live = true, .id = id};
        if (CALL(dk_network_load(e, id, &net->desc)) == DK_OK) {
            n_loads++;
            slots[0].loaded = true;
            slots[0].n_neurons = net->desc.n_neurons;
            slots[0].n_src = net->desc.n_neurons + net->desc.n_inputs;
            uint32_t rec[4] = {0, 1, 2, 3};
            uint32_t nrec = net->desc.n_neurons < 4 ? net->desc.n_neurons : 4;
            CALL(dk_record(e, id, rec, nrec, 1 + u8(r) % 16u));
        }
    }
    for (int op = 0; op < 64 && more(r); op++) {
        uint8_t which = u8(r);
        slot *s = &slots[which < 128 ? 0 : which % SLOTS];
        uint8_t kind = u8(r) % 16u;
        switch (kind) {
        case 0:
        case 1: { /* create a partition from cores or domains */
            if (s->live) break;
            uint32_t list[8], n = 1 + u8(r) % 8u;
            for (uint32_t i = 0; i < n; i++)
                list[i] = u8(r) % (kind == 0 ? n_cores + 2 : n_domains + 2);
            int32_t mode = (int32_t)(u8(r) % 3u);
            uint64_t budget = u8(r) < 200 ? 0 : (u8(r) < 128 ? u8(r) : u64(r));
            uint32_t id = 0, on = u8(r) < 64 ? 1u - chip : chip; /* chip 1: the fabric's other */
            int rc = kind == 0
                ? CALL(dk_partition_create(e, on, list, n, mode, budget, &id))
                : CALL(dk_partition_create_domains(e, on, list, n, mode, budget, &id));
            if (rc == DK_OK) *s = (slot){.live = true, .id = id};
            break;
        }
        case 2: /* destroy */
            if (s->live) {
                if (CALL(dk_partition_destroy(e, s->id)) != DK_OK) fail("destroy of a live partition", -1);
                memset(s, 0, sizeof *s);
            } else {
                /* ids of live partitions are below SLOTS: this one never exists */
                CALL(dk_partition_destroy(e, SLOTS + u8(r)));
            }
            break;
        case 3: { /* load, sometimes with one field spoiled */
            if (!s->live) break;
            dk_network_desc d = net->desc;
            uint8_t spoil = u8(r);
            if (spoil == 1) d.n_neurons += 1;
            if (spoil == 2) d.n_inputs = 0;
            if (spoil == 3) d.seed ^= u64(r);
            if (spoil == 4 && d.n_synapses) d.n_synapses -= 1;
            int rc = CALL(dk_network_load(e, s->id, &d));
            if (rc == DK_OK) {
                n_loads++;
                if (s->loaded) fail("a second load succeeded", rc);
                s->loaded = true;
                s->n_neurons = d.n_neurons;
                s->n_src = d.n_neurons + d.n_inputs;
                s->step = 0;
            } else if (rc == DK_E_CONFLICT && !s->loaded) {
                fail("load conflict without a network", rc);
            }
            break;
        }
        case 4:
            if (s->live && CALL(dk_network_unload(e, s->id)) == DK_OK) s->loaded = false;
            break;
        case 5: { /* inject a batch */
            if (!s->live) break;
            uint64_t steps[24];
            uint32_t inputs[24], n = u8(r) % 25u, acc = 0;
            for (uint32_t i = 0; i < n; i++) {
                steps[i] = s->step + u8(r) % 12u;
                if (steps[i] >= 2 && u8(r) < 8) steps[i] -= 2; /* sometimes in the past */
                inputs[i] = u8(r) % 7u;
            }
            if (u8(r) < 64) { /* from another partition, over the fabric link if it crosses chips */
                fabric_op(e, &slots[u8(r) % SLOTS], s, steps, inputs, n);
                break;
            }
            int rc = CALL(dk_inject(e, s->id, steps, inputs, n, &acc));
            if (acc > n || (rc == DK_OK && acc != n)) fail("inject accepted count", (int)acc);
            break;
        }
        case 6: { /* run a few steps */
            if (!s->live) break;
            uint64_t steps = u8(r) % 9u;
            uint32_t threads = 1 + u8(r) % 2u;
            if (u8(r) == 0xFF) threads = u8(r) % 70u;
            if (CALL(dk_run(e, s->id, steps, threads)) == DK_OK) {
                s->step += steps;
                n_runs += steps > 0;
            }
            break;
        }
        case 7: { /* record */
            if (!s->live) break;
            uint32_t neurons[4], n = u8(r) % 5u;
            for (uint32_t i = 0; i < n; i++) neurons[i] = u8(r) % (s->n_neurons + 2u);
            CALL(dk_record(e, s->id, neurons, n, u8(r) % 9u));
            break;
        }
        case 8: { /* read */
            if (!s->live) break;
            uint64_t steps[8];
            uint32_t ids[8], cap = u8(r) % 9u, cnt = 0;
            if (CALL(dk_read_spikes(e, s->id, steps, ids, cap, &cnt)) == DK_OK) {
                if (cnt > cap) fail("read count", (int)cnt);
                n_spikes_read += cnt;
                for (uint32_t i = 0; i < cnt; i++)
                    if (ids[i] >= s->n_neurons || steps[i] >= s->step) fail("read spike", (int)i);
            }
            break;
        }
        case 9:
        case 10: { /* faults */
            int32_t fk = (int32_t)(u8(r) % 6u); /* 5: no such kind */
            uint32_t index = fk == 2 ? u16(r) % (n_links + 4) : fk == 4 ? u8(r) % 3u : u8(r);
            if (kind == 9) CALL(dk_fault_inject(e, chip, fk, index));
            else CALL(dk_fault_clear(e, chip, fk, index));
            break;
        }
        case 11:
            if (s->live) CALL(dk_partition_set_budget(e, s->id, u8(r) < 128 ? u8(r) : u64(r)));
            break;
        case 12:
            if (s->live) CALL(dk_input_capacity(e, s->id, u8(r) % 40u));
            break;
        case 13:
            if (s->live) query(e, s, chip, n_links, r);
            break;
        case 14:
            if (s->live) {
                dk_partition_config cfg = {.timestep_us = u8(r) < 200 ? 0 : u16(r) % 12000u,
                                           .routing = (int32_t)(u8(r) % 3u),
                                           .max_neurons = u8(r) < 200 ? 0 : u8(r),
                                           .max_synapses = u8(r) < 200 ? 0 : u16(r),
                                           .delay_store = (int32_t)(u8(r) % 4u)};
                CALL(dk_partition_configure(e, s->id, &cfg));
            }
            break;
        default: /* a fresh network description for later loads */
            decode_network(r, net);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r = {.p = data, .n = size, .i = 0};
    dk_engine *e = NULL;
    if (CALL(dk_engine_create(&e)) != DK_OK) abort();
    dk_chip_profile prof;
    memset(&prof, 0, sizeof prof);
    snprintf(prof.model, sizeof prof.model, "fuzz");
    prof.mesh_w = 1 + u8(&r) % 6u;
    prof.mesh_h = 1 + u8(&r) % 6u;
    prof.domain_w = 1 + u8(&r) % 3u;
    prof.domain_h = 1 + u8(&r) % 3u;
    prof.controller_x = u8(&r) % (prof.mesh_w + 1);
    prof.controller_y = u8(&r) % (prof.mesh_h + 1);
    prof.neurons_per_core = u8(&r) % 65u;
    prof.synapses_per_chip = u8(&r) < 240 ? 1 + u16(&r) * 16ull : u64(&r);
    prof.core_queue_events = u8(&r) < 240 ? 1u + u16(&r) : u64(&r);
    /* mostly a router that saturates (1 packet a link a step), so backpressure is fuzzed */
    prof.router_events_per_s = u8(&r) < 64 ? 1e9 : (1.0 + u8(&r)) * 1e3;
    prof.energy_pj_per_op = 4.9;
    prof.fabric_events_per_s = u8(&r) < 64 ? 1e10 : (1.0 + u8(&r)) * 1e3;
    dk_chip_desc desc;
    memset(&desc, 0, sizeof desc);
    snprintf(desc.serial, sizeof desc.serial, "F-1");
    snprintf(desc.fabric, sizeof desc.fabric, "fz");
    uint32_t chip = 0;
    if (CALL(dk_chip_add(e, &prof, &desc, &chip)) != DK_OK) {
        /* an invalid profile was refused; go on with a valid one */
        prof.mesh_w = prof.mesh_h = 4;
        prof.domain_w = prof.domain_h = 2;
        prof.controller_x = prof.controller_y = 0;
        prof.neurons_per_core = 16;
        prof.synapses_per_chip = 100000;
        prof.core_queue_events = 1 + u8(&r);
        if (CALL(dk_chip_add(e, &prof, &desc, &chip)) != DK_OK) fail("a valid chip", -1);
    }
    if (u8(&r) & 1) CALL(dk_chip_add(e, &prof, &desc, &chip)); /* duplicate serial */
    dk_chip_desc other = desc; /* chip 1, on the same fabric */
    uint32_t chip1 = 0;
    snprintf(other.serial, sizeof other.serial, "F-2");
    if (CALL(dk_chip_add(e, &prof, &other, &chip1)) != DK_OK || chip1 != 1) fail("chip 1", -1);
    dk_chip_info ci;
    if (CALL(dk_chip_info_get(e, chip, &ci)) != DK_OK) fail("chip info", -1);
    uint32_t n_links = 0;
    CALL(dk_link_count(e, chip, &n_links));
    net_buf *net = calloc(1, sizeof *net);
    if (!net) abort();
    decode_network(&r, net);
    run_ops(e, &r, net, chip, ci.n_cores, ci.n_domains, n_links);
    free(net);
    dk_engine_destroy(e);
    return 0;
}

#ifndef DARWIN_LIBFUZZER
/* ---- a stand-alone driver: random inputs and a simple mutator from a fixed seed ---- */

static uint64_t rng_state;

static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

enum { CORPUS = 32, MAX_INPUT = 4096 };

typedef struct {
    uint8_t data[MAX_INPUT];
    size_t size;
} input;

static void random_input(input *in) {
    in->size = rnd() % MAX_INPUT;
    for (size_t i = 0; i < in->size; i++) in->data[i] = (uint8_t)rnd();
}

static void mutate(input *in) {
    int rounds = 1 + (int)(rnd() % 8);
    for (int k = 0; k < rounds; k++) {
        size_t at = in->size ? rnd() % in->size : 0;
        switch (rnd() % 6) {
        case 0: /* flip a bit */
            if (in->size) in->data[at] ^= (uint8_t)(1u << (rnd() % 8));
            break;
        case 1: /* an interesting byte */
            if (in->size) {
                static const uint8_t vals[] = {0, 1, 0x7F, 0x80, 0xFE, 0xFF};
                in->data[at] = vals[rnd() % sizeof vals];
            }
            break;
        case 2: /* a random byte */
            if (in->size) in->data[at] = (uint8_t)rnd();
            break;
        case 3: { /* insert bytes */
            size_t n = 1 + rnd() % 16;
            if (in->size + n > MAX_INPUT) break;
            memmove(in->data + at + n, in->data + at, in->size - at);
            for (size_t i = 0; i < n; i++) in->data[at + i] = (uint8_t)rnd();
            in->size += n;
            break;
        }
        case 4: { /* delete bytes */
            size_t n = 1 + rnd() % 16;
            if (at + n > in->size) n = in->size - at;
            memmove(in->data + at, in->data + at + n, in->size - at - n);
            in->size -= n;
            break;
        }
        default: { /* copy a chunk over another place */
            if (in->size < 2) break;
            size_t from = rnd() % in->size, n = 1 + rnd() % 32;
            if (from + n > in->size) n = in->size - from;
            if (at + n > in->size) n = in->size - at;
            memmove(in->data + at, in->data + from, n);
            break;
        }
        }
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    double seconds = 10;
    unsigned long long runs = 0, seed = 0x5EED;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--seconds N | --runs N] [--seed S]\n", argv[0]);
            return 2;
        }
    }
    rng_state = seed ? seed : 1;
    static input corpus[CORPUS], cur;
    for (int i = 0; i < CORPUS; i++) random_input(&corpus[i]);
    const double t0 = now_s();
    unsigned long long done = 0;
    while (runs ? done < runs : now_s() - t0 < seconds) {
        if (rnd() % 4 == 0) {
            random_input(&cur);
        } else {
            cur = corpus[rnd() % CORPUS];
            mutate(&cur);
        }
        LLVMFuzzerTestOneInput(cur.data, cur.size);
        /* no coverage feedback: keep a share of the mutants so changes accumulate */
        if (rnd() % 2) corpus[rnd() % CORPUS] = cur;
        done++;
    }
    printf("fuzz_engine: %llu runs in %.1f s (seed %llu), no failures; %llu networks loaded, "
           "%llu dk_run calls, %llu spikes read\n",
           done, now_s() - t0, seed, n_loads, n_runs, n_spikes_read);
    return 0;
}
#endif
