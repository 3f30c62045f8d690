/* The fabric's topology (darwin_engine.h, "Fabric links"): the chips of one fabric, by id, on a
 * grid of the lowest-id chip's fabric_grid_w chips a row (0: every pair of them adjacent); the
 * path a spike takes between two of them (dimension-ordered while it works, else the first
 * shortest path of a breadth-first search over the working links); and fabric link faults. */
#include <string.h>

#include "internal.h"

typedef struct {
    uint32_t *ids;          /* the fabric's chips in rank order (ascending ids) */
    uint32_t *parent, *queue;
    uint32_t n, w;          /* chips; chips a row (0: all adjacent) */
} fabric_grid;

static bool same_fabric(const dk_engine *e, uint32_t a, uint32_t b) {
    const char *fa = e->chips[a].desc.fabric;
    return fa[0] && strcmp(fa, e->chips[b].desc.fabric) == 0;
}

int dk_fabric_pair(const dk_engine *e, uint32_t a, uint32_t b) {
    if (a >= e->n_chips || b >= e->n_chips)
        return dk_fail(DK_E_NOT_FOUND, "fabric link %u -> %u: no such chip (the engine has %u)",
                       a, b, e->n_chips);
    if (a == b)
        return dk_fail(DK_E_INVALID, "fabric link %u -> %u: both ends are one chip, whose mesh "
                                     "carries its spikes (dk_inject)", a, b);
    if (!same_fabric(e, a, b))
        return dk_fail(DK_E_INVALID, "chips %u (fabric '%s') and %u (fabric '%s') are not on "
                                     "one fabric", a, e->chips[a].desc.fabric, b,
                       e->chips[b].desc.fabric);
    return DK_OK;
}

/* The grid of chip's fabric (chip on a fabric); free with grid_free. */
static int grid_of(const dk_engine *e, uint32_t chip, fabric_grid *g) {
    *g = (fabric_grid){0};
    g->ids = dk_alloc(3 * ((size_t)e->n_chips + 1) * sizeof *g->ids);
    if (!g->ids) return DK_E_NOMEM;
    g->parent = g->ids + e->n_chips + 1;
    g->queue = g->parent + e->n_chips + 1;
    for (uint32_t i = 0; i < e->n_chips; i++)
        if (i == chip || same_fabric(e, i, chip)) g->ids[g->n++] = i;
    g->w = e->chips[g->ids[0]].prof.fabric_grid_w;
    return DK_OK;
}

static void grid_free(fabric_grid *g) { dk_free(g->ids); }

static uint32_t grid_rank(const fabric_grid *g, uint32_t chip) {
    for (uint32_t r = 0; r < g->n; r++)
        if (g->ids[r] == chip) return r;
    return UINT32_MAX;
}

static uint32_t grid_degree(const fabric_grid *g) { return g->w ? 4u : g->n - 1u; }

/* The k-th neighbour of rank r (east, west, south, north; or every other rank in order), or
 * UINT32_MAX where the grid has none. */
static uint32_t grid_next(const fabric_grid *g, uint32_t r, uint32_t k) {
    if (!g->w) return k < r ? k : k + 1;
    const uint32_t x = r % g->w;
    switch (k) {
    case 0: return x + 1 < g->w && r + 1 < g->n ? r + 1 : UINT32_MAX;
    case 1: return x > 0 ? r - 1 : UINT32_MAX;
    case 2: return r + g->w < g->n ? r + g->w : UINT32_MAX;
    default: return r >= g->w ? r - g->w : UINT32_MAX;
    }
}

static bool grid_adjacent(const fabric_grid *g, uint32_t ra, uint32_t rb) {
    for (uint32_t k = 0; k < grid_degree(g); k++)
        if (grid_next(g, ra, k) == rb) return true;
    return false;
}

/* Whether the hop between ranks ra and rb carries spikes: its link and both its chips work. */
static bool hop_works(dk_engine *e, const fabric_grid *g, uint32_t ra, uint32_t rb) {
    if (ra >= g->n || rb >= g->n) return false;
    const uint32_t a = g->ids[ra], b = g->ids[rb];
    const dk_fabric_link *l = dk_fabric_find(e, a, b, false);
    return !(l && l->st.failed) && !e->chips[a].failed && !e->chips[b].failed;
}

/* The dimension-ordered path from ra to rb (ranks, both ends) into path, along the row first
 * (or the column first); returns its length, 0 if it leaves the grid (a short last row). */
static uint32_t xy_order(const fabric_grid *g, uint32_t ra, uint32_t rb, uint32_t *path,
                         bool column_first) {
    uint32_t n = 0, r = ra;
    path[n++] = r;
    if (!g->w) {
        path[n++] = rb;
        return n;
    }
    for (int pass = 0; pass < 2; pass++) {
        if ((pass == 0) != column_first)
            while (r % g->w != rb % g->w) path[n++] = r = r % g->w < rb % g->w ? r + 1 : r - 1;
        else
            while (r / g->w != rb / g->w) path[n++] = r = r < rb ? r + g->w : r - g->w;
    }
    for (uint32_t i = 0; i < n; i++)
        if (path[i] >= g->n) return 0;
    return n;
}

/* The dimension-ordered path: along the row, then the column; the column first where that
 * would leave the grid (from a short last row, the column first always stays on it). */
static uint32_t xy_path(const fabric_grid *g, uint32_t ra, uint32_t rb, uint32_t *path) {
    const uint32_t n = xy_order(g, ra, rb, path, false);
    return n ? n : xy_order(g, ra, rb, path, true);
}

/* The first shortest path over working hops from ra to rb (ranks) into path; 0 if none. */
static uint32_t bfs_path(dk_engine *e, fabric_grid *g, uint32_t ra, uint32_t rb,
                         uint32_t *path) {
    for (uint32_t r = 0; r < g->n; r++) g->parent[r] = UINT32_MAX;
    uint32_t head = 0, tail = 0;
    g->queue[tail++] = ra;
    g->parent[ra] = ra;
    while (head < tail && g->parent[rb] == UINT32_MAX) {
        const uint32_t r = g->queue[head++];
        for (uint32_t k = 0; k < grid_degree(g); k++) {
            const uint32_t q = grid_next(g, r, k);
            if (q == UINT32_MAX || g->parent[q] != UINT32_MAX || !hop_works(e, g, r, q)) continue;
            g->parent[q] = r;
            g->queue[tail++] = q;
        }
    }
    if (g->parent[rb] == UINT32_MAX) return 0;
    uint32_t n = 0;
    for (uint32_t r = rb; r != ra; r = g->parent[r]) path[n++] = r;
    path[n++] = ra;
    for (uint32_t i = 0; i < n / 2; i++) { /* reversed: from ra */
        const uint32_t t = path[i];
        path[i] = path[n - 1 - i];
        path[n - 1 - i] = t;
    }
    return n;
}

int dk_fabric_path(dk_engine *e, uint32_t a, uint32_t b, uint32_t *path, uint32_t *n,
                   uint32_t *blocked_a, uint32_t *blocked_b) {
    fabric_grid g;
    if (grid_of(e, a, &g)) return DK_E_NOMEM;
    const uint32_t ra = grid_rank(&g, a), rb = grid_rank(&g, b);
    uint32_t len = xy_path(&g, ra, rb, path), broken = UINT32_MAX;
    for (uint32_t h = 0; h + 1 < len && broken == UINT32_MAX; h++)
        if (!hop_works(e, &g, path[h], path[h + 1])) broken = h;
    if (broken != UINT32_MAX) {
        *blocked_a = g.ids[path[broken]];
        *blocked_b = g.ids[path[broken + 1]];
        len = bfs_path(e, &g, ra, rb, path);
    }
    for (uint32_t i = 0; i < len; i++) path[i] = g.ids[path[i]];
    *n = len;
    grid_free(&g);
    return DK_OK;
}

int dk_fabric_adjacent(const dk_engine *e, uint32_t a, uint32_t b) {
    fabric_grid g;
    if (grid_of(e, a, &g)) return DK_E_NOMEM;
    const bool adj = grid_adjacent(&g, grid_rank(&g, a), grid_rank(&g, b));
    const uint32_t w = g.w;
    grid_free(&g);
    if (adj) return DK_OK;
    return dk_fail(DK_E_NOT_FOUND, "chips %u and %u of fabric '%s' are not neighbours on its "
                                   "grid of %u chips a row: no fabric link joins them", a, b,
                   e->chips[a].desc.fabric, w);
}

int dk_fabric_route(dk_engine *e, uint32_t src_chip, uint32_t dst_chip, uint32_t *chips,
                    uint32_t cap, uint32_t *n) {
    if (!e || !chips || !n) return dk_fail(DK_E_INVALID, "dk_fabric_route: NULL argument");
    pthread_mutex_lock(&e->lock);
    int rc = dk_fabric_pair(e, src_chip, dst_chip);
    if (!rc && cap < e->n_chips)
        rc = dk_fail(DK_E_INVALID, "fabric route: room for %u chips, the engine has %u", cap,
                     e->n_chips);
    uint32_t ba, bb;
    if (!rc) rc = dk_fabric_path(e, src_chip, dst_chip, chips, n, &ba, &bb);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int dk_fabric_fault_locked(dk_engine *e, uint32_t chip, uint32_t other, uint8_t value) {
    int rc = dk_fabric_pair(e, chip, other);
    if (!rc) rc = dk_fabric_adjacent(e, chip, other);
    if (rc) return rc;
    dk_fabric_link *l = dk_fabric_find(e, chip, other, value != 0);
    if (l) l->st.failed = value;
    else if (value) return DK_E_NOMEM;
    return DK_OK;
}

void dk_fabric_chip_links(dk_engine *e, uint32_t chip, uint32_t *links, uint32_t *failed) {
    *links = *failed = 0;
    fabric_grid g;
    if (!e->chips[chip].desc.fabric[0] || grid_of(e, chip, &g)) return;
    const uint32_t r = grid_rank(&g, chip);
    for (uint32_t k = 0; k < grid_degree(&g); k++) {
        const uint32_t q = grid_next(&g, r, k);
        if (q == UINT32_MAX) continue;
        const dk_fabric_link *l = dk_fabric_find(e, chip, g.ids[q], false);
        (*links)++;
        *failed += l && l->st.failed;
    }
    grid_free(&g);
}
