/* The engine object, error reporting, chips and their topology, discovery and faults. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Thread_local char last_error[512];

const char *dk_last_error(void) { return last_error; }

const char *dk_version(void) { return "darwin-engine 0.1.0"; }

const char *dk_simd_path(void) {
#if DK_HAVE_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512f";
    if (__builtin_cpu_supports("avx2")) return "avx2";
    return "x86-64 baseline";
#else
    return "portable baseline (no run-time dispatch on this compiler or CPU)";
#endif
}

int dk_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

void *dk_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    size_t rounded = (bytes + DK_ALIGN - 1) / DK_ALIGN * DK_ALIGN;
    if (rounded < bytes) { /* overflow */
        dk_fail(DK_E_NOMEM, "allocation of %zu bytes overflows", bytes);
        return NULL;
    }
    void *p = aligned_alloc(DK_ALIGN, rounded);
    if (!p) {
        dk_fail(DK_E_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void dk_free(void *p) { free(p); }

void *dk_grow(void *old, size_t *cap, size_t need, size_t size, size_t max) {
    if (need <= *cap) return old;
    size_t grown = *cap ? *cap : 16;
    while (grown < need) {
        if (grown > SIZE_MAX / 2) break;
        grown *= 2;
    }
    if (grown < need || grown > max || grown > SIZE_MAX / size) {
        dk_fail(DK_E_NOMEM, "a block of %zu items of %zu bytes cannot grow to %zu", *cap, size,
                need);
        return NULL;
    }
    void *block = dk_alloc(grown * size);
    if (!block) return NULL;
    if (*cap) memcpy(block, old, *cap * size);
    dk_free(old);
    *cap = grown;
    return block;
}

int dk_engine_create(dk_engine **out) {
    if (!out) return dk_fail(DK_E_INVALID, "dk_engine_create: out is NULL");
    dk_engine *e = dk_alloc(sizeof *e);
    if (!e) return DK_E_NOMEM;
    pthread_mutex_init(&e->lock, NULL);
    *out = e;
    return DK_OK;
}

static void chip_free(dk_chip *c) {
    dk_free(c->core_x);
    dk_free(c->core_y);
    dk_free(c->core_domain);
    dk_free(c->tile_core);
    dk_free(c->core_failed);
    dk_free(c->link_failed);
    dk_free(c->core_owner);
    dk_free(c->core_shared);
}

void dk_engine_destroy(dk_engine *e) {
    if (!e) return;
    for (uint32_t i = 0; i < e->cap_parts; i++) {
        dk_partition *p = e->parts[i];
        if (!p) continue;
        dk_network_free(p->net);
        pthread_mutex_destroy(&p->lock);
        dk_free(p->cores);
        dk_free(p);
    }
    dk_free(e->parts);
    dk_free(e->fabric);
    for (uint32_t i = 0; i < e->n_chips; i++) chip_free(&e->chips[i]);
    dk_free(e->chips);
    pthread_mutex_destroy(&e->lock);
    dk_free(e);
}

static bool fits(const char *s, size_t cap) { return memchr(s, '\0', cap) != NULL; }

static int profile_check(const dk_chip_profile *p) {
    if (!fits(p->model, sizeof p->model) || p->model[0] == '\0')
        return dk_fail(DK_E_INVALID, "profile: model must be a non-empty string under 32 bytes");
    if (p->mesh_w == 0 || p->mesh_h == 0 || p->mesh_w > 256 || p->mesh_h > 256)
        return dk_fail(DK_E_INVALID, "profile %s: mesh %ux%u must be 1..256 on each side",
                       p->model, p->mesh_w, p->mesh_h);
    if (p->mesh_w * p->mesh_h < 2)
        return dk_fail(DK_E_INVALID, "profile %s: a mesh needs a controller and a core", p->model);
    if (p->domain_w == 0 || p->domain_h == 0 || p->mesh_w % p->domain_w || p->mesh_h % p->domain_h)
        return dk_fail(DK_E_INVALID, "profile %s: domain %ux%u must divide the mesh %ux%u",
                       p->model, p->domain_w, p->domain_h, p->mesh_w, p->mesh_h);
    if (p->controller_x >= p->mesh_w || p->controller_y >= p->mesh_h)
        return dk_fail(DK_E_INVALID, "profile %s: controller tile (%u,%u) is outside the mesh",
                       p->model, p->controller_x, p->controller_y);
    if (p->neurons_per_core == 0 || p->neurons_per_core > 65536)
        return dk_fail(DK_E_INVALID, "profile %s: neurons_per_core %u must be 1..65536", p->model,
                       p->neurons_per_core);
    if (p->synapses_per_chip == 0)
        return dk_fail(DK_E_INVALID, "profile %s: synapses_per_chip must be positive", p->model);
    if (p->core_queue_events == 0)
        return dk_fail(DK_E_INVALID, "profile %s: core_queue_events must be positive", p->model);
    if (!(p->router_events_per_s > 0) || !(p->energy_pj_per_op >= 0))
        return dk_fail(DK_E_INVALID, "profile %s: router_events_per_s must be positive and "
                                     "energy_pj_per_op non-negative", p->model);
    if (!(p->fabric_events_per_s > 0) || !(p->fabric_events_per_s <= 1e16))
        return dk_fail(DK_E_INVALID, "profile %s: fabric_events_per_s must be in (0, 1e16]",
                       p->model);
    if (p->fabric_grid_w > 4096)
        return dk_fail(DK_E_INVALID, "profile %s: fabric_grid_w %u must be 0..4096", p->model,
                       p->fabric_grid_w);
    return DK_OK;
}

int dk_chip_add(dk_engine *e, const dk_chip_profile *profile, const dk_chip_desc *desc,
                uint32_t *chip_id) {
    if (!e || !profile || !desc || !chip_id) return dk_fail(DK_E_INVALID, "dk_chip_add: NULL argument");
    int rc = profile_check(profile);
    if (rc) return rc;
    if (!fits(desc->serial, sizeof desc->serial) || !fits(desc->fabric, sizeof desc->fabric))
        return dk_fail(DK_E_INVALID, "chip: serial and fabric must be strings under 64 bytes");
    pthread_mutex_lock(&e->lock);
    for (uint32_t i = 0; i < e->n_chips; i++) {
        if (desc->serial[0] && strcmp(e->chips[i].desc.serial, desc->serial) == 0) {
            pthread_mutex_unlock(&e->lock);
            return dk_fail(DK_E_CONFLICT, "chip serial %s is already present (chip %u)",
                           desc->serial, i);
        }
    }
    size_t cap = e->cap_chips;
    dk_chip *chips = dk_grow(e->chips, &cap, (size_t)e->n_chips + 1, sizeof *chips, UINT32_MAX);
    if (!chips) { pthread_mutex_unlock(&e->lock); return DK_E_NOMEM; }
    e->chips = chips;
    e->cap_chips = (uint32_t)cap;
    dk_chip *c = &e->chips[e->n_chips];
    memset(c, 0, sizeof *c);
    c->prof = *profile;
    c->desc = *desc;
    c->n_tiles = profile->mesh_w * profile->mesh_h;
    c->n_cores = c->n_tiles - 1;
    c->domains_x = profile->mesh_w / profile->domain_w;
    c->n_domains = c->domains_x * (profile->mesh_h / profile->domain_h);
    c->core_x = dk_alloc(c->n_cores * sizeof *c->core_x);
    c->core_y = dk_alloc(c->n_cores * sizeof *c->core_y);
    c->core_domain = dk_alloc(c->n_cores * sizeof *c->core_domain);
    c->tile_core = dk_alloc(c->n_tiles * sizeof *c->tile_core);
    c->core_failed = dk_alloc(c->n_cores);
    c->link_failed = dk_alloc(c->n_tiles * 4u);
    c->core_owner = dk_alloc(c->n_cores * sizeof *c->core_owner);
    c->core_shared = dk_alloc(c->n_cores * sizeof *c->core_shared);
    if (!c->core_x || !c->core_y || !c->core_domain || !c->tile_core || !c->core_failed ||
        !c->link_failed || !c->core_owner || !c->core_shared) {
        chip_free(c);
        pthread_mutex_unlock(&e->lock);
        return DK_E_NOMEM;
    }
    /* Cores are numbered row by row, skipping the controller tile. */
    uint32_t core = 0;
    for (uint32_t y = 0; y < profile->mesh_h; y++) {
        for (uint32_t x = 0; x < profile->mesh_w; x++) {
            uint32_t tile = y * profile->mesh_w + x;
            if (x == profile->controller_x && y == profile->controller_y) {
                c->tile_core[tile] = -1;
                continue;
            }
            c->tile_core[tile] = (int32_t)core;
            c->core_x[core] = (uint16_t)x;
            c->core_y[core] = (uint16_t)y;
            c->core_domain[core] = (uint16_t)((y / profile->domain_h) * c->domains_x + x / profile->domain_w);
            c->core_owner[core] = -1;
            core++;
        }
    }
    *chip_id = e->n_chips++;
    pthread_mutex_unlock(&e->lock);
    return DK_OK;
}

int dk_chip_lock(dk_engine *e, uint32_t chip, dk_chip **out) {
    pthread_mutex_lock(&e->lock);
    if (chip < e->n_chips) {
        *out = &e->chips[chip];
        return DK_OK;
    }
    uint32_t n = e->n_chips;
    pthread_mutex_unlock(&e->lock);
    return dk_fail(DK_E_NOT_FOUND, "chip %u does not exist (the engine has %u chips)", chip, n);
}

int dk_chip_count(dk_engine *e, uint32_t *count) {
    if (!e || !count) return dk_fail(DK_E_INVALID, "dk_chip_count: NULL argument");
    pthread_mutex_lock(&e->lock);
    *count = e->n_chips;
    pthread_mutex_unlock(&e->lock);
    return DK_OK;
}

static uint32_t count_failed_links(const dk_chip *c) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_tiles * 4u; i++) n += c->link_failed[i];
    return n;
}

int dk_chip_info_get(dk_engine *e, uint32_t chip, dk_chip_info *out) {
    if (!e || !out) return dk_fail(DK_E_INVALID, "dk_chip_info_get: NULL argument");
    dk_chip *c;
    int rc = dk_chip_lock(e, chip, &c);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    out->id = chip;
    memcpy(out->model, c->prof.model, sizeof out->model);
    memcpy(out->serial, c->desc.serial, sizeof out->serial);
    memcpy(out->fabric, c->desc.fabric, sizeof out->fabric);
    out->numa_node = c->desc.numa_node;
    out->mesh_w = c->prof.mesh_w;
    out->mesh_h = c->prof.mesh_h;
    out->n_domains = c->n_domains;
    out->n_cores = c->n_cores;
    out->neurons_per_core = c->prof.neurons_per_core;
    out->synapses_per_chip = c->prof.synapses_per_chip;
    out->router_events_per_s = c->prof.router_events_per_s;
    out->energy_pj_per_op = c->prof.energy_pj_per_op;
    for (uint32_t i = 0; i < c->n_cores; i++) out->failed_cores += c->core_failed[i];
    out->failed_links = count_failed_links(c);
    out->health = c->failed ? DK_HEALTH_FAILED : DK_HEALTH_OK;
    dk_fabric_chip_links(e, chip, &out->fabric_links, &out->failed_fabric_links);
    pthread_mutex_unlock(&e->lock);
    return DK_OK;
}

/* DK_OK if item `i` of the `n` `what`s of chip `chip` exists; else the engine (locked by
 * dk_chip_lock) is unlocked and DK_E_NOT_FOUND returned. */
static int exists_or_unlock(dk_engine *e, const char *what, uint32_t i, uint32_t n,
                            uint32_t chip) {
    if (i < n) return DK_OK;
    pthread_mutex_unlock(&e->lock);
    return dk_fail(DK_E_NOT_FOUND, "%s %u does not exist (chip %u has %u %ss)", what, i, chip, n,
                   what);
}

int dk_domain_info_get(dk_engine *e, uint32_t chip, uint32_t domain, dk_domain_info *out) {
    if (!e || !out) return dk_fail(DK_E_INVALID, "dk_domain_info_get: NULL argument");
    dk_chip *c;
    int rc = dk_chip_lock(e, chip, &c);
    if (rc) return rc;
    rc = exists_or_unlock(e, "domain", domain, c->n_domains, chip);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    out->domain = domain;
    out->x0 = (domain % c->domains_x) * c->prof.domain_w;
    out->y0 = (domain / c->domains_x) * c->prof.domain_h;
    out->x1 = out->x0 + c->prof.domain_w - 1;
    out->y1 = out->y0 + c->prof.domain_h - 1;
    for (uint32_t i = 0; i < c->n_cores; i++) {
        if (c->core_domain[i] != domain) continue;
        out->n_cores++;
        out->failed_cores += c->core_failed[i];
    }
    out->health = (c->failed || out->failed_cores) ? DK_HEALTH_FAILED : DK_HEALTH_OK;
    pthread_mutex_unlock(&e->lock);
    return DK_OK;
}

int dk_core_info_get(dk_engine *e, uint32_t chip, uint32_t core, dk_core_info *out) {
    if (!e || !out) return dk_fail(DK_E_INVALID, "dk_core_info_get: NULL argument");
    dk_chip *c;
    int rc = dk_chip_lock(e, chip, &c);
    if (rc) return rc;
    rc = exists_or_unlock(e, "core", core, c->n_cores, chip);
    if (rc) return rc;
    out->core = core;
    out->x = c->core_x[core];
    out->y = c->core_y[core];
    out->domain = c->core_domain[core];
    out->health = (c->failed || c->core_failed[core]) ? DK_HEALTH_FAILED : DK_HEALTH_OK;
    out->partition = c->core_owner[core];
    pthread_mutex_unlock(&e->lock);
    return DK_OK;
}

int32_t dk_link_of(const dk_chip *c, uint32_t x, uint32_t y, uint32_t dir) {
    if (x >= c->prof.mesh_w || y >= c->prof.mesh_h || dir > DK_DIR_SOUTH) return -1;
    if (dir == DK_DIR_EAST && x + 1 >= c->prof.mesh_w) return -1;
    if (dir == DK_DIR_WEST && x == 0) return -1;
    if (dir == DK_DIR_NORTH && y == 0) return -1;
    if (dir == DK_DIR_SOUTH && y + 1 >= c->prof.mesh_h) return -1;
    return (int32_t)((y * c->prof.mesh_w + x) * 4u + dir);
}

void dk_route_xy(const dk_chip *c, uint32_t x0, uint32_t y0, uint32_t x1, uint32_t y1,
                 dk_link_visitor visit, void *ctx) {
    /* Dimension-order routing: all the way along X first, then along Y; deadlock-free. */
    uint32_t x = x0, y = y0;
    while (x != x1) {
        uint32_t dir = x < x1 ? DK_DIR_EAST : DK_DIR_WEST;
        visit(ctx, dk_link_of(c, x, y, dir));
        x = x < x1 ? x + 1 : x - 1;
    }
    while (y != y1) {
        uint32_t dir = y < y1 ? DK_DIR_SOUTH : DK_DIR_NORTH;
        visit(ctx, dk_link_of(c, x, y, dir));
        y = y < y1 ? y + 1 : y - 1;
    }
}

int dk_link_index(dk_engine *e, uint32_t chip, uint32_t x, uint32_t y, uint32_t dir, int32_t *index) {
    if (!e || !index) return dk_fail(DK_E_INVALID, "dk_link_index: NULL argument");
    dk_chip *c;
    int rc = dk_chip_lock(e, chip, &c);
    if (rc) return rc;
    if (x >= c->prof.mesh_w || y >= c->prof.mesh_h || dir > DK_DIR_SOUTH) {
        pthread_mutex_unlock(&e->lock);
        return dk_fail(DK_E_INVALID, "link (%u,%u) dir %u is outside the %ux%u mesh", x, y, dir,
                       c->prof.mesh_w, c->prof.mesh_h);
    }
    *index = dk_link_of(c, x, y, dir);
    pthread_mutex_unlock(&e->lock);
    return DK_OK;
}

int dk_link_count(dk_engine *e, uint32_t chip, uint32_t *count) {
    if (!e || !count) return dk_fail(DK_E_INVALID, "dk_link_count: NULL argument");
    dk_chip *c;
    int rc = dk_chip_lock(e, chip, &c);
    if (rc) return rc;
    *count = c->n_tiles * 4u;
    pthread_mutex_unlock(&e->lock);
    return DK_OK;
}

int dk_links_failed(dk_engine *e, uint32_t chip, uint8_t *failed, uint32_t n) {
    if (!e || !failed) return dk_fail(DK_E_INVALID, "dk_links_failed: NULL argument");
    dk_chip *c;
    int rc = dk_chip_lock(e, chip, &c);
    if (rc) return rc;
    if (n != c->n_tiles * 4u) {
        pthread_mutex_unlock(&e->lock);
        return dk_fail(DK_E_INVALID, "dk_links_failed: n is %u, chip %u has %u links", n, chip,
                       c->n_tiles * 4u);
    }
    memcpy(failed, c->link_failed, n);
    pthread_mutex_unlock(&e->lock);
    return DK_OK;
}

/* ---- faults ---- */

static int fault_set(dk_engine *e, uint32_t chip, int32_t kind, uint32_t index, uint8_t value) {
    if (!e) return dk_fail(DK_E_INVALID, "fault: engine is NULL");
    dk_chip *c;
    int rc = dk_chip_lock(e, chip, &c);
    if (rc) return rc;
    switch (kind) {
    case DK_FAULT_CORE:
        if (index >= c->n_cores) {
            rc = dk_fail(DK_E_NOT_FOUND, "fault: core %u does not exist (chip %u has %u cores)",
                         index, chip, c->n_cores);
            goto out;
        }
        c->core_failed[index] = value;
        break;
    case DK_FAULT_DOMAIN:
        if (index >= c->n_domains) {
            rc = dk_fail(DK_E_NOT_FOUND, "fault: domain %u does not exist (chip %u has %u domains)",
                         index, chip, c->n_domains);
            goto out;
        }
        for (uint32_t i = 0; i < c->n_cores; i++)
            if (c->core_domain[i] == index) c->core_failed[i] = value;
        break;
    case DK_FAULT_LINK:
        if (index >= c->n_tiles * 4u || dk_link_of(c, (index / 4u) % c->prof.mesh_w,
                                                  (index / 4u) / c->prof.mesh_w, index % 4u) < 0) {
            rc = dk_fail(DK_E_NOT_FOUND, "fault: link %u does not exist on chip %u", index, chip);
            goto out;
        }
        c->link_failed[index] = value;
        break;
    case DK_FAULT_CHIP:
        c->failed = value != 0;
        break;
    case DK_FAULT_FABRIC: /* between two chips: neither chip's mesh changes */
        rc = dk_fabric_fault_locked(e, chip, index, value);
        goto out;
    default:
        rc = dk_fail(DK_E_INVALID, "fault: kind %d is not core (0), domain (1), link (2), chip (3) "
                                   "or fabric (4)", kind);
        goto out;
    }
    /* Loaded networks on this chip pick the change up at their next dk_run. */
    c->fault_epoch++;
out:
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int dk_fault_inject(dk_engine *e, uint32_t chip, int32_t kind, uint32_t index) {
    return fault_set(e, chip, kind, index, 1);
}

int dk_fault_clear(dk_engine *e, uint32_t chip, int32_t kind, uint32_t index) {
    return fault_set(e, chip, kind, index, 0);
}
