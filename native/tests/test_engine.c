/*
 * Tests of the Darwin engine's C API: every call, its error paths and the exact semantics of a
 * few small networks. No framework: CHECK prints file:line and dk_last_error() and the program
 * exits nonzero if anything failed. Built with ASan and UBSan by `make native-test`.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "darwin_engine.h"
#include "../src/internal.h" /* white box: the kernel tap tables against the tap arithmetic */

static int failures;
static int checks;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        checks++;                                                                              \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__,   \
                    #cond, dk_last_error());                                                   \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

#define CHECK_RC(call, want)                                                                   \
    do {                                                                                       \
        checks++;                                                                              \
        int rc_ = (call);                                                                      \
        if (rc_ != (want)) {                                                                   \
            fprintf(stderr, "%s:%d: %s returned %d, expected %d; last error: %s\n", __FILE__,  \
                    __LINE__, #call, rc_, (int)(want), dk_last_error());                       \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

#define OK(call) CHECK_RC(call, DK_OK)

#define CHECK_U64(a, b)                                                                        \
    do {                                                                                       \
        checks++;                                                                              \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);         \
        if (a_ != b_) {                                                                        \
            fprintf(stderr, "%s:%d: %s == %llu, expected %s == %llu; last error: %s\n",        \
                    __FILE__, __LINE__, #a, a_, #b, b_, dk_last_error());                      \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

/* ---- fixtures ---- */

static dk_chip_profile darwin3(void) {
    dk_chip_profile p;
    memset(&p, 0, sizeof p);
    snprintf(p.model, sizeof p.model, "darwin3");
    p.mesh_w = p.mesh_h = 24;
    p.domain_w = p.domain_h = 4;
    p.controller_x = p.controller_y = 0;
    p.neurons_per_core = 4096;
    p.synapses_per_chip = 100000000;
    p.core_queue_events = 1048576;
    p.router_events_per_s = 1e12;
    p.energy_pj_per_op = 4.9;
    p.fabric_events_per_s = 1e10;
    return p;
}

static dk_chip_desc chip_desc(const char *serial) {
    dk_chip_desc d;
    memset(&d, 0, sizeof d);
    snprintf(d.serial, sizeof d.serial, "%s", serial);
    snprintf(d.fabric, sizeof d.fabric, "fabric-0");
    d.numa_node = 1;
    return d;
}

static dk_engine *engine_with(const dk_chip_profile *prof) {
    dk_engine *e = NULL;
    OK(dk_engine_create(&e));
    if (!e) abort();
    dk_chip_desc d = chip_desc("D3-0001");
    uint32_t id = 99;
    OK(dk_chip_add(e, prof, &d, &id));
    CHECK_U64(id, 0);
    return e;
}

static dk_engine *engine_darwin3(void) {
    dk_chip_profile p = darwin3();
    return engine_with(&p);
}

/* Core id of tile (x, y) on the darwin3 mesh: row-major, the controller (0,0) skipped. */
static uint32_t core_at(uint32_t x, uint32_t y) { return y * 24 + x - 1; }

static uint32_t part_of(dk_engine *e, const uint32_t *cores, uint32_t n, int32_t mode) {
    uint32_t id = UINT32_MAX;
    OK(dk_partition_create(e, 0, cores, n, mode, 0, &id));
    return id;
}

/* A darwin3 engine with one exclusive partition, on core `core`; *part is its id. */
static dk_engine *engine_one_core(uint32_t core, uint32_t *part) {
    dk_engine *e = engine_darwin3();
    *part = part_of(e, &core, 1, DK_PART_EXCLUSIVE);
    return e;
}

/* A leaky neuron at rest at 0 mV with threshold 10 mV; i_e drives it (100 fires every step). */
static dk_group lif(uint32_t count, float i_e, float t_ref) {
    dk_group g;
    memset(&g, 0, sizeof g);
    g.count = count;
    g.tau_m = 10.f;
    g.v_th = 10.f;
    g.v_reset = 0.f;
    g.e_l = 0.f;
    g.i_e_mv_per_ms = i_e;
    g.t_ref = t_ref;
    g.v_init = 0.f;
    return g;
}

typedef struct {
    dk_group groups[4];
    uint32_t *src, *dst;
    float *w;
    uint16_t *d;
    uint64_t cap;
    dk_network_desc desc;
} net_t;

static void net_init(net_t *n, uint32_t n_neurons, uint32_t n_inputs, uint64_t cap) {
    memset(n, 0, sizeof *n);
    n->cap = cap;
    n->src = calloc(cap + 1, sizeof *n->src);
    n->dst = calloc(cap + 1, sizeof *n->dst);
    n->w = calloc(cap + 1, sizeof *n->w);
    n->d = calloc(cap + 1, sizeof *n->d);
    if (!n->src || !n->dst || !n->w || !n->d) abort();
    n->groups[0] = lif(n_neurons, 0.f, 0.f);
    n->desc = (dk_network_desc){.n_neurons = n_neurons, .n_inputs = n_inputs, .n_groups = 1,
                                .groups = n->groups, .src = n->src, .dst = n->dst,
                                .weight = n->w, .delay = n->d, .dt_ms = 1.f, .seed = 42};
}

static void net_syn(net_t *n, uint32_t src, uint32_t dst, float w, uint16_t d) {
    if (n->desc.n_synapses >= n->cap) abort();
    uint64_t i = n->desc.n_synapses++;
    n->src[i] = src;
    n->dst[i] = dst;
    n->w[i] = w;
    n->d[i] = d;
}

static void net_free(net_t *n) {
    free(n->src);
    free(n->dst);
    free(n->w);
    free(n->d);
}

static uint32_t lcg_state;
static uint32_t lcg(void) {
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return lcg_state >> 8;
}

/* 64 Poisson-driven neurons, 2 inputs, 600 random synapses: busy on every core it uses. */
static void net_random(net_t *n, uint64_t seed) {
    net_init(n, 64, 2, 600);
    n->groups[0] = lif(64, 0.f, 2.f);
    n->groups[0].poisson_rate_hz = 2000.f;
    n->groups[0].poisson_weight = 3.f;
    n->desc.seed = seed;
    lcg_state = 12345;
    for (int i = 0; i < 600; i++) {
        float w = (float)(lcg() % 7) - 2.f;
        net_syn(n, lcg() % 66, lcg() % 64, w, (uint16_t)(1 + lcg() % 5));
    }
}

static dk_telemetry tel(dk_engine *e, uint32_t part) {
    dk_telemetry t;
    memset(&t, 0, sizeof t);
    OK(dk_telemetry_get(e, part, &t));
    return t;
}

/* ---- engine and chips ---- */

/* The tap tables of stride-1 kernels give each source exactly the targets and weights the tap
 * arithmetic gives, in any window; random kernels (odd shapes, groups, padding, dilation, zero
 * weights), every source, windows cut anywhere. */
static void test_kernel_taps(void) {
    lcg_state = 12345;
    uint32_t tables = 0;
    for (int trial = 0; trial < 400; trial++) {
        const uint32_t groups = 1 + (uint32_t)(lcg() % 2);
        dk_kernel k = {
            .c_in = groups * (1 + (uint32_t)(lcg() % 3)),
            .c_out = groups * (1 + (uint32_t)(lcg() % 3)),
            .h_in = 1 + (uint32_t)(lcg() % 9), .w_in = 1 + (uint32_t)(lcg() % 9),
            .k_h = 1 + (uint32_t)(lcg() % 4), .k_w = 1 + (uint32_t)(lcg() % 4),
            .stride_h = lcg() % 5 ? 1u : 2u, .stride_w = lcg() % 5 ? 1u : 2u,
            .pad_h = (uint32_t)(lcg() % 4), .pad_w = (uint32_t)(lcg() % 4),
            .dil_h = 1 + (uint32_t)(lcg() % 2), .dil_w = 1 + (uint32_t)(lcg() % 2),
            .groups = groups, .delay = 1, .src_first = 3, .dst_first = 5,
        };
        const int64_t sh = (int64_t)k.h_in + 2 * k.pad_h - (int64_t)(k.k_h - 1) * k.dil_h - 1;
        const int64_t sw = (int64_t)k.w_in + 2 * k.pad_w - (int64_t)(k.k_w - 1) * k.dil_w - 1;
        if (sh < 0 || sw < 0) continue;
        k.h_out = (uint32_t)(sh / k.stride_h) + 1;
        k.w_out = (uint32_t)(sw / k.stride_w) + 1;
        const size_t nw = (size_t)k.c_out * (k.c_in / groups) * k.k_h * k.k_w;
        float *wts = malloc(nw * sizeof *wts);
        for (size_t i = 0; i < nw; i++)
            wts[i] = lcg() % 3 ? (float)((int)(lcg() % 17) - 8) / 8.f : 0.f;
        k.weight = wts;
        dk_network *n = calloc(1, sizeof *n);
        dk_network_desc d = {.n_kernels = 1, .kernels = &k};
        uint64_t bytes = 0;
        OK(dk_kernels_copy(n, &d, 0, &bytes));
        const dk_kernel_rt *kr = &n->kernels[0];
        CHECK((kr->tap_off != NULL) == (k.stride_h == 1 && k.stride_w == 1));
        tables += kr->tap_off != NULL;
        const uint32_t n_dst = k.c_out * k.h_out * k.w_out, fan = kr->fan;
        uint32_t *t1 = malloc(fan * sizeof *t1), *t2 = malloc(fan * sizeof *t2);
        float *w1 = malloc(fan * sizeof *w1), *w2 = malloc(fan * sizeof *w2);
        for (uint32_t src = 0; src < k.c_in * k.h_in * k.w_in; src++)
            for (int win = 0; win < 4; win++) {
                uint32_t lo = 0, hi = UINT32_MAX;
                if (win) {
                    lo = k.dst_first + (uint32_t)(lcg() % (n_dst + 1));
                    hi = lo + (uint32_t)(lcg() % (n_dst + 2));
                }
                const uint32_t m1 = dk_kernel_window(kr, src, lo, hi, t1, w1);
                const uint32_t m2 = dk_kernel_window_taps(kr, src, lo, hi, t2, w2);
                CHECK_U64(m1, m2);
                if (m1 == m2 && m1) {
                    CHECK(!memcmp(t1, t2, m1 * sizeof *t1));
                    CHECK(!memcmp(w1, w2, m1 * sizeof *w1));
                }
            }
        free(t1); free(t2); free(w1); free(w2);
        dk_kernels_free(n);
        free(n);
        free(wts);
    }
    CHECK(tables > 100);
}

static void test_create_destroy(void) {
    CHECK_RC(dk_engine_create(NULL), DK_E_INVALID);
    CHECK(strlen(dk_last_error()) > 0);
    dk_engine *e = NULL;
    OK(dk_engine_create(&e));
    CHECK(e != NULL);
    uint32_t n = 99;
    OK(dk_chip_count(e, &n));
    CHECK_U64(n, 0);
    CHECK_RC(dk_chip_count(e, NULL), DK_E_INVALID);
    CHECK_RC(dk_chip_count(NULL, &n), DK_E_INVALID);
    OK(dk_partition_count(e, &n));
    CHECK_U64(n, 0);
    dk_engine_destroy(e);
    dk_engine_destroy(NULL); /* a no-op */
    CHECK(strncmp(dk_version(), "darwin-engine", 13) == 0);
}

static void test_chip_add(void) {
    dk_engine *e = NULL;
    OK(dk_engine_create(&e));
    dk_chip_profile good = darwin3();
    dk_chip_desc d = chip_desc("D3-0001");
    uint32_t id = 99;
    CHECK_RC(dk_chip_add(NULL, &good, &d, &id), DK_E_INVALID);
    CHECK_RC(dk_chip_add(e, NULL, &d, &id), DK_E_INVALID);
    CHECK_RC(dk_chip_add(e, &good, NULL, &id), DK_E_INVALID);
    CHECK_RC(dk_chip_add(e, &good, &d, NULL), DK_E_INVALID);

    dk_chip_profile p;
    p = good; p.domain_w = 5; /* 24 % 5 != 0 */
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.domain_h = 7;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.domain_w = 0;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.controller_x = 24;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.controller_y = 1000;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.neurons_per_core = 0;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.neurons_per_core = 65537;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.mesh_w = 0;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.mesh_w = 257; p.domain_w = 1;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.mesh_w = p.mesh_h = 1; p.domain_w = p.domain_h = 1; /* only the controller */
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.synapses_per_chip = 0;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.core_queue_events = 0;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.router_events_per_s = 0;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.router_events_per_s = NAN;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.fabric_events_per_s = 0;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.energy_pj_per_op = -1;
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; memset(p.model, 'm', sizeof p.model); /* unterminated */
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    p = good; p.model[0] = '\0';
    CHECK_RC(dk_chip_add(e, &p, &d, &id), DK_E_INVALID);
    dk_chip_desc bad = d;
    memset(bad.serial, 's', sizeof bad.serial);
    CHECK_RC(dk_chip_add(e, &good, &bad, &id), DK_E_INVALID);
    bad = d;
    memset(bad.fabric, 'f', sizeof bad.fabric);
    CHECK_RC(dk_chip_add(e, &good, &bad, &id), DK_E_INVALID);
    uint32_t n = 99;
    OK(dk_chip_count(e, &n));
    CHECK_U64(n, 0); /* nothing was added by the failures */

    OK(dk_chip_add(e, &good, &d, &id));
    CHECK_U64(id, 0);
    CHECK_RC(dk_chip_add(e, &good, &d, &id), DK_E_CONFLICT); /* duplicate serial */
    /* more chips than the initial table holds: the table grows, ids stay dense */
    for (uint32_t i = 1; i < 12; i++) {
        char serial[32];
        snprintf(serial, sizeof serial, "D3-%04u", i + 1);
        dk_chip_desc di = chip_desc(serial);
        OK(dk_chip_add(e, &good, &di, &id));
        CHECK_U64(id, i);
    }
    OK(dk_chip_count(e, &n));
    CHECK_U64(n, 12);
    dk_chip_info ci;
    OK(dk_chip_info_get(e, 11, &ci));
    CHECK(strcmp(ci.serial, "D3-0012") == 0);
    dk_engine_destroy(e);
}

static void test_discovery(void) {
    dk_engine *e = engine_darwin3();
    dk_chip_info ci;
    OK(dk_chip_info_get(e, 0, &ci));
    CHECK_U64(ci.id, 0);
    CHECK(strcmp(ci.model, "darwin3") == 0);
    CHECK(strcmp(ci.serial, "D3-0001") == 0);
    CHECK(strcmp(ci.fabric, "fabric-0") == 0);
    CHECK_U64(ci.numa_node, 1);
    CHECK_U64(ci.mesh_w, 24);
    CHECK_U64(ci.mesh_h, 24);
    CHECK_U64(ci.n_cores, 575);
    CHECK_U64(ci.n_domains, 36);
    CHECK_U64(ci.neurons_per_core, 4096);
    CHECK_U64(ci.synapses_per_chip, 100000000);
    CHECK(ci.router_events_per_s == 1e12);
    CHECK(ci.energy_pj_per_op == 4.9);
    CHECK_U64(ci.failed_cores, 0);
    CHECK_U64(ci.failed_links, 0);
    CHECK(ci.health == DK_HEALTH_OK);
    CHECK_RC(dk_chip_info_get(e, 1, &ci), DK_E_NOT_FOUND);
    CHECK_RC(dk_chip_info_get(e, 0, NULL), DK_E_INVALID);
    CHECK_RC(dk_chip_info_get(NULL, 0, &ci), DK_E_INVALID);

    uint32_t total = 0;
    for (uint32_t dmn = 0; dmn < 36; dmn++) {
        dk_domain_info di;
        OK(dk_domain_info_get(e, 0, dmn, &di));
        CHECK_U64(di.domain, dmn);
        CHECK_U64(di.n_cores, dmn == 0 ? 15 : 16);
        CHECK_U64(di.x0, (dmn % 6) * 4);
        CHECK_U64(di.y0, (dmn / 6) * 4);
        CHECK_U64(di.x1, (dmn % 6) * 4 + 3);
        CHECK_U64(di.y1, (dmn / 6) * 4 + 3);
        CHECK_U64(di.failed_cores, 0);
        CHECK(di.health == DK_HEALTH_OK);
        total += di.n_cores;
    }
    CHECK_U64(total, 575);
    dk_domain_info di;
    CHECK_RC(dk_domain_info_get(e, 0, 36, &di), DK_E_NOT_FOUND);
    CHECK_RC(dk_domain_info_get(e, 1, 0, &di), DK_E_NOT_FOUND);
    CHECK_RC(dk_domain_info_get(e, 0, 0, NULL), DK_E_INVALID);

    /* cores row by row, skipping the controller; each tile exactly once */
    static uint8_t seen[24][24];
    memset(seen, 0, sizeof seen);
    for (uint32_t c = 0; c < 575; c++) {
        dk_core_info k;
        OK(dk_core_info_get(e, 0, c, &k));
        CHECK_U64(k.core, c);
        CHECK_U64(k.x, (c + 1) % 24);
        CHECK_U64(k.y, (c + 1) / 24);
        CHECK(!(k.x == 0 && k.y == 0));
        CHECK_U64(k.domain, (k.y / 4) * 6 + k.x / 4);
        CHECK(k.health == DK_HEALTH_OK);
        CHECK(k.partition == -1);
        if (k.x < 24 && k.y < 24) {
            CHECK(!seen[k.y][k.x]);
            seen[k.y][k.x] = 1;
        }
    }
    dk_core_info k;
    OK(dk_core_info_get(e, 0, 574, &k));
    CHECK_U64(k.x, 23);
    CHECK_U64(k.y, 23);
    CHECK_U64(k.domain, 35);
    CHECK_RC(dk_core_info_get(e, 0, 575, &k), DK_E_NOT_FOUND);
    CHECK_RC(dk_core_info_get(e, 3, 0, &k), DK_E_NOT_FOUND);
    CHECK_RC(dk_core_info_get(e, 0, 0, NULL), DK_E_INVALID);

    uint32_t links = 0;
    OK(dk_link_count(e, 0, &links));
    CHECK_U64(links, 24 * 24 * 4);
    CHECK_RC(dk_link_count(e, 1, &links), DK_E_NOT_FOUND);
    CHECK_RC(dk_link_count(e, 0, NULL), DK_E_INVALID);
    int32_t li = 7;
    OK(dk_link_index(e, 0, 0, 0, DK_DIR_WEST, &li));
    CHECK(li == -1);
    OK(dk_link_index(e, 0, 0, 0, DK_DIR_NORTH, &li));
    CHECK(li == -1);
    OK(dk_link_index(e, 0, 23, 5, DK_DIR_EAST, &li));
    CHECK(li == -1);
    OK(dk_link_index(e, 0, 5, 23, DK_DIR_SOUTH, &li));
    CHECK(li == -1);
    OK(dk_link_index(e, 0, 0, 0, DK_DIR_EAST, &li));
    CHECK(li == 0);
    OK(dk_link_index(e, 0, 5, 7, DK_DIR_SOUTH, &li));
    CHECK(li == (7 * 24 + 5) * 4 + DK_DIR_SOUTH);
    OK(dk_link_index(e, 0, 23, 23, DK_DIR_NORTH, &li));
    CHECK(li == (23 * 24 + 23) * 4 + DK_DIR_NORTH);
    /* every interior link exists and has a distinct index below the count */
    uint32_t exist = 0;
    for (uint32_t y = 0; y < 24; y++)
        for (uint32_t x = 0; x < 24; x++)
            for (uint32_t dir = 0; dir < 4; dir++) {
                OK(dk_link_index(e, 0, x, y, dir, &li));
                if (li >= 0) {
                    exist++;
                    CHECK(li == (int32_t)((y * 24 + x) * 4 + dir));
                }
            }
    CHECK_U64(exist, 4 * 24 * 23);
    CHECK_RC(dk_link_index(e, 0, 24, 0, DK_DIR_EAST, &li), DK_E_INVALID);
    CHECK_RC(dk_link_index(e, 0, 0, 24, DK_DIR_EAST, &li), DK_E_INVALID);
    CHECK_RC(dk_link_index(e, 0, 0, 0, 4, &li), DK_E_INVALID);
    CHECK_RC(dk_link_index(e, 1, 0, 0, 0, &li), DK_E_NOT_FOUND);
    CHECK_RC(dk_link_index(e, 0, 0, 0, 0, NULL), DK_E_INVALID);
    dk_engine_destroy(e);
}

/* ---- partitions ---- */

static void test_partitions(void) {
    dk_engine *e = engine_darwin3();
    uint32_t id = 77;
    uint32_t a[] = {2, 0, 1};
    OK(dk_partition_create(e, 0, a, 3, DK_PART_EXCLUSIVE, 500, &id));
    CHECK_U64(id, 0);
    CHECK(a[0] == 2 && a[1] == 0 && a[2] == 1); /* the caller's array is left alone */
    dk_core_info k;
    for (uint32_t c = 0; c < 4; c++) {
        OK(dk_core_info_get(e, 0, c, &k));
        CHECK(k.partition == (c < 3 ? 0 : -1));
    }
    uint32_t over[] = {2, 3};
    CHECK_RC(dk_partition_create(e, 0, over, 2, DK_PART_EXCLUSIVE, 0, &id), DK_E_CONFLICT);
    CHECK_RC(dk_partition_create(e, 0, over, 2, DK_PART_SHARED, 0, &id), DK_E_CONFLICT);
    /* core 3 was not claimed by the refused attempts */
    OK(dk_core_info_get(e, 0, 3, &k));
    CHECK(k.partition == -1);

    uint32_t s1c[] = {10, 11}, s2c[] = {11, 12}, x12[] = {12}, x10[] = {10}, x11[] = {11};
    uint32_t s1 = 0, s2 = 0;
    OK(dk_partition_create(e, 0, s1c, 2, DK_PART_SHARED, 0, &s1));
    OK(dk_partition_create(e, 0, s2c, 2, DK_PART_SHARED, 0, &s2)); /* shared over shared */
    CHECK_U64(s1, 1);
    CHECK_U64(s2, 2);
    CHECK_RC(dk_partition_create(e, 0, x12, 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_CONFLICT);
    OK(dk_core_info_get(e, 0, 11, &k));
    CHECK(k.partition == -1); /* shared partitions own nothing */

    uint32_t doms[] = {7, 6}, dp = 0;
    OK(dk_partition_create_domains(e, 0, doms, 2, DK_PART_EXCLUSIVE, 0, &dp));
    CHECK_U64(dp, 3);
    uint32_t cores[64], chip = 9, cnt = 0;
    int32_t mode = -1;
    uint64_t budget = 1;
    OK(dk_partition_cores(e, dp, &chip, cores, 64, &cnt, &mode, &budget));
    CHECK_U64(chip, 0);
    CHECK_U64(cnt, 32);
    CHECK(mode == DK_PART_EXCLUSIVE);
    CHECK_U64(budget, 0);
    for (uint32_t i = 0; i < cnt; i++) {
        OK(dk_core_info_get(e, 0, cores[i], &k));
        CHECK(k.domain == 6 || k.domain == 7);
        CHECK(k.partition == (int32_t)dp);
        if (i) CHECK(cores[i] > cores[i - 1]);
    }
    uint32_t d0[] = {0}, d36[] = {36}, dd[] = {8, 8};
    CHECK_RC(dk_partition_create_domains(e, 0, d0, 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_CONFLICT);
    CHECK_RC(dk_partition_create_domains(e, 0, d0, 1, DK_PART_SHARED, 0, &id), DK_E_CONFLICT);
    CHECK_RC(dk_partition_create_domains(e, 0, d36, 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create_domains(e, 0, dd, 2, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create_domains(e, 0, dd, 0, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create_domains(e, 0, dd, 1, 5, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create_domains(e, 1, dd, 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_NOT_FOUND);
    CHECK_RC(dk_partition_create_domains(e, 0, NULL, 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create_domains(e, 0, dd, 1, DK_PART_EXCLUSIVE, 0, NULL), DK_E_INVALID);
    CHECK_RC(dk_partition_create_domains(NULL, 0, dd, 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);

    uint32_t bad575[] = {575}, dup[] = {40, 40}, ok1[] = {40};
    CHECK_RC(dk_partition_create(e, 1, ok1, 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_NOT_FOUND);
    CHECK_RC(dk_partition_create(e, 0, ok1, 1, 2, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create(e, 0, ok1, 1, -1, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create(e, 0, ok1, 0, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create(e, 0, NULL, 0, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create(e, 0, bad575, 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create(e, 0, dup, 2, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create(e, 0, NULL, 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create(e, 0, ok1, 1, DK_PART_EXCLUSIVE, 0, NULL), DK_E_INVALID);
    CHECK_RC(dk_partition_create(NULL, 0, ok1, 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);
    CHECK_RC(dk_partition_create(e, 0, ok1, (1u << 20) + 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_INVALID);

    uint32_t n = 0, ids[8];
    OK(dk_partition_count(e, &n));
    CHECK_U64(n, 4);
    CHECK_RC(dk_partition_count(e, NULL), DK_E_INVALID);
    CHECK_RC(dk_partition_ids(e, ids, 2, &n), DK_E_OVERFLOW);
    CHECK_U64(n, 4);
    CHECK_RC(dk_partition_ids(e, NULL, 0, &n), DK_E_OVERFLOW);
    CHECK_U64(n, 4);
    CHECK_RC(dk_partition_ids(e, NULL, 2, &n), DK_E_INVALID);
    CHECK_RC(dk_partition_ids(e, ids, 8, NULL), DK_E_INVALID);
    OK(dk_partition_ids(e, ids, 8, &n));
    CHECK_U64(n, 4);
    for (uint32_t i = 0; i < 4; i++) CHECK_U64(ids[i], i);

    CHECK_RC(dk_partition_cores(e, 0, &chip, cores, 2, &cnt, &mode, &budget), DK_E_OVERFLOW);
    CHECK_U64(cnt, 3);
    OK(dk_partition_cores(e, 0, &chip, cores, 3, &cnt, &mode, &budget));
    CHECK(cores[0] == 0 && cores[1] == 1 && cores[2] == 2);
    CHECK_U64(budget, 500);
    CHECK(mode == DK_PART_EXCLUSIVE);
    OK(dk_partition_cores(e, s2, &chip, cores, 3, &cnt, &mode, &budget));
    CHECK(mode == DK_PART_SHARED);
    CHECK(cnt == 2 && cores[0] == 11 && cores[1] == 12);
    CHECK_RC(dk_partition_cores(e, 9, &chip, cores, 3, &cnt, &mode, &budget), DK_E_NOT_FOUND);
    CHECK_RC(dk_partition_cores(e, 0, NULL, cores, 3, &cnt, &mode, &budget), DK_E_INVALID);
    CHECK_RC(dk_partition_cores(e, 0, &chip, NULL, 3, &cnt, &mode, &budget), DK_E_INVALID);

    OK(dk_partition_set_budget(e, 0, 1234));
    OK(dk_partition_cores(e, 0, &chip, cores, 3, &cnt, &mode, &budget));
    CHECK_U64(budget, 1234);
    CHECK_RC(dk_partition_set_budget(e, 9, 1), DK_E_NOT_FOUND);
    CHECK_RC(dk_partition_set_budget(NULL, 0, 1), DK_E_INVALID);

    /* destroying frees the cores; the id is reused */
    OK(dk_partition_destroy(e, 0));
    CHECK_RC(dk_partition_destroy(e, 0), DK_E_NOT_FOUND);
    CHECK_RC(dk_partition_destroy(e, 100), DK_E_NOT_FOUND);
    CHECK_RC(dk_partition_destroy(NULL, 1), DK_E_INVALID);
    OK(dk_core_info_get(e, 0, 1, &k));
    CHECK(k.partition == -1);
    uint32_t again[] = {1, 2, 3};
    OK(dk_partition_create(e, 0, again, 3, DK_PART_EXCLUSIVE, 0, &id));
    CHECK_U64(id, 0);
    OK(dk_core_info_get(e, 0, 3, &k));
    CHECK(k.partition == 0);

    /* shared: a core is free for an exclusive partition once every sharer is gone */
    OK(dk_partition_destroy(e, s1));
    OK(dk_partition_create(e, 0, x10, 1, DK_PART_EXCLUSIVE, 0, &id));
    CHECK_RC(dk_partition_create(e, 0, x11, 1, DK_PART_EXCLUSIVE, 0, &id), DK_E_CONFLICT);
    OK(dk_partition_destroy(e, s2));
    OK(dk_partition_create(e, 0, x11, 1, DK_PART_EXCLUSIVE, 0, &id));
    OK(dk_partition_count(e, &n));
    CHECK_U64(n, 4);

    /* a partition table larger than its first allocation */
    for (uint32_t i = 0; i < 40; i++) {
        uint32_t c = 200 + i;
        OK(dk_partition_create(e, 0, &c, 1, DK_PART_EXCLUSIVE, 0, &id));
    }
    OK(dk_partition_count(e, &n));
    CHECK_U64(n, 44);
    dk_engine_destroy(e); /* frees every partition still alive */
}

/* ---- networks ---- */

static void test_network_errors(void) {
    uint32_t p;
    dk_engine *e = engine_one_core(100, &p);
    net_t n;
    net_init(&n, 2, 1, 4);
    net_syn(&n, 2, 0, 15.f, 3);
    dk_network_desc d;

    /* calls that need a network */
    uint64_t u64[8];
    uint32_t u32[8], acc = 0, cnt = 0;
    float v[2];
    dk_telemetry t;
    CHECK_RC(dk_run(e, p, 1, 1), DK_E_STATE);
    CHECK_RC(dk_record(e, p, u32, 0, 0), DK_E_STATE);
    CHECK_RC(dk_inject(e, p, u64, u32, 0, &acc), DK_E_STATE);
    CHECK_RC(dk_read_spikes(e, p, u64, u32, 8, &cnt), DK_E_STATE);
    CHECK_RC(dk_input_capacity(e, p, 8), DK_E_STATE);
    CHECK_RC(dk_membrane(e, p, v, 2), DK_E_STATE);
    CHECK_RC(dk_telemetry_get(e, p, &t), DK_E_STATE);
    CHECK_RC(dk_link_events(e, p, u64, 8), DK_E_STATE);
    CHECK_RC(dk_core_events(e, p, u64, 1), DK_E_STATE);
    CHECK_RC(dk_spike_counts(e, p, u64, 3), DK_E_STATE);
    CHECK_RC(dk_neuron_core(e, p, 0, u32), DK_E_STATE);
    CHECK_RC(dk_network_unload(e, p), DK_E_STATE);

    CHECK_RC(dk_network_load(e, p, NULL), DK_E_INVALID);
    CHECK_RC(dk_network_load(NULL, p, &n.desc), DK_E_INVALID);
    CHECK_RC(dk_network_load(e, 5, &n.desc), DK_E_NOT_FOUND);

#define BAD_NET(mutation, code)                                                                \
    do {                                                                                       \
        d = n.desc;                                                                            \
        dk_group g0_ = n.groups[0];                                                            \
        mutation;                                                                              \
        CHECK_RC(dk_network_load(e, p, &d), code);                                             \
        n.groups[0] = g0_;                                                                     \
    } while (0)

    BAD_NET(d.n_neurons = 0, DK_E_INVALID);
    BAD_NET(d.dt_ms = 0.f, DK_E_INVALID);
    BAD_NET(d.dt_ms = -1.f, DK_E_INVALID);
    BAD_NET(d.dt_ms = 10.5f, DK_E_INVALID);
    BAD_NET(d.dt_ms = NAN, DK_E_INVALID);
    BAD_NET(d.n_groups = 0, DK_E_INVALID);
    BAD_NET(d.n_groups = DK_MAX_GROUPS + 1, DK_E_INVALID);
    BAD_NET(d.groups = NULL, DK_E_INVALID);
    BAD_NET(n.groups[0].tau_m = 0.f, DK_E_INVALID);
    BAD_NET(n.groups[0].tau_m = NAN, DK_E_INVALID);
    BAD_NET(n.groups[0].tau_m = INFINITY, DK_E_INVALID);
    BAD_NET(n.groups[0].v_th = INFINITY, DK_E_INVALID);
    BAD_NET(n.groups[0].v_reset = 10.f, DK_E_INVALID); /* not below v_th */
    BAD_NET(n.groups[0].e_l = NAN, DK_E_INVALID);
    BAD_NET(n.groups[0].v_init = -INFINITY, DK_E_INVALID);
    BAD_NET(n.groups[0].i_e_mv_per_ms = NAN, DK_E_INVALID);
    BAD_NET(n.groups[0].poisson_weight = INFINITY, DK_E_INVALID);
    BAD_NET(n.groups[0].t_ref = -1.f, DK_E_INVALID);
    BAD_NET(n.groups[0].t_ref = 1e6f, DK_E_INVALID);
    BAD_NET(n.groups[0].poisson_rate_hz = -1.f, DK_E_INVALID);
    BAD_NET(n.groups[0].poisson_rate_hz = INFINITY, DK_E_INVALID);
    BAD_NET(n.groups[0].poisson_rate_hz = 1e9f, DK_E_INVALID); /* table too long */
    BAD_NET(n.groups[0].count = 3, DK_E_INVALID);              /* groups sum to 3, not 2 */
    BAD_NET(n.groups[0].count = 1, DK_E_INVALID);
    BAD_NET(d.src = NULL, DK_E_INVALID);
    BAD_NET(d.weight = NULL, DK_E_INVALID);
    BAD_NET(n.src[0] = 3, DK_E_INVALID);                        /* 2 neurons + 1 input */
    n.src[0] = 2;
    BAD_NET(n.dst[0] = 2, DK_E_INVALID);                        /* an input is not a target */
    n.dst[0] = 0;
    BAD_NET(n.d[0] = 0, DK_E_INVALID);
    BAD_NET(n.d[0] = DK_MAX_DELAY + 1, DK_E_INVALID);
    n.d[0] = 3;
    BAD_NET(n.w[0] = NAN, DK_E_INVALID);
    BAD_NET(n.w[0] = -INFINITY, DK_E_INVALID);
    n.w[0] = 15.f;
    BAD_NET(d.n_neurons = 4097; n.groups[0].count = 4097, DK_E_CAPACITY); /* 1 core x 4096 */
    BAD_NET(d.n_neurons = (1u << 24) + 1; n.groups[0].count = (1u << 24) + 1, DK_E_CAPACITY);
#undef BAD_NET
    CHECK_RC(dk_run(e, p, 1, 1), DK_E_STATE); /* the failures loaded nothing */

    /* the synapse budget: this partition's share of the chip, 1e8 * 1 / 575 */
    const uint64_t share = 100000000ull / 575;
    net_t big;
    net_init(&big, 2, 0, share + 1);
    for (uint64_t i = 0; i <= share; i++) net_syn(&big, (uint32_t)(i & 1), (uint32_t)(~i & 1), 0.01f, 1);
    CHECK_RC(dk_network_load(e, p, &big.desc), DK_E_CAPACITY);
    big.desc.n_synapses = share;
    OK(dk_network_load(e, p, &big.desc)); /* exactly the share fits */
    dk_telemetry tb = tel(e, p);
    CHECK(tb.synapse_bytes >= share * 2);
    CHECK(tb.network_bytes >= tb.synapse_bytes);
    OK(dk_network_unload(e, p));
    net_free(&big);

    /* a chip with 2^63 synapses: the share of 2 cores must not wrap around to nothing */
    dk_chip_profile huge = darwin3();
    huge.synapses_per_chip = 1ull << 63;
    dk_chip_desc hd = chip_desc("HUGE");
    uint32_t hc = 0, hp = 0, two[] = {0, 1};
    OK(dk_chip_add(e, &huge, &hd, &hc));
    OK(dk_partition_create(e, hc, two, 2, DK_PART_EXCLUSIVE, 0, &hp));
    OK(dk_network_load(e, hp, &n.desc));
    OK(dk_partition_destroy(e, hp));

    OK(dk_network_load(e, p, &n.desc));
    CHECK_RC(dk_network_load(e, p, &n.desc), DK_E_CONFLICT);
    OK(dk_network_unload(e, p));
    CHECK_RC(dk_network_unload(e, p), DK_E_STATE);
    CHECK_RC(dk_network_unload(e, 9), DK_E_NOT_FOUND);
    OK(dk_network_load(e, p, &n.desc));

    /* run argument errors */
    CHECK_RC(dk_run(e, p, 1, 0), DK_E_INVALID);
    CHECK_RC(dk_run(e, p, 1, 65), DK_E_INVALID);
    CHECK_RC(dk_run(e, p, (1ull << 40) + 1, 1), DK_E_INVALID);
    CHECK_RC(dk_run(e, 9, 1, 1), DK_E_NOT_FOUND);
    CHECK_RC(dk_run(NULL, p, 1, 1), DK_E_INVALID);
    OK(dk_run(e, p, 0, 1));
    CHECK_U64(tel(e, p).steps, 0);
    OK(dk_run(e, p, 3, 64)); /* capped by the cores used */
    t = tel(e, p);
    CHECK_U64(t.steps, 3);
    CHECK_U64(t.threads, 1);
    CHECK_U64(t.cores_used, 1);

    /* argument errors of the ports and telemetry */
    uint32_t neu = 0;
    CHECK_RC(dk_record(e, p, NULL, 1, 4), DK_E_INVALID);
    CHECK_RC(dk_record(NULL, p, &neu, 1, 4), DK_E_INVALID);
    CHECK_RC(dk_record(e, p, &neu, 1, 0), DK_E_INVALID);
    CHECK_RC(dk_record(e, p, &neu, 1, (1u << 28) + 1), DK_E_INVALID);
    neu = 2;
    CHECK_RC(dk_record(e, p, &neu, 1, 4), DK_E_INVALID);
    CHECK_RC(dk_record(e, 9, &neu, 1, 4), DK_E_NOT_FOUND);
    CHECK_RC(dk_inject(e, p, NULL, u32, 1, &acc), DK_E_INVALID);
    CHECK_RC(dk_inject(e, p, u64, u32, 1, NULL), DK_E_INVALID);
    CHECK_RC(dk_read_spikes(e, p, NULL, u32, 1, &cnt), DK_E_INVALID);
    CHECK_RC(dk_read_spikes(e, p, u64, u32, 1, NULL), DK_E_INVALID);
    OK(dk_read_spikes(e, p, NULL, NULL, 0, &cnt)); /* nothing recorded: empty */
    CHECK_U64(cnt, 0);
    CHECK_RC(dk_input_capacity(e, p, 0), DK_E_INVALID);
    CHECK_RC(dk_input_capacity(e, p, (1u << 26) + 1), DK_E_INVALID);
    CHECK_RC(dk_input_capacity(NULL, p, 4), DK_E_INVALID);
    CHECK_RC(dk_membrane(e, p, v, 1), DK_E_INVALID);
    CHECK_RC(dk_membrane(e, p, NULL, 2), DK_E_INVALID);
    CHECK_RC(dk_telemetry_get(e, p, NULL), DK_E_INVALID);
    CHECK_RC(dk_telemetry_get(e, 9, &t), DK_E_NOT_FOUND);
    CHECK_RC(dk_link_events(e, p, u64, 8), DK_E_INVALID);
    CHECK_RC(dk_link_events(e, p, NULL, 2304), DK_E_INVALID);
    CHECK_RC(dk_core_events(e, p, u64, 2), DK_E_INVALID);
    CHECK_RC(dk_core_events(e, p, NULL, 1), DK_E_INVALID);
    CHECK_RC(dk_spike_counts(e, p, u64, 2), DK_E_INVALID);
    CHECK_RC(dk_spike_counts(e, p, NULL, 3), DK_E_INVALID);
    CHECK_RC(dk_neuron_core(e, p, 2, u32), DK_E_INVALID);
    CHECK_RC(dk_neuron_core(e, p, 0, NULL), DK_E_INVALID);
    CHECK_RC(dk_neuron_core(e, 9, 0, u32), DK_E_NOT_FOUND);
    OK(dk_neuron_core(e, p, 1, u32));
    CHECK_U64(u32[0], 100);

    net_free(&n);
    dk_engine_destroy(e);
}

/* One input, one neuron, weight above threshold, delay 3: the exact timing of a spike. */
static void test_spike_timing(void) {
    uint32_t p;
    dk_engine *e = engine_one_core(30, &p);
    net_t n;
    net_init(&n, 1, 1, 1);
    n.groups[0] = lif(1, 0.f, 2.f); /* 2 ms refractory at 1 ms steps */
    net_syn(&n, 1, 0, 15.f, 3);
    OK(dk_network_load(e, p, &n.desc));
    uint32_t neu = 0;
    OK(dk_record(e, p, &neu, 1, 16));
    uint64_t st = 5;
    uint32_t in = 0, acc = 0;
    OK(dk_inject(e, p, &st, &in, 1, &acc));
    CHECK_U64(acc, 1);
    OK(dk_run(e, p, 20, 1));
    uint64_t steps[16];
    uint32_t ids[16], cnt = 0;
    OK(dk_read_spikes(e, p, steps, ids, 16, &cnt));
    CHECK_U64(cnt, 1);
    CHECK_U64(steps[0], 8); /* delivered into the slot of step 5 + 3, integrated at step 8 */
    CHECK_U64(ids[0], 0);
    OK(dk_read_spikes(e, p, steps, ids, 16, &cnt));
    CHECK_U64(cnt, 0); /* reading consumes */
    dk_telemetry t = tel(e, p);
    CHECK_U64(t.steps, 20);
    CHECK_U64(t.spikes, 1);
    CHECK_U64(t.input_spikes, 1);
    CHECK_U64(t.events, 1);
    CHECK_U64(t.packets, 1);
    CHECK_U64(t.drive_events, 0);
    CHECK_U64(t.dropped_queue + t.dropped_fault + t.dropped_budget + t.dropped_input +
                  t.dropped_output, 0);
    CHECK_U64(t.queue_peak, 1);
    CHECK_U64(t.cores_used, 1);
    CHECK(t.wall_ns > 0);
    CHECK(t.quant_error_mv == 0.0);
    uint64_t counts[2];
    OK(dk_spike_counts(e, p, counts, 2));
    CHECK_U64(counts[0], 1);
    CHECK_U64(counts[1], 1);
    uint64_t ce = 0;
    OK(dk_core_events(e, p, &ce, 1));
    CHECK_U64(ce, 1);
    float v = -1.f;
    OK(dk_membrane(e, p, &v, 1));
    CHECK(v == 0.f); /* reset to 0 mV and at rest since */

    /* refractoriness: the arrival at 23 fires; 24 and 25 fall in the 2-step dead time; 26 fires */
    uint64_t st2[] = {23, 22, 21, 20};
    uint32_t in2[] = {0, 0, 0, 0};
    OK(dk_inject(e, p, st2, in2, 4, &acc));
    CHECK_U64(acc, 4);
    OK(dk_run(e, p, 10, 1));
    OK(dk_read_spikes(e, p, steps, ids, 16, &cnt));
    CHECK_U64(cnt, 2);
    CHECK_U64(steps[0], 23);
    CHECK_U64(steps[1], 26);

    /* a past step is refused, the current one accepted */
    st = 29;
    CHECK_RC(dk_inject(e, p, &st, &in, 1, &acc), DK_E_INVALID);
    CHECK_U64(acc, 0);
    st = 30;
    OK(dk_inject(e, p, &st, &in, 1, &acc));
    CHECK_U64(acc, 1);
    in = 1; /* no such input */
    CHECK_RC(dk_inject(e, p, &st, &in, 1, &acc), DK_E_INVALID);
    CHECK_U64(acc, 0);
    OK(dk_run(e, p, 5, 1));
    OK(dk_read_spikes(e, p, steps, ids, 16, &cnt));
    CHECK_U64(cnt, 1);
    CHECK_U64(steps[0], 33);
    net_free(&n);
    dk_engine_destroy(e);
}

/* Membrane potentials follow the exact iaf_psc_delta update. */
static void test_membrane(void) {
    uint32_t p;
    dk_engine *e = engine_one_core(31, &p);
    net_t n;
    net_init(&n, 3, 1, 2);
    n.desc.n_groups = 2;
    n.groups[0] = lif(2, 0.f, 0.f);
    n.groups[0].v_init = 2.f;
    n.groups[1] = lif(1, 0.5f, 0.f); /* tends to tau * i_e = 5 mV, below threshold */
    net_syn(&n, 3, 0, 5.f, 1);
    OK(dk_network_load(e, p, &n.desc));
    float v[3];
    OK(dk_membrane(e, p, v, 3));
    CHECK(v[0] == 2.f && v[1] == 2.f && v[2] == 0.f);
    uint64_t st = 0;
    uint32_t in = 0, acc = 0;
    OK(dk_inject(e, p, &st, &in, 1, &acc));
    OK(dk_run(e, p, 2, 1)); /* step 0 decays, step 1 adds the 5 mV event */
    const float p22 = (float)exp(-0.1);
    OK(dk_membrane(e, p, v, 3));
    const float v0 = p22 * (p22 * 2.f) + 5.f;
    CHECK(fabsf(v[0] - v0) < 1e-5f);
    CHECK(fabsf(v[1] - p22 * p22 * 2.f) < 1e-5f);
    const float p20ie = (float)(10.0 * (1.0 - exp(-0.1)) * 0.5);
    CHECK(fabsf(v[2] - (p22 * p20ie + p20ie)) < 1e-5f);
    OK(dk_run(e, p, 500, 1));
    OK(dk_membrane(e, p, v, 3));
    CHECK(fabsf(v[0]) < 1e-3f);
    CHECK(fabsf(v[2] - 5.f) < 1e-3f);
    CHECK_U64(tel(e, p).spikes, 0);
    net_free(&n);
    dk_engine_destroy(e);
}

/* A NIR-model group: leaky models at rest at 0 with threshold 1. */
static dk_group nir_group(int32_t model, uint32_t count) {
    dk_group g;
    memset(&g, 0, sizeof g);
    g.count = count;
    g.model = model;
    g.tau_m = 10.f;
    g.tau_syn = 5.f;
    g.r = 1.f;
    g.w_in = 1.f;
    g.v_th = 1.f;
    return g;
}

/* The NIR models: exact propagators, reset modes, readout of potentials and currents, and
 * refusal of parameters that belong to another model. */
static void test_nir_models(void) {
    uint32_t p;
    dk_engine *e = engine_one_core(40, &p);
    net_t n;
    net_init(&n, 4, 1, 8);
    n.desc.n_groups = 4;
    n.groups[0] = nir_group(DK_MODEL_LIF, 1);
    n.groups[0].reset = DK_RESET_SUBTRACT;
    n.groups[1] = nir_group(DK_MODEL_IF, 1);
    n.groups[1].r = 0.5f; /* per ms: dt 1 ms, so v += 0.5 x */
    n.groups[2] = nir_group(DK_MODEL_CUBA_LI, 1);
    n.groups[3] = nir_group(DK_MODEL_LI, 1);
    n.groups[3].bias_start = 1; /* the bias from step 1 on */
    float bias[4] = {0.f, 0.f, 0.f, 0.25f};
    n.desc.bias = bias;
    for (uint32_t t = 0; t < 3; t++) net_syn(&n, 4, t, 3.f, 1);
    OK(dk_network_load(e, p, &n.desc));
    uint64_t st = 0;
    uint32_t in = 0, acc = 0;
    OK(dk_inject(e, p, &st, &in, 1, &acc));
    OK(dk_run(e, p, 2, 1)); /* the input arrives at step 1 */
    float v[4], cur[4];
    OK(dk_potentials(e, p, 0, 4, v, cur));
    const double am = exp(-0.1), as = exp(-0.2);
    /* LIF: 3 (1 - a_m) = 0.285 stays below threshold; IF: 1.5 fires and resets to 0 */
    CHECK(fabsf(v[0] - (float)(3.0 * (1.0 - am))) < 1e-6f);
    CHECK(v[1] == 0.f);
    const double k = 5.0 / (5.0 - 10.0) * (as - am);
    CHECK(fabsf(v[2] - (float)(3.0 * (1.0 - am - k))) < 1e-6f);
    CHECK(fabsf(cur[2] - (float)(3.0 * (1.0 - as))) < 1e-6f);
    CHECK(cur[0] == 0.f);
    /* LI with bias 0.25 from step 1: one step of it */
    const float g = (float)(1.0 - am);
    CHECK(v[3] == 0.f + (float)am * (0.f - 0.f) + g * 0.25f);
    CHECK_U64(tel(e, p).spikes, 1);
    /* the current then drives the membrane: v = r K i after one more step without input */
    float v_before = v[2], c_before = cur[2];
    OK(dk_run(e, p, 1, 1));
    OK(dk_potentials(e, p, 2, 1, v, cur));
    CHECK(fabsf(v[0] - ((float)am * v_before + (float)k * c_before)) < 1e-6f);
    CHECK(fabsf(cur[0] - (float)as * c_before) < 1e-7f);
    CHECK_RC(dk_potentials(e, p, 3, 2, v, NULL), DK_E_INVALID);
    CHECK_RC(dk_potentials(e, p, 5, 0, v, NULL), DK_E_INVALID);
    OK(dk_network_unload(e, p));
    /* reset by subtraction keeps the excess above threshold */
    n.groups[0].r = 3.4f; /* one input: 3.4 x 3 (1 - a_m) = 0.97; two: fires */
    OK(dk_network_load(e, p, &n.desc));
    uint64_t st2[2] = {0, 1};
    uint32_t in2[2] = {0, 0};
    OK(dk_inject(e, p, st2, in2, 2, &acc));
    OK(dk_run(e, p, 3, 1));
    OK(dk_potentials(e, p, 0, 1, v, NULL));
    const float gx = (float)((double)3.4f * (1.0 - am));
    float v1 = 0.f + (float)am * (0.f - 0.f) + gx * 3.f;
    CHECK(v1 < 1.f);
    float v2 = 0.f + (float)am * (v1 - 0.f) + gx * 3.f;
    CHECK(v2 > 1.f);
    CHECK(v[0] == v2 - 1.f);
    OK(dk_network_unload(e, p));
    /* parameters of another model are refused, naming the group and the model */
    net_t b = n;
    b.desc.groups = b.groups;
    b.groups[0].t_ref = 1.f;
    CHECK_RC(dk_network_load(e, p, &b.desc), DK_E_INVALID);
    CHECK(strstr(dk_last_error(), "group 0 (LIF)") != NULL);
    b = n;
    b.desc.groups = b.groups;
    b.groups[2].tau_syn = 0.f;
    CHECK_RC(dk_network_load(e, p, &b.desc), DK_E_INVALID);
    b = n;
    b.desc.groups = b.groups;
    b.groups[0].reset = 7;
    CHECK_RC(dk_network_load(e, p, &b.desc), DK_E_INVALID);
    b = n;
    b.desc.groups = b.groups;
    b.groups[0].model = DK_N_MODELS;
    CHECK_RC(dk_network_load(e, p, &b.desc), DK_E_INVALID);
    b = n;
    b.desc.groups = b.groups;
    b.groups[1].v_reset = 2.f;
    CHECK_RC(dk_network_load(e, p, &b.desc), DK_E_INVALID);
    b = n;
    b.desc.groups = b.groups;
    b.groups[0] = lif(1, 0.f, 0.f);
    bias[0] = 1.f; /* a bias on iaf_psc_delta */
    CHECK_RC(dk_network_load(e, p, &b.desc), DK_E_INVALID);
    bias[0] = NAN;
    CHECK_RC(dk_network_load(e, p, &n.desc), DK_E_INVALID);
    bias[0] = 0.f;
    b = n;
    b.desc.groups = b.groups;
    b.groups[0] = lif(1, 0.f, 0.f);
    b.groups[0].r = 1.f; /* NIR fields on iaf_psc_delta */
    CHECK_RC(dk_network_load(e, p, &b.desc), DK_E_INVALID);
    OK(dk_network_load(e, p, &n.desc));
    net_free(&n);
    dk_engine_destroy(e);
}

/* Ports: input queue overflow, output buffer overflow, reading in pieces. */
static void test_ports(void) {
    uint32_t p;
    dk_engine *e = engine_one_core(32, &p);
    net_t n;
    net_init(&n, 2, 1, 1);
    n.desc.n_groups = 2;
    n.groups[0] = lif(1, 0.f, 0.f);
    n.groups[1] = lif(1, 100.f, 0.f); /* neuron 1 fires every step */
    net_syn(&n, 2, 0, 0.f, 1);
    OK(dk_network_load(e, p, &n.desc));

    OK(dk_input_capacity(e, p, 4));
    uint64_t st[] = {9, 1, 8, 2, 7, 3};
    uint32_t in[] = {0, 0, 0, 0, 0, 0}, acc = 99;
    CHECK_RC(dk_inject(e, p, st, in, 6, &acc), DK_E_OVERFLOW);
    CHECK_U64(acc, 4);
    CHECK_U64(tel(e, p).dropped_input, 2);
    CHECK_RC(dk_inject(e, p, st, in, 1, &acc), DK_E_OVERFLOW); /* full: none accepted */
    CHECK_U64(acc, 0);
    CHECK_U64(tel(e, p).dropped_input, 3);
    CHECK_RC(dk_input_capacity(e, p, 3), DK_E_CONFLICT); /* 4 pending */
    OK(dk_input_capacity(e, p, 8));                     /* growing keeps them */

    uint32_t neu = 1;
    OK(dk_record(e, p, &neu, 1, 1));
    OK(dk_run(e, p, 10, 1));
    dk_telemetry t = tel(e, p);
    CHECK_U64(t.input_spikes, 4); /* the earliest four: steps 1, 2, 3, 7 */
    CHECK_U64(t.spikes, 10);
    CHECK_U64(t.dropped_output, 9);
    uint64_t counts[3];
    OK(dk_spike_counts(e, p, counts, 3));
    CHECK_U64(counts[0], 0);
    CHECK_U64(counts[1], 10);
    CHECK_U64(counts[2], 4);
    uint64_t steps[8];
    uint32_t ids[8], cnt = 0;
    OK(dk_read_spikes(e, p, steps, ids, 8, &cnt));
    CHECK_U64(cnt, 1);
    CHECK_U64(steps[0], 0);
    CHECK_U64(ids[0], 1);

    /* a larger buffer, read in pieces of 3, wraps around the ring */
    OK(dk_record(e, p, &neu, 1, 5));
    OK(dk_run(e, p, 4, 1));
    OK(dk_read_spikes(e, p, steps, ids, 3, &cnt));
    CHECK_U64(cnt, 3);
    CHECK(steps[0] == 10 && steps[1] == 11 && steps[2] == 12);
    OK(dk_run(e, p, 3, 1));
    OK(dk_read_spikes(e, p, steps, ids, 8, &cnt));
    CHECK_U64(cnt, 4);
    CHECK(steps[0] == 13 && steps[1] == 14 && steps[2] == 15 && steps[3] == 16);
    CHECK_U64(tel(e, p).dropped_output, 9);

    /* recording nothing stops recording */
    OK(dk_record(e, p, NULL, 0, 0));
    OK(dk_run(e, p, 2, 1));
    OK(dk_read_spikes(e, p, steps, ids, 8, &cnt));
    CHECK_U64(cnt, 0);
    CHECK_U64(tel(e, p).dropped_output, 9);
    net_free(&n);
    dk_engine_destroy(e);
}

/* A tiny per-core queue drops whole packets and counts the events lost. */
static void test_queue_capacity(void) {
    dk_chip_profile prof = darwin3();
    prof.core_queue_events = 2;
    dk_engine *e = engine_with(&prof);
    uint32_t c1[] = {40};
    uint32_t p = part_of(e, c1, 1, DK_PART_EXCLUSIVE);
    net_t n;
    net_init(&n, 3, 2, 3);
    net_syn(&n, 3, 0, 1.f, 1);
    net_syn(&n, 3, 1, 1.f, 1);
    net_syn(&n, 4, 2, 1.f, 1);
    OK(dk_network_load(e, p, &n.desc));
    uint64_t st[] = {0, 0};
    uint32_t in[] = {0, 1}, acc = 0;
    OK(dk_inject(e, p, st, in, 2, &acc));
    OK(dk_run(e, p, 3, 1));
    dk_telemetry t = tel(e, p);
    CHECK_U64(t.input_spikes, 2);
    CHECK_U64(t.events, 2);        /* input 0's two events fill the queue of step 1 */
    CHECK_U64(t.dropped_queue, 1); /* input 1's event does not fit */
    CHECK_U64(t.queue_peak, 2);
    float v[3];
    OK(dk_membrane(e, p, v, 3));
    CHECK(v[0] > 0.f && v[1] > 0.f && v[2] == 0.f);
    /* the next step has its own queue */
    uint64_t st2[] = {3, 4};
    OK(dk_inject(e, p, st2, in, 2, &acc));
    OK(dk_run(e, p, 3, 1));
    t = tel(e, p);
    CHECK_U64(t.events, 5);
    CHECK_U64(t.dropped_queue, 1);
    net_free(&n);
    dk_engine_destroy(e);
}

/* The router's bandwidth: a link carries dk_link_capacity packets a step; what does not fit
 * waits in the backlog of the link, one step at a time; past DK_LINK_BACKLOG_STEPS steps of
 * capacity it is dropped and counted there. And the saturation calibration's errors. */
static void test_link_bandwidth(void) {
    dk_chip_profile prof = darwin3();
    CHECK_U64(dk_link_capacity(prof.router_events_per_s, 0.1, 24, 24), 45289);
    CHECK_U64(dk_link_capacity(1.0, 0.1, 24, 24), 1);
    CHECK_U64(dk_link_capacity(1e12, 0.1, 1, 1), 1); /* a one-tile mesh has no links */
    prof.router_events_per_s = 1.5 * 2208 / 1e-3;   /* one packet a link a step of 1 ms */
    dk_engine *e = engine_with(&prof);
    uint32_t c1[] = {40};
    uint32_t p = part_of(e, c1, 1, DK_PART_EXCLUSIVE);
    net_t n;
    net_init(&n, 1, 1, 1);
    net_syn(&n, 1, 0, 1.f, 1);
    OK(dk_network_load(e, p, &n.desc));
    uint64_t st[12] = {0};
    uint32_t in[12] = {0}, acc = 0;
    OK(dk_inject(e, p, st, in, 12, &acc));
    OK(dk_run(e, p, 1, 1));
    dk_telemetry t = tel(e, p);
    CHECK_U64(t.link_capacity, 1);
    CHECK_U64(t.routed_spikes, 1);
    CHECK_U64(t.backlog, DK_LINK_BACKLOG_STEPS);
    CHECK_U64(t.dropped_link_spikes, 12 - 1 - DK_LINK_BACKLOG_STEPS);
    CHECK_U64(t.dropped_link, 12 - 1 - DK_LINK_BACKLOG_STEPS);
    OK(dk_run(e, p, 5, 2));
    t = tel(e, p);
    CHECK_U64(t.routed_spikes, 1 + DK_LINK_BACKLOG_STEPS);
    CHECK_U64(t.backlog, 0);
    CHECK_U64(t.deferred, 4 + 3 + 2 + 1);
    CHECK_U64(t.events, 1 + DK_LINK_BACKLOG_STEPS);
    CHECK(t.link_util_peak > 0.8 && t.link_util_peak <= 1.0); /* 5 packets in 6 steps */
    uint32_t links = 0;
    OK(dk_link_count(e, 0, &links));
    uint64_t *carried = calloc(links, sizeof *carried), *dropped = calloc(links, sizeof *dropped);
    if (!carried || !dropped) abort();
    OK(dk_link_stats(e, p, carried, dropped, NULL, links));
    uint64_t most = 0, lost = 0;
    for (uint32_t l = 0; l < links; l++) {
        most = carried[l] > most ? carried[l] : most;
        lost += dropped[l];
    }
    CHECK_U64(most, 1 + DK_LINK_BACKLOG_STEPS);
    CHECK_U64(lost, 12 - 1 - DK_LINK_BACKLOG_STEPS);
    CHECK_RC(dk_link_stats(e, p, NULL, NULL, NULL, links + 1), DK_E_INVALID);
    double sat = -1;
    uint32_t two[] = {1, 2}, bad[] = {99999};
    OK(dk_saturation(e, 0, two, 2, &sat));
    CHECK(sat > 0);
    CHECK_RC(dk_saturation(e, 0, bad, 1, &sat), DK_E_INVALID);
    CHECK_RC(dk_saturation(e, 3, NULL, 0, &sat), DK_E_NOT_FOUND);
    CHECK_RC(dk_saturation(e, 0, NULL, 2, &sat), DK_E_INVALID);
    free(carried);
    free(dropped);
    net_free(&n);
    dk_engine_destroy(e);
}

/* Chips of one fabric: a fabric link carries dk_fabric_capacity spikes a step, FIFO; a spike
 * that would wait more than DK_LINK_BACKLOG_STEPS steps is dropped and counted at the link. */
static void test_fabric_links(void) {
    CHECK_U64(dk_fabric_capacity(2000.0, 1.0), 2);
    CHECK_U64(dk_fabric_capacity(1.0, 0.1), 1);
    dk_chip_profile prof = darwin3();
    prof.fabric_events_per_s = 2000.0; /* 2 spikes a step of 1 ms */
    dk_engine *e = engine_with(&prof);
    dk_chip_desc d1 = chip_desc("D3-0002"), d2 = chip_desc("D3-0003");
    snprintf(d2.fabric, sizeof d2.fabric, "fabric-1");
    uint32_t id = 0, a = 0, b = 0, c = 0, core = 5;
    OK(dk_chip_add(e, &prof, &d1, &id));
    OK(dk_chip_add(e, &prof, &d2, &id));
    OK(dk_partition_create(e, 0, &core, 1, DK_PART_EXCLUSIVE, 0, &a));
    OK(dk_partition_create(e, 1, &core, 1, DK_PART_EXCLUSIVE, 0, &b));
    OK(dk_partition_create(e, 2, &core, 1, DK_PART_EXCLUSIVE, 0, &c));
    net_t n;
    net_init(&n, 1, 12, 1);
    net_syn(&n, 1, 0, 1.f, 1);
    OK(dk_network_load(e, a, &n.desc));
    OK(dk_network_load(e, b, &n.desc));
    OK(dk_network_load(e, c, &n.desc));
    uint64_t st[12] = {0}, at[12];
    uint32_t in[12] = {0}, sent = 0;
    for (uint32_t i = 0; i < 12; i++) in[i] = i;
    OK(dk_fabric_send(e, a, b, st, in, 10, at, &sent));
    CHECK_U64(sent, 10);
    CHECK_U64(at[0], 0);
    CHECK_U64(at[3], 1);
    CHECK_U64(at[9], 4);
    OK(dk_fabric_send(e, a, b, st, in + 10, 2, at, &sent)); /* would wait 5 steps: dropped */
    CHECK_U64(sent, 0);
    CHECK_U64(at[0], UINT64_MAX);
    dk_fabric_stats fs;
    OK(dk_fabric_link_stats(e, 0, 1, &fs));
    CHECK_U64(fs.capacity, 2);
    CHECK_U64(fs.carried, 10);
    CHECK_U64(fs.dropped, 2);
    CHECK_U64(fs.deferred, 0 + 0 + 1 + 1 + 2 + 2 + 3 + 3 + 4 + 4);
    CHECK_U64(fs.peak, 2);
    CHECK_U64(fs.busy_steps, 5);
    OK(dk_fabric_link_stats(e, 1, 0, &fs)); /* the other direction: unused */
    CHECK_U64(fs.carried + fs.capacity, 0);
    OK(dk_run(e, b, 6, 1));
    CHECK_U64(tel(e, b).input_spikes, 10);
    CHECK_RC(dk_fabric_send(e, a, a, st, in, 1, NULL, &sent), DK_E_INVALID); /* one chip */
    CHECK_RC(dk_fabric_send(e, b, c, st, in, 1, NULL, &sent), DK_E_INVALID); /* two fabrics */
    CHECK_RC(dk_fabric_send(e, a, b, st, in, 1, NULL, &sent), DK_E_INVALID); /* step 0 is past */
    uint64_t late = 7;
    uint32_t bad = 12;
    CHECK_RC(dk_fabric_send(e, a, b, &late, &bad, 1, NULL, &sent), DK_E_INVALID);
    CHECK_RC(dk_fabric_send(e, a, 99, &late, in, 1, NULL, &sent), DK_E_NOT_FOUND);
    CHECK_RC(dk_fabric_send(e, a, b, NULL, in, 1, NULL, &sent), DK_E_INVALID);
    CHECK_RC(dk_fabric_link_stats(e, 0, 0, &fs), DK_E_INVALID);
    CHECK_RC(dk_fabric_link_stats(e, 0, 7, &fs), DK_E_NOT_FOUND);
    OK(dk_fault_inject(e, 1, DK_FAULT_CHIP, 0));
    CHECK_RC(dk_fabric_send(e, a, b, &late, in, 1, NULL, &sent), DK_E_STATE);
    net_free(&n);
    dk_engine_destroy(e);
}

/* The route of a spike from chip a to chip b, as a string of chip ids ("0 1 4"), "" if none. */
static const char *route_of(dk_engine *e, uint32_t a, uint32_t b) {
    static char out[128];
    uint32_t chips[16], n = 99;
    OK(dk_fabric_route(e, a, b, chips, 16, &n));
    out[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        const size_t at = strlen(out);
        snprintf(out + at, sizeof out - at, i ? " %u" : "%u", chips[i]);
    }
    return out;
}

/* Six chips on a grid of three a row (0 1 2 / 3 4 5): spikes cross shortest paths, row first,
 * every hop charged; a failed fabric link is routed around, or, with no path left, its spikes
 * are dropped and counted there; clearing it restores the direct path. */
static void test_fabric_grid(void) {
    dk_chip_profile prof = darwin3();
    prof.fabric_events_per_s = 2000.0; /* 2 spikes a step of 1 ms */
    prof.fabric_grid_w = 3;
    dk_engine *e = engine_with(&prof);
    uint32_t id = 0, core = 5, p[6];
    for (uint32_t i = 1; i < 6; i++) {
        char serial[16];
        snprintf(serial, sizeof serial, "G-%u", i);
        dk_chip_desc d = chip_desc(serial);
        OK(dk_chip_add(e, &prof, &d, &id));
    }
    net_t n;
    net_init(&n, 1, 8, 1);
    net_syn(&n, 1, 0, 1.f, 1);
    for (uint32_t i = 0; i < 6; i++) {
        OK(dk_partition_create(e, i, &core, 1, DK_PART_EXCLUSIVE, 0, &p[i]));
        OK(dk_network_load(e, p[i], &n.desc));
    }
    CHECK(strcmp(route_of(e, 0, 5), "0 1 2 5") == 0);
    CHECK(strcmp(route_of(e, 5, 0), "5 4 3 0") == 0);
    dk_chip_info ci;
    OK(dk_chip_info_get(e, 4, &ci));
    CHECK_U64(ci.fabric_links, 3); /* 3, 5 and 1 */
    dk_fabric_stats fs;
    CHECK_RC(dk_fabric_link_stats(e, 0, 2, &fs), DK_E_NOT_FOUND); /* not neighbours */
    CHECK_RC(dk_fault_inject(e, 0, DK_FAULT_FABRIC, 4), DK_E_NOT_FOUND);
    uint64_t st[5] = {0}, at[5];
    uint32_t in[5] = {0, 1, 2, 3, 4}, sent = 0;
    OK(dk_fabric_send(e, p[0], p[5], st, in, 5, at, &sent)); /* 3 hops of 2 a step */
    CHECK_U64(sent, 5);
    CHECK_U64(at[0], 0);
    CHECK_U64(at[4], 2);
    OK(dk_fabric_link_stats(e, 2, 5, &fs));
    CHECK_U64(fs.carried, 5);
    OK(dk_fault_inject(e, 1, DK_FAULT_FABRIC, 2));
    OK(dk_chip_info_get(e, 1, &ci));
    CHECK_U64(ci.fabric_links, 3);
    CHECK_U64(ci.failed_fabric_links, 1);
    CHECK(strcmp(route_of(e, 0, 5), "0 1 4 5") == 0); /* around 1 -> 2 */
    OK(dk_fault_inject(e, 3, DK_FAULT_FABRIC, 0)); /* chip 0 cut off from 3 and from 1 */
    OK(dk_fault_inject(e, 1, DK_FAULT_FABRIC, 0));
    CHECK(strcmp(route_of(e, 0, 5), "0 1 4 5") == 0); /* outgoing links still work */
    CHECK(strcmp(route_of(e, 5, 0), "") == 0);
    uint64_t later[2] = {3, 3};
    OK(dk_fabric_send(e, p[5], p[0], later, in, 2, at, &sent));
    CHECK_U64(sent, 0);
    CHECK_U64(at[1], UINT64_MAX);
    OK(dk_fabric_link_stats(e, 3, 0, &fs)); /* the first broken hop of 5 4 3 0 */
    CHECK_U64(fs.dropped_fault, 2);
    CHECK_U64(fs.failed, 1);
    OK(dk_fault_clear(e, 3, DK_FAULT_FABRIC, 0));
    OK(dk_fault_clear(e, 1, DK_FAULT_FABRIC, 2));
    CHECK(strcmp(route_of(e, 5, 0), "5 4 3 0") == 0);
    CHECK(strcmp(route_of(e, 0, 5), "0 1 2 5") == 0);
    OK(dk_fabric_link_stats(e, 1, 2, &fs));
    CHECK_U64(fs.failed, 0);
    OK(dk_fault_inject(e, 4, DK_FAULT_CHIP, 0)); /* a failed chip on the way is avoided */
    CHECK(strcmp(route_of(e, 3, 5), "3 0 1 2 5") == 0);
    CHECK_RC(dk_fault_inject(e, 0, DK_FAULT_FABRIC, 0), DK_E_INVALID);
    CHECK_RC(dk_fault_inject(e, 0, DK_FAULT_FABRIC, 9), DK_E_NOT_FOUND);
    CHECK_RC(dk_fault_inject(e, 0, 5, 0), DK_E_INVALID);
    uint32_t small[2];
    CHECK_RC(dk_fabric_route(e, 0, 5, small, 2, &sent), DK_E_INVALID);
    net_free(&n);
    dk_engine_destroy(e);
}

/* Two partitions whose routes share a link split its capacity each step; alone, one gets it all. */
static void test_shared_links(void) {
    dk_chip_profile prof = darwin3();
    prof.router_events_per_s = 2.5 * 2208 / 1e-3; /* two packets a link a step of 1 ms */
    dk_engine *e = engine_with(&prof);
    uint32_t ca = core_at(3, 0), cb = core_at(5, 0); /* both fed east along row 0 */
    uint32_t a = part_of(e, &ca, 1, DK_PART_EXCLUSIVE), b = part_of(e, &cb, 1, DK_PART_EXCLUSIVE);
    net_t n;
    net_init(&n, 1, 1, 1);
    net_syn(&n, 1, 0, 1.f, 1);
    OK(dk_network_load(e, a, &n.desc));
    OK(dk_network_load(e, b, &n.desc));
    uint32_t links = 0;
    int32_t shared = -1;
    OK(dk_link_count(e, 0, &links));
    OK(dk_link_index(e, 0, 0, 0, DK_DIR_EAST, &shared));
    uint32_t *users = calloc(links, sizeof *users);
    if (!users || shared < 0) abort();
    OK(dk_link_users(e, a, users, links));
    CHECK_U64(users[shared], 2);
    CHECK_RC(dk_link_users(e, a, users, links - 1), DK_E_INVALID);
    uint64_t st[2] = {0, 0};
    uint32_t in[2] = {0, 0}, acc = 0;
    OK(dk_inject(e, a, st, in, 2, &acc));
    OK(dk_inject(e, b, st, in, 2, &acc));
    OK(dk_run(e, a, 1, 1));
    OK(dk_run(e, b, 1, 1));
    CHECK_U64(tel(e, a).routed_spikes + tel(e, b).routed_spikes, 2); /* one each: 2 = B */
    CHECK_U64(tel(e, a).routed_spikes, 1);
    OK(dk_network_unload(e, b));
    OK(dk_link_users(e, a, users, links));
    CHECK_U64(users[shared], 1);
    st[0] = st[1] = 1;
    OK(dk_inject(e, a, st, in, 2, &acc));
    OK(dk_run(e, a, 1, 1)); /* alone: the waiting one and... B = 2 a step */
    CHECK_U64(tel(e, a).routed_spikes, 3);
    free(users);
    net_free(&n);
    dk_engine_destroy(e);
}

/* The KEPS share limits the events delivered per step; the excess is counted. */
static void test_budget(void) {
    dk_engine *e = engine_darwin3();
    uint32_t c1[] = {41};
    uint32_t p = UINT32_MAX;
    OK(dk_partition_create(e, 0, c1, 1, DK_PART_SHARED, 1, &p)); /* 1 KEPS: ~1 event a 1 ms step */
    net_t n;
    net_init(&n, 3, 1, 3);
    for (uint32_t i = 0; i < 3; i++) net_syn(&n, 3, i, 1.f, 1);
    OK(dk_network_load(e, p, &n.desc));
    uint64_t st = 0;
    uint32_t in = 0, acc = 0;
    OK(dk_inject(e, p, &st, &in, 1, &acc));
    OK(dk_run(e, p, 2, 1));
    dk_telemetry t = tel(e, p);
    CHECK_U64(t.events, 0);
    CHECK_U64(t.dropped_budget, 3);
    OK(dk_partition_set_budget(e, p, 0)); /* unlimited */
    st = 2;
    OK(dk_inject(e, p, &st, &in, 1, &acc));
    OK(dk_run(e, p, 2, 1));
    t = tel(e, p);
    CHECK_U64(t.events, 3);
    CHECK_U64(t.dropped_budget, 3);
    OK(dk_partition_set_budget(e, p, 1000000)); /* plenty */
    st = 4;
    OK(dk_inject(e, p, &st, &in, 1, &acc));
    OK(dk_run(e, p, 2, 1));
    t = tel(e, p);
    CHECK_U64(t.events, 6);
    CHECK_U64(t.dropped_budget, 3);
    /* an absurd budget is unlimited, not undefined */
    OK(dk_partition_set_budget(e, p, UINT64_MAX));
    st = 6;
    OK(dk_inject(e, p, &st, &in, 1, &acc));
    OK(dk_run(e, p, 2, 1));
    CHECK_U64(tel(e, p).events, 9);
    net_free(&n);
    dk_engine_destroy(e);
}

static void test_partition_config(void) {
    dk_engine *e = engine_darwin3();
    uint32_t c1[] = {42};
    uint32_t p = UINT32_MAX;
    OK(dk_partition_create(e, 0, c1, 1, DK_PART_SHARED, 0, &p));
    net_t n;
    net_init(&n, 3, 1, 3); /* dt 1 ms */
    for (uint32_t i = 0; i < 3; i++) net_syn(&n, 3, i, 1.f, 1);
    dk_partition_config cfg = {.timestep_us = 100, .routing = DK_ROUTE_XY};
    OK(dk_partition_configure(e, p, &cfg));
    CHECK_RC(dk_network_load(e, p, &n.desc), DK_E_INVALID); /* 1000 us is not 100 us */
    cfg = (dk_partition_config){.timestep_us = 1000, .max_neurons = 2};
    OK(dk_partition_configure(e, p, &cfg));
    CHECK_RC(dk_network_load(e, p, &n.desc), DK_E_CAPACITY);
    cfg = (dk_partition_config){.max_neurons = 3, .max_synapses = 2};
    OK(dk_partition_configure(e, p, &cfg));
    CHECK_RC(dk_network_load(e, p, &n.desc), DK_E_CAPACITY);
    cfg.max_synapses = 3;
    OK(dk_partition_configure(e, p, &cfg));
    OK(dk_network_load(e, p, &n.desc));
    CHECK_RC(dk_partition_configure(e, p, &cfg), DK_E_CONFLICT); /* loaded: too late */
    dk_partition_config got;
    OK(dk_partition_config_get(e, p, &got));
    CHECK_U64(got.max_synapses, 3);
    cfg.routing = 7;
    CHECK_RC(dk_partition_configure(e, p, &cfg), DK_E_INVALID);
    cfg = (dk_partition_config){.timestep_us = 20000};
    CHECK_RC(dk_partition_configure(e, p, &cfg), DK_E_INVALID);
    CHECK_RC(dk_partition_configure(e, p, NULL), DK_E_INVALID);
    cfg.timestep_us = 0;
    CHECK_RC(dk_partition_configure(e, 99, &cfg), DK_E_NOT_FOUND);
    CHECK_RC(dk_partition_config_get(e, p, NULL), DK_E_INVALID);
    /* KEPS: events per second of model time */
    CHECK(dk_keps_of(5000, 10, 1.0) == 500.0);
    CHECK(dk_keps_of(5000, 0, 1.0) == 0.0);
    CHECK(dk_keps_events_per_step(500.0, 1.0) == 500.0);
    net_free(&n);
    dk_engine_destroy(e);
}

/* ---- faults ---- */

static void test_fault_health(void) {
    dk_engine *e = engine_darwin3();
    dk_chip_info ci;
    dk_domain_info di;
    dk_core_info k;
    OK(dk_fault_inject(e, 0, DK_FAULT_CORE, 20)); /* core 20: (21,0), domain 5 */
    OK(dk_chip_info_get(e, 0, &ci));
    CHECK_U64(ci.failed_cores, 1);
    CHECK(ci.health == DK_HEALTH_OK); /* a chip with a failed core still works */
    OK(dk_domain_info_get(e, 0, 5, &di));
    CHECK_U64(di.failed_cores, 1);
    CHECK(di.health == DK_HEALTH_FAILED);
    OK(dk_domain_info_get(e, 0, 4, &di));
    CHECK(di.health == DK_HEALTH_OK);
    OK(dk_core_info_get(e, 0, 20, &k));
    CHECK(k.health == DK_HEALTH_FAILED);
    OK(dk_core_info_get(e, 0, 19, &k));
    CHECK(k.health == DK_HEALTH_OK);
    OK(dk_fault_clear(e, 0, DK_FAULT_CORE, 20));
    OK(dk_core_info_get(e, 0, 20, &k));
    CHECK(k.health == DK_HEALTH_OK);
    OK(dk_domain_info_get(e, 0, 5, &di));
    CHECK(di.health == DK_HEALTH_OK);

    OK(dk_fault_inject(e, 0, DK_FAULT_DOMAIN, 0));
    OK(dk_fault_inject(e, 0, DK_FAULT_DOMAIN, 35));
    OK(dk_chip_info_get(e, 0, &ci));
    CHECK_U64(ci.failed_cores, 31);
    OK(dk_domain_info_get(e, 0, 35, &di));
    CHECK_U64(di.failed_cores, 16);
    CHECK(di.health == DK_HEALTH_FAILED);
    OK(dk_fault_clear(e, 0, DK_FAULT_DOMAIN, 0));
    OK(dk_fault_clear(e, 0, DK_FAULT_DOMAIN, 35));
    OK(dk_chip_info_get(e, 0, &ci));
    CHECK_U64(ci.failed_cores, 0);

    int32_t li = -1;
    OK(dk_link_index(e, 0, 3, 3, DK_DIR_EAST, &li));
    OK(dk_fault_inject(e, 0, DK_FAULT_LINK, (uint32_t)li));
    OK(dk_chip_info_get(e, 0, &ci));
    CHECK_U64(ci.failed_links, 1);
    OK(dk_fault_clear(e, 0, DK_FAULT_LINK, (uint32_t)li));
    OK(dk_chip_info_get(e, 0, &ci));
    CHECK_U64(ci.failed_links, 0);
    CHECK_RC(dk_fault_inject(e, 0, DK_FAULT_LINK, 0 * 4 + DK_DIR_WEST), DK_E_NOT_FOUND); /* mesh edge */
    CHECK_RC(dk_fault_inject(e, 0, DK_FAULT_LINK, 2304), DK_E_NOT_FOUND);
    CHECK_RC(dk_fault_inject(e, 0, DK_FAULT_CORE, 575), DK_E_NOT_FOUND);
    CHECK_RC(dk_fault_inject(e, 0, DK_FAULT_DOMAIN, 36), DK_E_NOT_FOUND);
    CHECK_RC(dk_fault_inject(e, 1, DK_FAULT_CORE, 0), DK_E_NOT_FOUND);
    CHECK_RC(dk_fault_inject(e, 0, 4, 0), DK_E_INVALID);
    CHECK_RC(dk_fault_inject(e, 0, -1, 0), DK_E_INVALID);
    CHECK_RC(dk_fault_inject(NULL, 0, DK_FAULT_CORE, 0), DK_E_INVALID);
    CHECK_RC(dk_fault_clear(e, 0, DK_FAULT_CORE, 575), DK_E_NOT_FOUND);
    CHECK_RC(dk_fault_clear(NULL, 0, DK_FAULT_CORE, 0), DK_E_INVALID);

    OK(dk_fault_inject(e, 0, DK_FAULT_CHIP, 0));
    OK(dk_chip_info_get(e, 0, &ci));
    CHECK(ci.health == DK_HEALTH_FAILED);
    OK(dk_domain_info_get(e, 0, 9, &di));
    CHECK(di.health == DK_HEALTH_FAILED);
    OK(dk_core_info_get(e, 0, 300, &k));
    CHECK(k.health == DK_HEALTH_FAILED);
    OK(dk_fault_clear(e, 0, DK_FAULT_CHIP, 0));
    OK(dk_chip_info_get(e, 0, &ci));
    CHECK(ci.health == DK_HEALTH_OK);
    OK(dk_core_info_get(e, 0, 300, &k));
    CHECK(k.health == DK_HEALTH_OK);
    dk_engine_destroy(e);
}

#define A_CORES {100, 101, 102, 103}
#define B_CORES {200, 201, 202, 203}

/* Runs the random network on partitions A and B, optionally with A's core `fault` failed. */
static void run_pair(int64_t fault, uint64_t *ca, uint64_t *cb, dk_telemetry *ta, dk_telemetry *tb) {
    dk_engine *e = engine_darwin3();
    uint32_t a[] = A_CORES, b[] = B_CORES;
    uint32_t pa = part_of(e, a, 4, DK_PART_EXCLUSIVE), pb = part_of(e, b, 4, DK_PART_EXCLUSIVE);
    net_t n;
    net_random(&n, 7);
    OK(dk_network_load(e, pa, &n.desc));
    OK(dk_network_load(e, pb, &n.desc));
    if (fault >= 0) OK(dk_fault_inject(e, 0, DK_FAULT_CORE, (uint32_t)fault));
    OK(dk_run(e, pa, 200, 2));
    OK(dk_run(e, pb, 200, 2));
    OK(dk_spike_counts(e, pa, ca, 66));
    OK(dk_spike_counts(e, pb, cb, 66));
    *ta = tel(e, pa);
    *tb = tel(e, pb);
    net_free(&n);
    dk_engine_destroy(e);
}

static void test_fault_isolation(void) {
    uint64_t ca0[66], cb0[66], ca1[66], cb1[66];
    dk_telemetry ta0, tb0, ta1, tb1;
    run_pair(-1, ca0, cb0, &ta0, &tb0);
    run_pair(101, ca1, cb1, &ta1, &tb1); /* A's second core: neurons 16..31 */
    CHECK(memcmp(ca0, cb0, sizeof ca0) == 0); /* same network, same seed */
    CHECK(ta0.spikes > 100);
    CHECK_U64(ta0.dropped_fault, 0);
    CHECK(memcmp(cb0, cb1, sizeof cb0) == 0); /* B untouched by A's fault */
    CHECK_U64(tb1.dropped_fault, 0);
    CHECK_U64(tb1.events, tb0.events);
    CHECK(ta1.dropped_fault > 0);
    uint64_t dead = 0;
    for (int i = 16; i < 32; i++) dead += ca1[i];
    CHECK_U64(dead, 0); /* a failed core neither integrates nor fires */
}

/* Link faults drop what crosses them; chip faults stop everything; clearing restores. */
static void test_fault_links(void) {
    dk_engine *e = engine_darwin3();
    uint32_t a[] = {core_at(2, 1), core_at(3, 1)};
    uint32_t p = part_of(e, a, 2, DK_PART_EXCLUSIVE);
    net_t n;
    net_init(&n, 2, 1, 2);
    n.desc.n_groups = 2;
    n.groups[0] = lif(1, 100.f, 0.f); /* neuron 0 fires every step */
    n.groups[1] = lif(1, 0.f, 0.f);
    net_syn(&n, 0, 1, 0.1f, 1);
    net_syn(&n, 2, 1, 0.1f, 1);
    OK(dk_network_load(e, p, &n.desc));
    uint32_t core = 0;
    OK(dk_neuron_core(e, p, 1, &core));
    CHECK_U64(core, core_at(3, 1));
    int32_t li = -1;
    OK(dk_link_index(e, 0, 2, 1, DK_DIR_EAST, &li));
    OK(dk_fault_inject(e, 0, DK_FAULT_LINK, (uint32_t)li));
    OK(dk_run(e, p, 10, 1));
    dk_telemetry t = tel(e, p);
    CHECK_U64(t.spikes, 10);
    CHECK_U64(t.dropped_fault, 10);
    CHECK_U64(t.events, 0);
    OK(dk_fault_clear(e, 0, DK_FAULT_LINK, (uint32_t)li));
    OK(dk_run(e, p, 10, 1));
    t = tel(e, p);
    CHECK_U64(t.dropped_fault, 10);
    CHECK_U64(t.events, 10);

    /* the input enters at the controller (0,0): a broken link on its XY route drops it */
    OK(dk_link_index(e, 0, 3, 0, DK_DIR_SOUTH, &li));
    OK(dk_fault_inject(e, 0, DK_FAULT_LINK, (uint32_t)li));
    uint64_t st = 25;
    uint32_t in = 0, acc = 0;
    OK(dk_inject(e, p, &st, &in, 1, &acc));
    OK(dk_run(e, p, 10, 1));
    t = tel(e, p);
    CHECK_U64(t.input_spikes, 1);
    CHECK_U64(t.dropped_fault, 11);
    CHECK_U64(t.events, 20);
    OK(dk_fault_clear(e, 0, DK_FAULT_LINK, (uint32_t)li));

    /* a failed chip: nothing fires, injected spikes are lost to the fault */
    OK(dk_fault_inject(e, 0, DK_FAULT_CHIP, 0));
    st = 35;
    OK(dk_inject(e, p, &st, &in, 1, &acc));
    OK(dk_run(e, p, 10, 1));
    t = tel(e, p);
    CHECK_U64(t.spikes, 30);
    CHECK_U64(t.input_spikes, 2);
    CHECK_U64(t.dropped_fault, 12);
    OK(dk_fault_clear(e, 0, DK_FAULT_CHIP, 0));
    OK(dk_run(e, p, 10, 1));
    CHECK_U64(tel(e, p).spikes, 40);
    net_free(&n);
    dk_engine_destroy(e);
}

/* ---- determinism and routing ---- */

static void run_random(uint64_t seed, uint32_t threads, int32_t store, uint64_t *counts,
                       dk_telemetry *t) {
    dk_engine *e = engine_darwin3();
    uint32_t a[] = A_CORES;
    uint32_t p = part_of(e, a, 4, DK_PART_EXCLUSIVE);
    const dk_partition_config cfg = {.delay_store = store};
    OK(dk_partition_configure(e, p, &cfg));
    net_t n;
    net_random(&n, seed);
    OK(dk_network_load(e, p, &n.desc));
    uint64_t st[20];
    uint32_t in[20], acc = 0;
    for (uint32_t i = 0; i < 20; i++) {
        st[i] = 10 * i;
        in[i] = i & 1;
    }
    OK(dk_inject(e, p, st, in, 20, &acc));
    OK(dk_run(e, p, 150, threads));
    OK(dk_run(e, p, 150, threads));
    OK(dk_spike_counts(e, p, counts, 66));
    *t = tel(e, p);
    net_free(&n);
    dk_engine_destroy(e);
}

static void test_determinism(void) {
    uint64_t c1[66], c2[66], c4[66], c9[66];
    dk_telemetry t1, t2, t4, t9;
    /* the same sums, bit for bit, from either delay store */
    run_random(7, 1, DK_DELAYS_AUTO, c1, &t1);
    run_random(7, 2, DK_DELAYS_QUEUES, c2, &t2);
    run_random(7, 4, DK_DELAYS_SUMS, c4, &t4);
    run_random(9, 1, DK_DELAYS_QUEUES, c9, &t9);
    CHECK_U64(t1.delay_store, DK_DELAYS_SUMS); /* a small ring: AUTO keeps it */
    CHECK_U64(t2.delay_store, DK_DELAYS_QUEUES);
    CHECK(t1.spikes > 500);
    CHECK_U64(t1.threads, 1);
    CHECK_U64(t2.threads, 2);
    CHECK_U64(t4.threads, 4);
    CHECK_U64(t1.cores_used, 4);
    CHECK(memcmp(c1, c2, sizeof c1) == 0);
    CHECK(memcmp(c1, c4, sizeof c1) == 0);
    CHECK_U64(t1.spikes, t2.spikes);
    CHECK_U64(t1.events, t2.events);
    CHECK_U64(t1.drive_events, t2.drive_events);
    CHECK_U64(t1.packets, t2.packets);
    CHECK_U64(t1.input_spikes, 20);
    CHECK_U64(c1[64] + c1[65], 20);
    CHECK(memcmp(c1, c9, sizeof c1) != 0); /* the seed matters */
}

/* A spike from core A to core B crosses exactly the links of the XY route. */
static void test_link_events(void) {
    dk_engine *e = engine_darwin3();
    uint32_t a[] = {core_at(5, 3), core_at(2, 1)};
    uint32_t p = part_of(e, a, 2, DK_PART_EXCLUSIVE);
    net_t n;
    net_init(&n, 2, 1, 2);
    n.desc.n_groups = 2;
    n.groups[0] = lif(1, 100.f, 0.f);
    n.groups[1] = lif(1, 0.f, 0.f);
    net_syn(&n, 0, 1, 0.1f, 1);
    net_syn(&n, 2, 0, 1.f, 2);
    OK(dk_network_load(e, p, &n.desc));
    uint32_t core = 0;
    OK(dk_neuron_core(e, p, 0, &core));
    CHECK_U64(core, core_at(2, 1)); /* cores ascending: (2,1) is core 25, (5,3) core 76 */
    OK(dk_neuron_core(e, p, 1, &core));
    CHECK_U64(core, core_at(5, 3));
    uint64_t st[] = {1, 2, 3};
    uint32_t in[] = {0, 0, 0}, acc = 0;
    OK(dk_inject(e, p, st, in, 3, &acc));
    OK(dk_run(e, p, 10, 2));
    static uint64_t ev[2304], want[2304];
    memset(want, 0, sizeof want);
    int32_t li;
    /* neuron 0, 10 spikes: east along y=1 from x=2 to 5, then south from y=1 to 3 */
    for (uint32_t x = 2; x < 5; x++) {
        OK(dk_link_index(e, 0, x, 1, DK_DIR_EAST, &li));
        want[li] += 10;
    }
    for (uint32_t y = 1; y < 3; y++) {
        OK(dk_link_index(e, 0, 5, y, DK_DIR_SOUTH, &li));
        want[li] += 10;
    }
    /* the input, 3 spikes, from the controller (0,0) to (2,1) */
    for (uint32_t x = 0; x < 2; x++) {
        OK(dk_link_index(e, 0, x, 0, DK_DIR_EAST, &li));
        want[li] += 3;
    }
    OK(dk_link_index(e, 0, 2, 0, DK_DIR_SOUTH, &li));
    want[li] += 3;
    OK(dk_link_events(e, p, ev, 2304));
    uint64_t sum = 0;
    for (uint32_t i = 0; i < 2304; i++) {
        sum += ev[i];
        if (ev[i] != want[i]) {
            fprintf(stderr, "link %u: %llu events, expected %llu\n", i, (unsigned long long)ev[i],
                    (unsigned long long)want[i]);
            CHECK(ev[i] == want[i]);
        }
    }
    CHECK_U64(sum, 59);
    /* reading twice does not count twice */
    OK(dk_link_events(e, p, ev, 2304));
    sum = 0;
    for (uint32_t i = 0; i < 2304; i++) sum += ev[i];
    CHECK_U64(sum, 59);
    uint64_t ce[2];
    OK(dk_core_events(e, p, ce, 2));
    CHECK_U64(ce[0], 3);  /* core 25 receives the input's events */
    CHECK_U64(ce[1], 10); /* core 76 receives neuron 0's */
    net_free(&n);
    dk_engine_destroy(e);
}

/* ---- concurrency ---- */

typedef struct {
    dk_engine *e;
    uint32_t part, threads;
    uint64_t steps;
    int rc;
    atomic_int started;
} run_job;

static void *run_thread(void *arg) {
    run_job *j = arg;
    atomic_store(&j->started, 1);
    j->rc = dk_run(j->e, j->part, j->steps, j->threads);
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_concurrent_runs(void) {
    /* reference: sequential runs */
    uint64_t ra[66], rb[66];
    dk_telemetry ta, tb;
    run_pair(-1, ra, rb, &ta, &tb);

    dk_engine *e = engine_darwin3();
    uint32_t a[] = A_CORES, b[] = B_CORES;
    uint32_t pa = part_of(e, a, 4, DK_PART_EXCLUSIVE), pb = part_of(e, b, 4, DK_PART_EXCLUSIVE);
    net_t n;
    net_random(&n, 7);
    OK(dk_network_load(e, pa, &n.desc));
    OK(dk_network_load(e, pb, &n.desc));
    run_job ja = {.e = e, .part = pa, .threads = 2, .steps = 200};
    run_job jb = {.e = e, .part = pb, .threads = 2, .steps = 200};
    pthread_t t1, t2;
    CHECK(pthread_create(&t1, NULL, run_thread, &ja) == 0);
    CHECK(pthread_create(&t2, NULL, run_thread, &jb) == 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_RC(ja.rc, DK_OK);
    CHECK_RC(jb.rc, DK_OK);
    uint64_t ca[66], cb[66];
    OK(dk_spike_counts(e, pa, ca, 66));
    OK(dk_spike_counts(e, pb, cb, 66));
    CHECK(memcmp(ca, ra, sizeof ca) == 0);
    CHECK(memcmp(cb, rb, sizeof cb) == 0);
    net_free(&n);
    dk_engine_destroy(e);
}

/* Destroying a partition while another thread runs it: the run finishes on its reference. */
static void test_destroy_while_running(void) {
    int runs_ok = 0;
    for (int round = 0; round < 4; round++) {
        dk_engine *e = engine_darwin3();
        uint32_t a[] = A_CORES;
        uint32_t p = part_of(e, a, 4, DK_PART_EXCLUSIVE);
        net_t n;
        net_random(&n, 3);
        OK(dk_network_load(e, p, &n.desc));
        uint32_t neu = 5;
        OK(dk_record(e, p, &neu, 1, 8));
        run_job j = {.e = e, .part = p, .threads = 2, .steps = 200000};
        atomic_init(&j.started, 0);
        pthread_t t;
        CHECK(pthread_create(&t, NULL, run_thread, &j) == 0);
        while (!atomic_load(&j.started)) sched_yield();
        sleep_ms(round * 2);
        OK(dk_partition_destroy(e, p));
        /* the cores are free at once, the id is gone; faults and queries keep working */
        uint32_t q = UINT32_MAX;
        OK(dk_partition_create(e, 0, a, 4, DK_PART_EXCLUSIVE, 0, &q));
        OK(dk_fault_inject(e, 0, DK_FAULT_CORE, 101));
        OK(dk_fault_clear(e, 0, DK_FAULT_CORE, 101));
        pthread_join(t, NULL);
        /* A run that took its reference first completes; one that came too late finds no
         * partition, or the new empty one that reused the id. */
        CHECK(j.rc == DK_OK || j.rc == DK_E_NOT_FOUND || j.rc == DK_E_STATE);
        runs_ok += j.rc == DK_OK;
        dk_telemetry t2;
        CHECK_RC(dk_telemetry_get(e, q, &t2), DK_E_STATE); /* the new partition is empty */
        OK(dk_partition_destroy(e, q));
        CHECK_RC(dk_run(e, p, 1, 1), DK_E_NOT_FOUND);
        net_free(&n);
        dk_engine_destroy(e);
    }
    CHECK(runs_ok >= 1); /* at least one run overlapped the destroy and finished cleanly */
}

/* Faults changing while a run is in progress on the chip. */
typedef struct {
    dk_engine *e;
    atomic_int stop;
} fault_job;

static void *fault_thread(void *arg) {
    fault_job *f = arg;
    uint32_t i = 0;
    while (!atomic_load(&f->stop)) {
        uint32_t core = 100 + (i++ & 3);
        dk_fault_inject(f->e, 0, 0, core);
        dk_fault_clear(f->e, 0, 0, core);
    }
    return NULL;
}

static void test_faults_while_running(void) {
    dk_engine *e = engine_darwin3();
    uint32_t a[] = A_CORES;
    uint32_t p = part_of(e, a, 4, DK_PART_EXCLUSIVE);
    net_t n;
    net_random(&n, 5);
    OK(dk_network_load(e, p, &n.desc));
    fault_job f = {.e = e};
    atomic_init(&f.stop, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fault_thread, &f) == 0);
    for (int i = 0; i < 50; i++) OK(dk_run(e, p, 4, 2));
    atomic_store(&f.stop, 1);
    pthread_join(t, NULL);
    CHECK_U64(tel(e, p).steps, 200);
    net_free(&n);
    dk_engine_destroy(e);
}

int main(void) {
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"create_destroy", test_create_destroy},
        {"chip_add", test_chip_add},
        {"discovery", test_discovery},
        {"partitions", test_partitions},
        {"network_errors", test_network_errors},
        {"spike_timing", test_spike_timing},
        {"membrane", test_membrane},
        {"nir_models", test_nir_models},
        {"ports", test_ports},
        {"queue_capacity", test_queue_capacity},
        {"link_bandwidth", test_link_bandwidth},
        {"fabric_links", test_fabric_links},
        {"fabric_grid", test_fabric_grid},
        {"shared_links", test_shared_links},
        {"budget", test_budget},
        {"partition_config", test_partition_config},
        {"fault_health", test_fault_health},
        {"fault_isolation", test_fault_isolation},
        {"fault_links", test_fault_links},
        {"determinism", test_determinism},
        {"link_events", test_link_events},
        {"concurrent_runs", test_concurrent_runs},
        {"destroy_while_running", test_destroy_while_running},
        {"faults_while_running", test_faults_while_running},
        {"kernel_taps", test_kernel_taps},
    };
    const size_t n = sizeof tests / sizeof tests[0];
    for (size_t i = 0; i < n; i++) {
        int before = failures;
        tests[i].fn();
        printf("%-24s %s\n", tests[i].name, failures == before ? "ok" : "FAILED");
    }
    printf("test_engine: %zu tests, %d checks, %d failures\n", n, checks, failures);
    return failures ? 1 : 0;
}
