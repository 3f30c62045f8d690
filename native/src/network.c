/* Loading a spiking network onto a partition: validation, placement, the compact synapse store,
 * multicast routing trees and the initial neuron state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void dk_network_free(dk_network *n) {
    if (!n) return;
    void *ptrs[] = {n->syn, n->syn16, n->wid8, n->seg_blk, n->seg_rel, n->src_seg, n->seg, n->src_syn, n->src_tree, n->tree_link_ptr,
                    n->tree_links, n->src_core, n->v, n->isyn, n->bias, n->refr, n->rng, n->flag, n->groups,
                    n->ring, n->core_slot_events, n->spike_count, n->tree_spikes_folded,
                    n->link_events, n->core_events, n->core_ns, n->reach, n->core_dead, n->recorded,
                    n->out.steps, n->out.ids, n->in.steps, n->in.ids};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) dk_free(ptrs[i]);
    if (n->qbuf)
        for (size_t i = 0; i < (size_t)n->qstride * n->cores_used; i++) dk_free(n->qbuf[i]);
    dk_free(n->qbuf);
    dk_free(n->qlen);
    dk_free(n->qcap);
    dk_router_free(&n->rt);
    dk_kernels_free(n);
    dk_free(n);
}

static bool has_current(int32_t model) {
    return model == DK_MODEL_CUBA_LIF || model == DK_MODEL_CUBA_LI;
}

static bool is_spiking(int32_t model) {
    return model == DK_MODEL_LIF || model == DK_MODEL_IF || model == DK_MODEL_CUBA_LIF ||
           model == DK_MODEL_THRESHOLD;
}

/* The NIR models: parameters the iaf_psc_delta path does not use must be left at zero. */
static int check_nir_group(const dk_group *g, uint32_t i) {
    static const char *const names[DK_N_MODELS] = {"iaf_psc_delta", "LIF", "IF", "CubaLIF",
                                                   "LI", "CubaLI", "Threshold"};
    const char *m = names[g->model];
    bool leaky = g->model != DK_MODEL_IF && g->model != DK_MODEL_THRESHOLD;
    if (leaky && (!(g->tau_m > 0) || !isfinite(g->tau_m)))
        return dk_fail(DK_E_INVALID, "group %u (%s): tau_m must be a positive number of ms", i, m);
    if (has_current(g->model) && (!(g->tau_syn > 0) || !isfinite(g->tau_syn)))
        return dk_fail(DK_E_INVALID, "group %u (%s): tau_syn must be a positive number of ms", i, m);
    if (!isfinite(g->v_th) || !isfinite(g->v_reset) || !isfinite(g->e_l) || !isfinite(g->v_init) ||
        !isfinite(g->r) || !isfinite(g->w_in))
        return dk_fail(DK_E_INVALID, "group %u (%s): potentials, r and w_in must be finite", i, m);
    if (g->reset != DK_RESET_VALUE && g->reset != DK_RESET_SUBTRACT)
        return dk_fail(DK_E_INVALID, "group %u (%s): reset %d is neither value (0) nor subtract (1)",
                       i, m, g->reset);
    if (is_spiking(g->model) && g->model != DK_MODEL_THRESHOLD && !(g->v_reset < g->v_th))
        return dk_fail(DK_E_INVALID, "group %u (%s): v_reset %g must lie below v_th %g", i, m,
                       (double)g->v_reset, (double)g->v_th);
    if (g->t_ref != 0.f || g->i_e_mv_per_ms != 0.f || g->poisson_rate_hz != 0.f ||
        g->poisson_weight != 0.f)
        return dk_fail(DK_E_INVALID,
                       "group %u (%s): t_ref, i_e and the Poisson drive belong to iaf_psc_delta; "
                       "NIR models take a constant input as bias",
                       i, m);
    return DK_OK;
}

static int check_group(const dk_group *g, uint32_t i, float dt) {
    if (g->model < 0 || g->model >= DK_N_MODELS)
        return dk_fail(DK_E_INVALID, "group %u: model %d is not one of 0..%d", i, g->model,
                       DK_N_MODELS - 1);
    if (g->model != DK_MODEL_IAF_PSC_DELTA) return check_nir_group(g, i);
    if (g->reset != DK_RESET_VALUE || g->tau_syn != 0.f || g->r != 0.f || g->w_in != 0.f ||
        g->bias_start != 0)
        return dk_fail(DK_E_INVALID,
                       "group %u (iaf_psc_delta): reset, tau_syn, r, w_in and bias_start belong "
                       "to the NIR models and must be 0",
                       i);
    if (!(g->tau_m > 0) || !isfinite(g->tau_m))
        return dk_fail(DK_E_INVALID, "group %u: tau_m must be a positive number of ms", i);
    if (!isfinite(g->v_th) || !isfinite(g->v_reset) || !isfinite(g->e_l) || !isfinite(g->v_init) ||
        !isfinite(g->i_e_mv_per_ms) || !isfinite(g->poisson_weight))
        return dk_fail(DK_E_INVALID, "group %u: potentials, current and weights must be finite", i);
    if (!(g->v_reset < g->v_th))
        return dk_fail(DK_E_INVALID, "group %u: v_reset %g must lie below v_th %g", i,
                       (double)g->v_reset, (double)g->v_th);
    if (!(g->t_ref >= 0) || g->t_ref / dt > 60000.f)
        return dk_fail(DK_E_INVALID, "group %u: t_ref must be 0..%g ms", i, (double)(60000.f * dt));
    if (!(g->poisson_rate_hz >= 0) || !isfinite(g->poisson_rate_hz))
        return dk_fail(DK_E_INVALID, "group %u: poisson_rate_hz must be finite and >= 0", i);
    return DK_OK;
}

/* Inverse-CDF thresholds of Poisson(lambda) on 32-bit uniforms: k = #{j : u >= T_j}. */
static int poisson_table(dk_group_rt *g, double lambda, uint32_t i) {
    g->n_thresholds = 0;
    g->drive_per_step = lambda;
    if (lambda <= 0) return DK_OK;
    double p = exp(-lambda), cdf = p;
    for (uint32_t k = 0; k < DK_POISSON_TABLE; k++) {
        double t = ldexp(cdf, 32);
        if (t >= 4294967295.0) return DK_OK; /* remaining tail is below 2^-32 */
        g->thresholds[k] = (uint32_t)t;
        g->n_thresholds = k + 1;
        p *= lambda / (double)(k + 1);
        cdf += p;
    }
    return dk_fail(DK_E_INVALID,
                   "group %u: Poisson drive of %.3g events per step needs more than %u table "
                   "entries; lower the rate or the timestep",
                   i, lambda, DK_POISSON_TABLE);
}

/* One stable counting-sort pass of perm by key(perm[i]) / div in [0, buckets). */
static int counting_pass(uint32_t *perm, uint32_t *tmp, uint64_t n, const uint32_t *key_u32,
                         const uint16_t *key_u16, uint32_t div, uint32_t buckets) {
    uint64_t *cnt = dk_alloc(((size_t)buckets + 1) * sizeof *cnt);
    if (!cnt) return DK_E_NOMEM;
    for (uint64_t i = 0; i < n; i++)
        cnt[(key_u32 ? key_u32[perm[i]] : key_u16[perm[i]]) / div + 1]++;
    for (uint32_t b = 0; b < buckets; b++) cnt[b + 1] += cnt[b];
    for (uint64_t i = 0; i < n; i++) {
        uint32_t k = (key_u32 ? key_u32[perm[i]] : key_u16[perm[i]]) / div;
        tmp[cnt[k]++] = perm[i];
    }
    memcpy(perm, tmp, n * sizeof *perm);
    dk_free(cnt);
    return DK_OK;
}

typedef struct {
    uint32_t *mark;
    uint32_t stamp;
    uint32_t *out;
    uint32_t n;
    bool unicast;           /* DK_ROUTE_XY: every route keeps its own links */
} link_collect;

static void collect_link(void *ctx, int32_t link) {
    link_collect *lc = ctx;
    if (link < 0) return;
    if (!lc->unicast && lc->mark[link] == lc->stamp) return;
    lc->mark[link] = lc->stamp;
    lc->out[lc->n++] = (uint32_t)link;
}

static void core_tile(const dk_chip *c, const dk_partition *p, const dk_network *n, uint32_t idx,
                      uint32_t *x, uint32_t *y) {
    if (idx >= n->cores_used) { /* the entry point of injected spikes: the controller tile */
        *x = c->prof.controller_x;
        *y = c->prof.controller_y;
        return;
    }
    uint32_t core = p->cores[idx];
    *x = c->core_x[core];
    *y = c->core_y[core];
}

void dk_network_refresh_faults(const dk_chip *c, dk_partition *p) {
    dk_network *n = p->net;
    uint32_t cu = n->cores_used;
    for (uint32_t i = 0; i < cu; i++) n->core_dead[i] = c->failed || c->core_failed[p->cores[i]];
    for (uint32_t s = 0; s <= cu; s++) {
        bool src_dead = s < cu ? n->core_dead[s] : c->failed;
        uint32_t sx, sy;
        core_tile(c, p, n, s, &sx, &sy);
        for (uint32_t d = 0; d < cu; d++) {
            bool ok = !src_dead && !n->core_dead[d];
            if (ok) {
                uint32_t dx, dy;
                core_tile(c, p, n, d, &dx, &dy);
                /* walk the XY route, failing on a broken link */
                uint32_t x = sx, y = sy;
                while (ok && x != dx) {
                    uint32_t dir = x < dx ? DK_DIR_EAST : DK_DIR_WEST;
                    ok = !c->link_failed[dk_link_of(c, x, y, dir)];
                    x = x < dx ? x + 1 : x - 1;
                }
                while (ok && y != dy) {
                    uint32_t dir = y < dy ? DK_DIR_SOUTH : DK_DIR_NORTH;
                    ok = !c->link_failed[dk_link_of(c, x, y, dir)];
                    y = y < dy ? y + 1 : y - 1;
                }
            }
            n->reach[(size_t)s * cu + d] = ok;
        }
    }
    n->fault_epoch = c->fault_epoch;
}

void dk_network_fold_links(dk_network *n) {
    for (uint32_t s = 0; s < n->n_src; s++) {
        uint64_t d = n->spike_count[s] - n->tree_spikes_folded[s];
        if (!d) continue;
        uint32_t t = n->src_tree[s];
        for (uint32_t l = n->tree_link_ptr[t]; l < n->tree_link_ptr[t + 1]; l++)
            n->link_events[n->tree_links[l]] += d;
        n->tree_spikes_folded[s] = n->spike_count[s];
    }
}

static uint64_t hash_cores(const uint16_t *cores, uint32_t k, uint32_t src_core) {
    uint64_t h = 1469598103934665603ull ^ src_core;
    for (uint32_t i = 0; i < k; i++) h = (h ^ cores[i]) * 1099511628211ull;
    return h;
}

/* Builds the routing trees: sources with the same entry core and the same target cores share
 * one tree. The state while they are built: */
typedef struct {
    dk_network *n;
    const dk_chip *c;
    const dk_partition *p;
    uint16_t *list;          /* the target cores of the current source, ascending */
    uint8_t *seen;           /* per used core: already in list */
    uint32_t *core_ptr;      /* tree t's target cores are cores[core_ptr[t] .. core_ptr[t + 1]) */
    uint16_t *cores;
    uint32_t *src_core;      /* tree t's entry core */
    uint32_t n_cores;        /* cores held */
    size_t cap_core_ptr, cap_cores, cap_src_core, cap_link_ptr, cap_links;
    uint64_t *hkeys;         /* open addressing: a tree by the hash of (entry core, targets) */
    uint32_t *hvals;         /* the tree, or UINT32_MAX for a free slot */
    uint32_t hcap;           /* a power of two */
    link_collect lc;         /* the links of the tree being added */
    uint32_t *ktgt;          /* a kernel source's targets and weights (kernel_fan + 1) */
    float *kw;
} tree_build;

static void trees_end(tree_build *tb) {
    void *ptrs[] = {tb->list, tb->seen, tb->lc.mark, tb->lc.out, tb->core_ptr, tb->cores,
                    tb->src_core, tb->hkeys, tb->hvals, tb->ktgt, tb->kw};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) dk_free(ptrs[i]);
}

static int trees_begin(tree_build *tb, dk_network *n, const dk_chip *c, const dk_partition *p) {
    const uint32_t cu = n->cores_used, n_links = c->n_tiles * 4u;
    const bool unicast = p->cfg.routing == DK_ROUTE_XY;
    /* unicast routes keep every link of every route: at most (w + h) per target core */
    size_t buf_len = unicast ? (size_t)cu * (c->prof.mesh_w + c->prof.mesh_h) : n_links;
    if (buf_len < n_links) buf_len = n_links;
    *tb = (tree_build){.n = n, .c = c, .p = p, .hcap = 1024};
    tb->lc = (link_collect){.mark = dk_alloc((size_t)n_links * sizeof *tb->lc.mark),
                            .out = dk_alloc(buf_len * sizeof *tb->lc.out), .unicast = unicast};
    n->src_tree = dk_alloc((size_t)n->n_src * sizeof *n->src_tree);
    tb->list = dk_alloc((size_t)cu * sizeof *tb->list);
    tb->seen = dk_alloc(cu);
    tb->core_ptr = dk_grow(NULL, &tb->cap_core_ptr, 65, sizeof *tb->core_ptr, UINT32_MAX);
    tb->cores = dk_grow(NULL, &tb->cap_cores, 1024, sizeof *tb->cores, UINT32_MAX);
    tb->src_core = dk_grow(NULL, &tb->cap_src_core, 64, sizeof *tb->src_core, UINT32_MAX);
    n->tree_link_ptr = dk_grow(NULL, &tb->cap_link_ptr, 65, sizeof *n->tree_link_ptr, UINT32_MAX);
    n->tree_links = dk_grow(NULL, &tb->cap_links, 1024, sizeof *n->tree_links, UINT32_MAX);
    tb->hkeys = dk_alloc(tb->hcap * sizeof *tb->hkeys);
    tb->hvals = dk_alloc(tb->hcap * sizeof *tb->hvals);
    if (n->n_kernels) {
        tb->ktgt = dk_alloc(((size_t)n->kernel_fan + 1) * sizeof *tb->ktgt);
        tb->kw = dk_alloc(((size_t)n->kernel_fan + 1) * sizeof *tb->kw);
        if (!tb->ktgt || !tb->kw) return DK_E_NOMEM;
    }
    if (!n->src_tree || !tb->list || !tb->seen || !tb->lc.mark || !tb->lc.out || !tb->core_ptr ||
        !tb->cores || !tb->src_core || !n->tree_link_ptr || !n->tree_links || !tb->hkeys ||
        !tb->hvals)
        return DK_E_NOMEM;
    for (uint32_t i = 0; i < tb->hcap; i++) tb->hvals[i] = UINT32_MAX;
    return DK_OK;
}

static void add_target(tree_build *tb, uint16_t core, uint32_t *k) {
    if (tb->seen[core]) return;
    tb->seen[core] = 1;
    tb->list[(*k)++] = core;
}

/* The cores source `s` reaches (listed synapses and kernels) into tb->list, ascending. */
static uint32_t tree_targets(tree_build *tb, uint32_t s) {
    const dk_network *n = tb->n;
    uint32_t k = 0;
    for (uint32_t g = dk_first_seg(n, s), ge = dk_first_seg(n, s + 1); g < ge; g++)
        add_target(tb, (uint16_t)dk_seg_core(n, n->seg[g]), &k);
    for (uint32_t q = 0; q < n->n_kernels; q++) {
        const dk_kernel_rt *kr = &n->kernels[q];
        if (s < kr->k.src_first || s >= kr->src_end) continue;
        uint32_t m = dk_kernel_targets(kr, s - kr->k.src_first, tb->ktgt, tb->kw);
        for (uint32_t j = 0; j < m; j++) add_target(tb, (uint16_t)(tb->ktgt[j] / n->per_core), &k);
    }
    uint16_t *list = tb->list;
    for (uint32_t i = 0; i < k; i++) tb->seen[list[i]] = 0;
    /* canonical order: insertion sort, k is small in practice */
    for (uint32_t i = 1; i < k; i++) {
        uint16_t v = list[i];
        uint32_t j = i;
        while (j && list[j - 1] > v) { list[j] = list[j - 1]; j--; }
        list[j] = v;
    }
    return k;
}

/* The tree of entry core `sc` and the k cores of tb->list, or UINT32_MAX; *slot is where the
 * search stopped (the free slot to insert it at). */
static uint32_t tree_find(const tree_build *tb, uint64_t h, uint32_t sc, uint32_t k,
                          uint32_t *slot) {
    uint32_t i = (uint32_t)(h & (tb->hcap - 1));
    while (tb->hvals[i] != UINT32_MAX) {
        uint32_t t = tb->hvals[i];
        if (tb->hkeys[i] == h && tb->src_core[t] == sc &&
            tb->core_ptr[t + 1] - tb->core_ptr[t] == k &&
            (k == 0 || !memcmp(tb->cores + tb->core_ptr[t], tb->list, k * sizeof *tb->list))) {
            *slot = i;
            return t;
        }
        i = (i + 1) & (tb->hcap - 1);
    }
    *slot = i;
    return UINT32_MAX;
}

/* Appends tree n_trees: entry core `sc`, the k cores of tb->list, and as links the union of
 * the XY routes to them (or every route's own links when unicast). */
static int tree_add(tree_build *tb, uint32_t sc, uint32_t k) {
    dk_network *n = tb->n;
    const uint32_t t = n->n_trees;
    uint32_t *core_ptr = dk_grow(tb->core_ptr, &tb->cap_core_ptr, (size_t)t + 2,
                                 sizeof *core_ptr, UINT32_MAX);
    if (core_ptr) tb->core_ptr = core_ptr;
    uint32_t *link_ptr = dk_grow(n->tree_link_ptr, &tb->cap_link_ptr, (size_t)t + 2,
                                 sizeof *link_ptr, UINT32_MAX);
    if (link_ptr) n->tree_link_ptr = link_ptr;
    uint32_t *src_core = dk_grow(tb->src_core, &tb->cap_src_core, (size_t)t + 1,
                                 sizeof *src_core, UINT32_MAX);
    if (src_core) tb->src_core = src_core;
    if (!core_ptr || !link_ptr || !src_core) return DK_E_NOMEM;
    tb->lc.stamp++;
    tb->lc.n = 0;
    uint32_t sx, sy;
    core_tile(tb->c, tb->p, n, sc, &sx, &sy);
    for (uint32_t i = 0; i < k; i++) {
        uint32_t dx, dy;
        core_tile(tb->c, tb->p, n, tb->list[i], &dx, &dy);
        dk_route_xy(tb->c, sx, sy, dx, dy, collect_link, &tb->lc);
    }
    const uint32_t lbase = n->tree_link_ptr[t];
    uint32_t *links = dk_grow(n->tree_links, &tb->cap_links, (size_t)lbase + tb->lc.n,
                              sizeof *links, UINT32_MAX);
    if (links) n->tree_links = links;
    uint16_t *cores = dk_grow(tb->cores, &tb->cap_cores, (size_t)tb->n_cores + k, sizeof *cores,
                              UINT32_MAX);
    if (cores) tb->cores = cores;
    if (!links || !cores) return DK_E_NOMEM;
    memcpy(n->tree_links + lbase, tb->lc.out, tb->lc.n * sizeof *tb->lc.out);
    n->tree_link_ptr[t + 1] = lbase + tb->lc.n;
    memcpy(tb->cores + tb->n_cores, tb->list, k * sizeof *tb->list);
    tb->core_ptr[t] = tb->n_cores;
    tb->n_cores += k;
    tb->core_ptr[t + 1] = tb->n_cores;
    tb->src_core[t] = sc;
    n->n_trees++;
    return DK_OK;
}

/* Doubles the hash table (kept at most half full). */
static int tree_hash_grow(tree_build *tb) {
    const uint32_t ncap = tb->hcap * 2;
    uint64_t *nk = dk_alloc(ncap * sizeof *nk);
    uint32_t *nv = dk_alloc(ncap * sizeof *nv);
    if (!nk || !nv) { dk_free(nk); dk_free(nv); return DK_E_NOMEM; }
    for (uint32_t i = 0; i < ncap; i++) nv[i] = UINT32_MAX;
    for (uint32_t i = 0; i < tb->hcap; i++) {
        if (tb->hvals[i] == UINT32_MAX) continue;
        uint32_t j = (uint32_t)(tb->hkeys[i] & (ncap - 1));
        while (nv[j] != UINT32_MAX) j = (j + 1) & (ncap - 1);
        nk[j] = tb->hkeys[i];
        nv[j] = tb->hvals[i];
    }
    dk_free(tb->hkeys);
    dk_free(tb->hvals);
    tb->hkeys = nk;
    tb->hvals = nv;
    tb->hcap = ncap;
    return DK_OK;
}

/* Gives source `s` its tree: an existing one with the same entry core and targets, or a new. */
static int tree_of_source(tree_build *tb, uint32_t s) {
    dk_network *n = tb->n;
    const uint32_t k = tree_targets(tb, s), sc = n->src_core[s];
    const uint64_t h = hash_cores(tb->list, k, sc);
    uint32_t slot;
    uint32_t t = tree_find(tb, h, sc, k, &slot);
    if (t != UINT32_MAX) {
        n->src_tree[s] = t;
        return DK_OK;
    }
    t = n->n_trees;
    int rc = tree_add(tb, sc, k);
    if (rc) return rc;
    n->src_tree[s] = t;
    if (n->n_trees * 2 > tb->hcap) {
        rc = tree_hash_grow(tb);
        if (rc) return rc;
        tree_find(tb, h, sc, k, &slot); /* not there yet: the free slot in the new table */
    }
    tb->hkeys[slot] = h;
    tb->hvals[slot] = t;
    return DK_OK;
}

static int build_trees(dk_network *n, const dk_chip *c, const dk_partition *p) {
    tree_build tb;
    int rc = trees_begin(&tb, n, c, p);
    n->n_trees = 0;
    for (uint32_t s = 0; rc == DK_OK && s < n->n_src; s++) rc = tree_of_source(&tb, s);
    if (rc == DK_OK)
        n->bytes += (size_t)n->n_src * 4 + (size_t)(n->n_trees + 1) * 4 +
                    (size_t)n->tree_link_ptr[n->n_trees] * 4;
    trees_end(&tb);
    return rc;
}

/* Distinct weights go to a table of at most 256 entries; more are quantised uniformly. */
static int build_weights(dk_network *n, const float *w, uint64_t ns, uint8_t *widx) {
    float table[DK_MAX_WEIGHTS];
    uint32_t nt = 0;
    bool exact = true;
    for (uint64_t i = 0; i < ns && exact; i++) {
        uint32_t j = 0;
        while (j < nt && memcmp(&table[j], &w[i], sizeof(float)) != 0) j++;
        if (j < nt) continue;
        if (nt == DK_MAX_WEIGHTS) exact = false;
        else table[nt++] = w[i];
    }
    n->quant_error = 0;
    if (exact) {
        memcpy(n->wtab, table, nt * sizeof(float));
        n->n_weights = nt;
        /* lookup: the table is tiny, but 10 M synapses deserve better than a linear scan */
        uint32_t last = 0;
        for (uint64_t i = 0; i < ns; i++) {
            if (memcmp(&table[last], &w[i], sizeof(float)) != 0) {
                last = 0;
                while (memcmp(&table[last], &w[i], sizeof(float)) != 0) last++;
            }
            widx[i] = (uint8_t)last;
        }
        return DK_OK;
    }
    float lo = w[0], hi = w[0];
    for (uint64_t i = 1; i < ns; i++) {
        if (w[i] < lo) lo = w[i];
        if (w[i] > hi) hi = w[i];
    }
    double step = ((double)hi - (double)lo) / (DK_MAX_WEIGHTS - 1);
    for (uint32_t j = 0; j < DK_MAX_WEIGHTS; j++) n->wtab[j] = (float)((double)lo + step * j);
    n->n_weights = DK_MAX_WEIGHTS;
    for (uint64_t i = 0; i < ns; i++) {
        long q = lround(((double)w[i] - (double)lo) / step);
        if (q < 0) q = 0;
        if (q > DK_MAX_WEIGHTS - 1) q = DK_MAX_WEIGHTS - 1;
        widx[i] = (uint8_t)q;
        double err = fabs((double)n->wtab[q] - (double)w[i]);
        if (err > n->quant_error) n->quant_error = err;
    }
    return DK_OK;
}

/* The network's size, time step and neuron groups. */
static int validate_groups(const dk_network_desc *d) {
    if (d->n_neurons == 0) return dk_fail(DK_E_INVALID, "network: n_neurons must be at least 1");
    if (d->n_neurons > DK_MAX_NEURONS || d->n_inputs > DK_MAX_NEURONS)
        return dk_fail(DK_E_CAPACITY, "network: at most %u neurons and %u inputs",
                       (unsigned)DK_MAX_NEURONS, (unsigned)DK_MAX_NEURONS);
    if (!(d->dt_ms > 0) || !(d->dt_ms <= 10.f))
        return dk_fail(DK_E_INVALID, "network: dt_ms %g must lie in (0, 10]", (double)d->dt_ms);
    if (d->n_groups == 0 || d->n_groups > DK_MAX_GROUPS || !d->groups)
        return dk_fail(DK_E_INVALID, "network: 1..%u neuron groups are needed", DK_MAX_GROUPS);
    uint64_t total = 0;
    for (uint32_t g = 0; g < d->n_groups; g++) {
        int rc = check_group(&d->groups[g], g, d->dt_ms);
        if (rc) return rc;
        total += d->groups[g].count;
    }
    if (total != d->n_neurons)
        return dk_fail(DK_E_INVALID, "network: groups hold %llu neurons but n_neurons is %u",
                       (unsigned long long)total, d->n_neurons);
    return DK_OK;
}

/* The kernels; *kernel_syn is how many synapses they imply. */
static int validate_kernels(const dk_network_desc *d, uint64_t *kernel_syn) {
    if (d->n_kernels > DK_MAX_KERNELS || (d->n_kernels && !d->kernels))
        return dk_fail(DK_E_INVALID, "network: 0..%u kernels, and a NULL kernel array only with 0",
                       DK_MAX_KERNELS);
    uint64_t ksyn = 0;
    for (uint32_t k = 0; k < d->n_kernels; k++) {
        uint64_t count = 0;
        int rc = dk_kernel_check(&d->kernels[k], k, d->n_neurons + d->n_inputs, d->n_neurons, &count);
        if (rc) return rc;
        ksyn += count;
    }
    *kernel_syn = ksyn;
    return DK_OK;
}

/* What the partition was configured with and granted, and what its cores hold; `all_syn`
 * counts the listed and the kernel synapses. */
static int validate_budget(const dk_partition *p, const dk_chip *c, const dk_network_desc *d,
                           uint64_t all_syn) {
    const dk_partition_config *cfg = &p->cfg;
    if (cfg->timestep_us && fabs((double)d->dt_ms * 1000.0 - cfg->timestep_us) > 1e-3 * cfg->timestep_us)
        return dk_fail(DK_E_INVALID,
                       "network: its time step of %g us differs from the %u us partition %u was "
                       "configured with (PartitionConfig timestepUs)",
                       (double)d->dt_ms * 1000.0, cfg->timestep_us, p->id);
    if (cfg->max_neurons && d->n_neurons > cfg->max_neurons)
        return dk_fail(DK_E_CAPACITY,
                       "network: %u neurons exceed the %llu partition %u was granted",
                       d->n_neurons, (unsigned long long)cfg->max_neurons, p->id);
    if (cfg->max_synapses && all_syn > cfg->max_synapses)
        return dk_fail(DK_E_CAPACITY,
                       "network: %llu synapses exceed the %llu partition %u was granted",
                       (unsigned long long)all_syn, (unsigned long long)cfg->max_synapses,
                       p->id);
    if (d->n_synapses && (!d->src || !d->dst || !d->weight || !d->delay))
        return dk_fail(DK_E_INVALID, "network: synapse arrays are NULL");
    if (d->n_synapses >= UINT32_MAX)
        return dk_fail(DK_E_CAPACITY, "network: %llu synapses exceed the 2^32 - 1 the store indexes",
                       (unsigned long long)d->n_synapses);
    /* split the division so a large synapses_per_chip cannot wrap the product */
    const uint64_t spc = c->prof.synapses_per_chip;
    uint64_t budget = spc / c->n_cores * p->n_cores + spc % c->n_cores * p->n_cores / c->n_cores;
    if (all_syn > budget)
        return dk_fail(DK_E_CAPACITY,
                       "network: %llu synapses exceed the partition's %llu (%u of %u cores of a "
                       "%llu-synapse chip)",
                       (unsigned long long)all_syn, (unsigned long long)budget, p->n_cores,
                       c->n_cores, (unsigned long long)c->prof.synapses_per_chip);
    uint64_t cap = (uint64_t)p->n_cores * c->prof.neurons_per_core;
    if (d->n_neurons > cap)
        return dk_fail(DK_E_CAPACITY, "network: %u neurons exceed the partition's %llu (%u cores x %u)",
                       d->n_neurons, (unsigned long long)cap, p->n_cores, c->prof.neurons_per_core);
    return DK_OK;
}

/* Every listed synapse and bias value. */
static int validate_synapses(const dk_network_desc *d) {
    uint32_t n_src = d->n_neurons + d->n_inputs;
    for (uint64_t i = 0; i < d->n_synapses; i++) {
        if (d->src[i] >= n_src)
            return dk_fail(DK_E_INVALID, "synapse %llu: source %u is not a neuron or input (< %u)",
                           (unsigned long long)i, d->src[i], n_src);
        if (d->dst[i] >= d->n_neurons)
            return dk_fail(DK_E_INVALID, "synapse %llu: target %u is not a neuron (< %u)",
                           (unsigned long long)i, d->dst[i], d->n_neurons);
        if (d->delay[i] < 1 || d->delay[i] > DK_MAX_DELAY)
            return dk_fail(DK_E_INVALID, "synapse %llu: delay %u must be 1..%u timesteps",
                           (unsigned long long)i, d->delay[i], DK_MAX_DELAY);
        if (!isfinite(d->weight[i]))
            return dk_fail(DK_E_INVALID, "synapse %llu: weight is not finite", (unsigned long long)i);
    }
    if (d->bias) {
        uint32_t j = 0;
        for (uint32_t g = 0; g < d->n_groups; g++) {
            bool iaf = d->groups[g].model == DK_MODEL_IAF_PSC_DELTA;
            for (uint32_t k = 0; k < d->groups[g].count; k++, j++) {
                if (!isfinite(d->bias[j]))
                    return dk_fail(DK_E_INVALID, "neuron %u: bias is not finite", j);
                if (iaf && d->bias[j] != 0.f)
                    return dk_fail(DK_E_INVALID,
                                   "neuron %u: bias %g on an iaf_psc_delta group (use i_e)", j,
                                   (double)d->bias[j]);
            }
        }
    }
    return DK_OK;
}

static int validate(const dk_partition *p, const dk_chip *c, const dk_network_desc *d,
                    uint64_t *kernel_syn) {
    int rc = validate_groups(d);
    if (!rc) rc = validate_kernels(d, kernel_syn);
    if (!rc) rc = validate_budget(p, c, d, d->n_synapses + *kernel_syn);
    if (!rc) rc = validate_synapses(d);
    return rc;
}

/* Exact one-step propagators of the NIR models for an input x held constant over the step:
 * with a_m = exp(-dt/tau_m) and a_s = exp(-dt/tau_syn),
 *   LIF, LI:      v' = e_l + a_m (v - e_l) + r (1 - a_m) x
 *   IF:           v' = v + r dt x
 *   CubaLIF, LI:  i' = a_s i + w_in (1 - a_s) x
 *                 v' = e_l + a_m (v - e_l) + r K i + r w_in (1 - a_m - K) x,
 *                 K = tau_syn / (tau_syn - tau_m) (a_s - a_m)   (dt/tau_m a_m if they are equal)
 * computed in double and rounded once to float. */
static void nir_coefficients(dk_group_rt *rt, const dk_group *g, double dt) {
    rt->model = g->model;
    rt->reset = g->reset;
    rt->spiking = is_spiking(g->model);
    rt->sub = g->v_th - g->v_reset;
    rt->bias_start = g->bias_start;
    if (g->model == DK_MODEL_IAF_PSC_DELTA) return;
    double r = (double)g->r, am = 0.0, as = 0.0, gx = 0.0, gs = 0.0, pvi = 0.0;
    switch (g->model) {
    case DK_MODEL_LIF:
    case DK_MODEL_LI:
        am = exp(-dt / (double)g->tau_m);
        gx = r * (1.0 - am);
        break;
    case DK_MODEL_IF:
        am = 1.0;
        gx = r * dt;
        break;
    case DK_MODEL_CUBA_LIF:
    case DK_MODEL_CUBA_LI: {
        double tm = (double)g->tau_m, ts = (double)g->tau_syn, w = (double)g->w_in;
        am = exp(-dt / tm);
        as = exp(-dt / ts);
        double k = fabs(ts - tm) <= 1e-9 * tm ? dt / tm * am : ts / (ts - tm) * (as - am);
        pvi = r * k;
        gx = r * w * (1.0 - am - k);
        gs = w * (1.0 - as);
        break;
    }
    default: /* THRESHOLD: v = x */
        gx = 1.0;
        break;
    }
    rt->a_m = (float)am;
    rt->g_x = (float)gx;
    rt->a_s = (float)as;
    rt->g_s = (float)gs;
    rt->p_vi = (float)pvi;
}

/* Placement: neurons spread evenly over a multiple of DK_PLACEMENT_QUANTUM cores. */
static void place(dk_network *n, const dk_partition *p, const dk_chip *c,
                  const dk_network_desc *d) {
    n->n_neurons = d->n_neurons;
    n->n_inputs = d->n_inputs;
    n->n_src = d->n_neurons + d->n_inputs;
    n->n_groups = d->n_groups;
    n->dt_ms = d->dt_ms;
    n->seed = d->seed;
    uint32_t npc = c->prof.neurons_per_core;
    uint32_t need = (d->n_neurons + npc - 1) / npc;
    uint32_t k = (need + DK_PLACEMENT_QUANTUM - 1) / DK_PLACEMENT_QUANTUM * DK_PLACEMENT_QUANTUM;
    if (k > p->n_cores) k = p->n_cores;
    if (k > d->n_neurons) k = d->n_neurons;
    n->per_core = (d->n_neurons + k - 1) / k;
    n->cores_used = (d->n_neurons + n->per_core - 1) / n->per_core;
}

/* Sorting: *perm lists the synapses by (source, delay, target); targets ascend, so cores come
 * grouped. *widx holds each synapse's weight index (the weight table: build_weights). */
static int sort_synapses(dk_network *n, const dk_network_desc *d, uint32_t **perm,
                         uint8_t **widx) {
    const uint64_t ns = d->n_synapses;
    uint32_t *tmp = dk_alloc(ns * sizeof *tmp);
    *perm = dk_alloc(ns * sizeof **perm);
    *widx = dk_alloc(ns);
    int rc = tmp && *perm && *widx ? DK_OK : DK_E_NOMEM;
    if (!rc) {
        for (uint64_t i = 0; i < ns; i++) (*perm)[i] = (uint32_t)i;
        rc = counting_pass(*perm, tmp, ns, d->dst, NULL, 1, d->n_neurons);
    }
    /* per source: by target core, then delay, then target (see deliver_by_core in run.c) */
    if (!rc) rc = counting_pass(*perm, tmp, ns, NULL, d->delay, 1, DK_MAX_DELAY + 1);
    if (!rc) rc = counting_pass(*perm, tmp, ns, d->dst, NULL, n->per_core, n->cores_used);
    if (!rc) rc = counting_pass(*perm, tmp, ns, d->src, NULL, 1, n->n_src);
    dk_free(tmp);
    if (!rc) rc = build_weights(n, d->weight, ns, *widx);
    return rc;
}

/* The synapse store's form (by how many weights and neurons a core) and its words. */
static int alloc_store(dk_network *n, uint64_t ns) {
    n->form = n->n_weights <= 16 && n->per_core <= 4096      ? DK_FORM_COMPACT
              : n->n_weights <= 256 && n->per_core <= 65536 ? DK_FORM_MID
                                                             : DK_FORM_WIDE;
    bool ok = true;
    if (n->form == DK_FORM_WIDE) ok = (n->syn = dk_alloc(ns * sizeof *n->syn)) != NULL;
    else ok = (n->syn16 = dk_alloc(ns * sizeof *n->syn16)) != NULL;
    if (n->form == DK_FORM_MID) ok = ok && (n->wid8 = dk_alloc(ns + 1)) != NULL;
    n->src_seg = dk_alloc(((size_t)n->n_src + 1) * sizeof *n->src_seg);
    /* a network of kernels only has no listed synapses to find */
    if (ns) ok = ok && (n->src_syn = dk_alloc(((size_t)n->n_src + 1) * sizeof *n->src_syn)) != NULL;
    return ok && n->src_seg ? DK_OK : DK_E_NOMEM;
}

/* Synapse i of the store: target `dst` on used core `core`, weight index `w`. */
static void store_synapse(dk_network *n, uint64_t i, uint32_t dst, uint16_t core, uint8_t w) {
    const uint32_t local = dst - (uint32_t)core * n->per_core;
    if (n->form == DK_FORM_COMPACT)
        n->syn16[i] = (uint16_t)(local | (uint32_t)w << 12);
    else if (n->form == DK_FORM_MID) {
        n->syn16[i] = (uint16_t)local;
        n->wid8[i] = w;
    } else
        n->syn[i] = dst | (uint32_t)w << 24;
}

/* The bits a segment word keeps for its length: what the core index leaves of 23. */
static uint32_t seg_len_bits(uint32_t cores_used) {
    uint32_t cb = 1;
    while (cb < 16 && (1u << cb) < cores_used) cb++;
    return 23u - cb;
}

/* Segments: per source, the runs of its synapses with one target core and one delay (perm's
 * order), a run longer than a segment holds continuing in the next. *max_delay becomes the
 * longest delay. */
static int build_segments(dk_network *n, const dk_network_desc *d, const uint32_t *perm,
                          const uint8_t *widx, uint8_t *max_delay) {
    const uint64_t ns = d->n_synapses;
    n->seg_lbits = seg_len_bits(n->cores_used);
    const uint32_t lb = n->seg_lbits, max_len = (1u << lb) - 1u;
    size_t cap = 0;
    uint64_t n_seg = 0, i = 0;
    n->seg = dk_grow(NULL, &cap, 1024, sizeof *n->seg, UINT32_MAX);
    if (!n->seg) return DK_E_NOMEM;
    bool seen[DK_MAX_DELAY + 1] = {false};
    for (uint32_t s = 0; s < n->n_src; s++) {
        n->src_seg[s] = (uint32_t)n_seg;
        if (n->src_syn) n->src_syn[s] = (uint32_t)i;
        uint32_t last_core = UINT32_MAX, last_delay = 0, len = 0, w0 = 0;
        for (; i < ns && d->src[perm[i]] == s; i++) {
            const uint32_t j = perm[i];
            const uint32_t core = d->dst[j] / n->per_core, delay = d->delay[j];
            if (delay > *max_delay) *max_delay = (uint8_t)delay;
            n->n_delays += !seen[delay];
            seen[delay] = true;
            if (core != last_core || delay != last_delay || len == max_len) {
                uint32_t *seg = dk_grow(n->seg, &cap, n_seg + 1, sizeof *seg, UINT32_MAX);
                if (!seg) return DK_E_NOMEM;
                n->seg = seg;
                n->seg[n_seg++] = 1u << lb | delay << (lb + 1) | core << (lb + 1 + DK_SEG_DELAY_BITS);
                last_core = core;
                last_delay = delay;
                len = 0;
                w0 = widx[j];
            }
            len++;
            uint32_t *w = &n->seg[n_seg - 1];
            *w = (*w & ~max_len) | len;
            /* one weight for the whole segment (per-population weights) saves a lookup */
            if (widx[j] != w0) *w &= ~(1u << lb);
            store_synapse(n, i, d->dst[j], (uint16_t)core, widx[j]);
        }
    }
    n->src_seg[n->n_src] = (uint32_t)n_seg;
    if (n->src_syn) n->src_syn[n->n_src] = (uint32_t)i;
    n->n_syn = ns;
    n->n_seg = n_seg;
    return DK_OK;
}

/* The per-source index in 2 bytes a source where the segments allow it (else src_seg stays);
 * returns the bytes the index holds. */
static size_t build_index(dk_network *n) {
    size_t n_blk = ((size_t)n->n_src + 1 + 63) / 64;
    n->seg_blk = dk_alloc(n_blk * sizeof *n->seg_blk);
    n->seg_rel = dk_alloc(((size_t)n->n_src + 1) * sizeof *n->seg_rel);
    bool rel_ok = n->seg_blk && n->seg_rel;
    for (size_t s = 0; rel_ok && s <= n->n_src; s++) {
        if (s % 64 == 0) n->seg_blk[s / 64] = n->src_seg[s];
        uint32_t rel = n->src_seg[s] - n->seg_blk[s / 64];
        if (rel > UINT16_MAX) rel_ok = false;
        else n->seg_rel[s] = (uint16_t)rel;
    }
    if (rel_ok) {
        dk_free(n->src_seg);
        n->src_seg = NULL;
        return n_blk * sizeof *n->seg_blk + ((size_t)n->n_src + 1) * sizeof *n->seg_rel;
    }
    dk_free(n->seg_blk);
    dk_free(n->seg_rel);
    n->seg_blk = NULL;
    n->seg_rel = NULL;
    return ((size_t)n->n_src + 1) * sizeof *n->src_seg;
}

/* The neuron state, the delay rings and the counters, zeroed. */
static int alloc_state(dk_network *n, const dk_chip *c, const dk_network_desc *d,
                       uint8_t max_delay, int32_t delay_store) {
    const uint32_t cu = n->cores_used;
    const size_t nn = d->n_neurons;
    n->n_slots = (uint32_t)max_delay + 1;
    n->v = dk_alloc(nn * sizeof *n->v);
    n->refr = dk_alloc(nn * sizeof *n->refr);
    n->rng = dk_alloc(nn * sizeof *n->rng);
    n->flag = dk_alloc(nn + 8);
    n->groups = dk_alloc(d->n_groups * sizeof *n->groups);
    n->qstride = n->n_slots < 16 ? 16 : n->n_slots;
    const size_t nq = (size_t)n->qstride * cu;
    const bool fits = (size_t)n->n_slots * nn * sizeof *n->ring <= DK_SLOT_SUMS_MAX_BYTES;
    n->slot_sums = delay_store == DK_DELAYS_SUMS || (delay_store == DK_DELAYS_AUTO && fits);
    const size_t ring_n = n->slot_sums ? (size_t)n->n_slots * nn : nn;
    n->ring = dk_alloc(ring_n * sizeof *n->ring);
    n->qbuf = dk_alloc(nq * sizeof *n->qbuf);
    n->qlen = dk_alloc(nq * sizeof *n->qlen);
    n->qcap = dk_alloc(nq * sizeof *n->qcap);
    n->core_slot_events = dk_alloc(nq * sizeof *n->core_slot_events);
    n->spike_count = dk_alloc((size_t)n->n_src * sizeof *n->spike_count);
    n->tree_spikes_folded = dk_alloc((size_t)n->n_src * sizeof *n->tree_spikes_folded);
    n->link_events = dk_alloc((size_t)c->n_tiles * 4 * sizeof *n->link_events);
    n->core_events = dk_alloc((size_t)cu * sizeof *n->core_events);
    n->core_ns = dk_alloc((size_t)cu * sizeof *n->core_ns);
    n->reach = dk_alloc((size_t)(cu + 1) * cu);
    n->core_dead = dk_alloc(cu);
    n->recorded = dk_alloc(nn);
    bool any_current = false;
    for (uint32_t g = 0; g < d->n_groups; g++) any_current |= has_current(d->groups[g].model);
    if (any_current) {
        n->isyn = dk_alloc(nn * sizeof *n->isyn);
        if (!n->isyn) return DK_E_NOMEM;
        n->bytes += nn * sizeof *n->isyn;
    }
    if (d->bias) {
        n->bias = dk_alloc(nn * sizeof *n->bias);
        if (!n->bias) return DK_E_NOMEM;
        memcpy(n->bias, d->bias, nn * sizeof *n->bias);
        n->bytes += nn * sizeof *n->bias;
    }
    n->in.cap = 65536;
    n->in.steps = dk_alloc(n->in.cap * sizeof *n->in.steps);
    n->in.ids = dk_alloc(n->in.cap * sizeof *n->in.ids);
    if (!n->v || !n->refr || !n->rng || !n->flag || !n->groups || !n->ring || !n->qbuf ||
        !n->qlen || !n->qcap ||
        !n->core_slot_events || !n->spike_count || !n->tree_spikes_folded || !n->link_events ||
        !n->core_events || !n->core_ns || !n->reach || !n->core_dead || !n->recorded || !n->in.steps || !n->in.ids)
        return DK_E_NOMEM;
    n->bytes += nn * (4 + 4 + 2 + 4 + 1 + 1) + nq * (sizeof *n->qbuf + 4 + sizeof *n->qcap + 4) +
                (size_t)n->n_src * 16 + (ring_n - nn) * sizeof *n->ring;
    return DK_OK;
}

/* The groups' propagators and drive tables, the initial potentials and the random streams. */
static int init_state(dk_network *n, const dk_network_desc *d) {
    uint64_t seed = d->seed;
    uint32_t start = 0;
    for (uint32_t g = 0; g < d->n_groups; g++) {
        const dk_group *in = &d->groups[g];
        dk_group_rt *rt = &n->groups[g];
        rt->start = start;
        rt->end = start + in->count;
        double p22 = exp(-(double)d->dt_ms / (double)in->tau_m);
        rt->p22 = (float)p22;
        rt->p20ie = (float)((double)in->tau_m * (1.0 - p22) * (double)in->i_e_mv_per_ms);
        rt->e_l = in->e_l;
        rt->v_th = in->v_th;
        rt->v_reset = in->v_reset;
        rt->w_ext = in->poisson_weight;
        rt->ref_steps = (uint32_t)lround((double)in->t_ref / (double)d->dt_ms);
        nir_coefficients(rt, in, (double)d->dt_ms);
        int rc = poisson_table(rt, (double)in->poisson_rate_hz * (double)d->dt_ms * 1e-3, g);
        if (rc) return rc;
        for (uint32_t j = rt->start; j < rt->end; j++) n->v[j] = in->v_init;
        start = rt->end;
    }
    for (size_t j = 0; j < d->n_neurons; j++) {
        uint32_t x = (uint32_t)splitmix64(&seed);
        n->rng[j] = x ? x : 0x9E3779B9u; /* xorshift32 must not start at zero */
    }
    return DK_OK;
}

/* Builds network `n` from a validated description: placement, sorting, segments and their
 * index, kernels, routing trees, then the state. */
static int build(dk_network *n, const dk_partition *p, const dk_chip *c, const dk_network_desc *d,
                 uint64_t kernel_syn) {
    const uint64_t ns = d->n_synapses;
    place(n, p, c, d);
    uint32_t *perm = NULL;
    uint8_t *widx = NULL, max_delay = 1;
    int rc = sort_synapses(n, d, &perm, &widx);
    if (!rc) rc = alloc_store(n, ns);
    if (!rc) rc = build_segments(n, d, perm, widx, &max_delay);
    dk_free(perm);
    dk_free(widx);
    if (rc) return rc;
    const size_t index_bytes = build_index(n);
    for (uint32_t q = 0; q < d->n_kernels; q++)
        if (d->kernels[q].delay > max_delay) max_delay = (uint8_t)d->kernels[q].delay;
    uint64_t kernel_bytes = 0;
    rc = dk_kernels_copy(n, d, kernel_syn, &kernel_bytes);
    if (rc) return rc;
    const size_t syn_bytes = n->form == DK_FORM_COMPACT ? 2 : n->form == DK_FORM_MID ? 3 : 4;
    const uint64_t store_bytes = ns * syn_bytes + index_bytes + n->n_seg * sizeof *n->seg +
                                 (ns ? ((size_t)n->n_src + 1) * sizeof *n->src_syn : 0);
    n->bytes += kernel_bytes + store_bytes;
    n->src_core = dk_alloc((size_t)n->n_src * sizeof *n->src_core);
    if (!n->src_core) return DK_E_NOMEM;
    for (uint32_t s = 0; s < n->n_src; s++)
        n->src_core[s] = (uint16_t)(s < n->n_neurons ? s / n->per_core : n->cores_used);
    rc = build_trees(n, c, p);
    if (!rc) rc = alloc_state(n, c, d, max_delay, p->cfg.delay_store);
    if (!rc) rc = dk_router_init(n, c);
    if (!rc) rc = init_state(n, d);
    if (rc) return rc;
    n->tel.synapse_bytes = store_bytes + kernel_bytes;
    n->tel.synapses = ns + n->kernel_syn;
    n->tel.quant_error_mv = n->quant_error;
    n->tel.cores_used = n->cores_used;
    n->tel.delay_store = n->slot_sums ? DK_DELAYS_SUMS : DK_DELAYS_QUEUES;
    return DK_OK;
}

int dk_network_load(dk_engine *e, uint32_t part, const dk_network_desc *desc) {
    if (!e || !desc) return dk_fail(DK_E_INVALID, "dk_network_load: NULL argument");
    dk_partition *p;
    int rc = dk_part_get(e, part, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    if (p->net) {
        rc = dk_fail(DK_E_CONFLICT, "partition %u already runs a network; unload it first", part);
        goto out;
    }
    pthread_mutex_lock(&e->lock);
    const dk_chip *c = &e->chips[p->chip];
    dk_chip chip = *c; /* profile and geometry are immutable after dk_chip_add */
    pthread_mutex_unlock(&e->lock);
    uint64_t kernel_syn = 0;
    rc = validate(p, &chip, desc, &kernel_syn);
    if (rc) goto out;
    dk_network *n = dk_alloc(sizeof *n);
    if (!n) { rc = DK_E_NOMEM; goto out; }
    rc = build(n, p, &chip, desc, kernel_syn);
    if (rc) {
        dk_network_free(n);
        goto out;
    }
    p->net = n;
    pthread_mutex_lock(&e->lock);
    dk_network_refresh_faults(&e->chips[p->chip], p);
    p->link_uses = n->rt.uses; /* the chip's other partitions share links with it from now */
    e->share_epoch++;
    dk_router_shares(e, p);
    pthread_mutex_unlock(&e->lock);
out:
    pthread_mutex_unlock(&p->lock);
    dk_part_put(e, p);
    return rc;
}

int dk_network_unload(dk_engine *e, uint32_t part) {
    dk_partition *p;
    int rc = dk_part_get(e, part, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    if (!p->net) rc = dk_fail(DK_E_STATE, "partition %u has no network loaded", part);
    pthread_mutex_lock(&e->lock);
    p->link_uses = NULL;
    e->share_epoch++;
    pthread_mutex_unlock(&e->lock);
    dk_network_free(p->net);
    p->net = NULL;
    pthread_mutex_unlock(&p->lock);
    dk_part_put(e, p);
    return rc;
}

int dk_neuron_core(dk_engine *e, uint32_t part, uint32_t neuron, uint32_t *core) {
    if (!core) return dk_fail(DK_E_INVALID, "dk_neuron_core: NULL argument");
    dk_partition *p;
    int rc = dk_part_get(e, part, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    if (!p->net) rc = dk_fail(DK_E_STATE, "partition %u has no network loaded", part);
    else if (neuron >= p->net->n_neurons)
        rc = dk_fail(DK_E_INVALID, "neuron %u does not exist (the network has %u)", neuron,
                     p->net->n_neurons);
    else *core = p->cores[neuron / p->net->per_core];
    pthread_mutex_unlock(&p->lock);
    dk_part_put(e, p);
    return rc;
}
