/* Partitions: sets of cores of one chip, exclusive or shared by event throughput. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int dk_part_get(dk_engine *e, uint32_t id, dk_partition **out) {
    if (!e || !out) return dk_fail(DK_E_INVALID, "partition lookup: NULL argument");
    pthread_mutex_lock(&e->lock);
    dk_partition *p = id < e->cap_parts ? e->parts[id] : NULL;
    if (!p) {
        pthread_mutex_unlock(&e->lock);
        return dk_fail(DK_E_NOT_FOUND, "partition %u does not exist", id);
    }
    p->refs++;
    pthread_mutex_unlock(&e->lock);
    *out = p;
    return DK_OK;
}

static void part_free(dk_partition *p) {
    dk_network_free(p->net);
    pthread_mutex_destroy(&p->lock);
    dk_free(p->cores);
    dk_free(p);
}

void dk_part_put(dk_engine *e, dk_partition *p) {
    pthread_mutex_lock(&e->lock);
    bool gone = --p->refs == 0 && p->dead;
    pthread_mutex_unlock(&e->lock);
    if (gone) part_free(p);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Claims cores of chip `c` (number `chip`) for a new partition; engine lock held. */
static int part_create_locked(dk_engine *e, dk_chip *c, uint32_t chip, uint32_t *cores,
                              uint32_t n, int32_t mode, uint64_t keps_budget, uint32_t *part_id) {
    if (mode != DK_PART_EXCLUSIVE && mode != DK_PART_SHARED)
        return dk_fail(DK_E_INVALID, "partition mode %d is neither exclusive (0) nor shared (1)", mode);
    if (n == 0) return dk_fail(DK_E_INVALID, "a partition needs at least one core");
    qsort(cores, n, sizeof *cores, cmp_u32);
    for (uint32_t i = 0; i < n; i++) {
        if (cores[i] >= c->n_cores)
            return dk_fail(DK_E_INVALID, "core %u does not exist (chip %u has %u cores)", cores[i],
                           chip, c->n_cores);
        if (i && cores[i] == cores[i - 1])
            return dk_fail(DK_E_INVALID, "core %u is listed twice", cores[i]);
        if (c->core_owner[cores[i]] >= 0)
            return dk_fail(DK_E_CONFLICT, "core %u of chip %u already belongs to partition %d",
                           cores[i], chip, c->core_owner[cores[i]]);
        if (mode == DK_PART_EXCLUSIVE && c->core_shared[cores[i]])
            return dk_fail(DK_E_CONFLICT, "core %u of chip %u is used by %u shared partition(s)",
                           cores[i], chip, c->core_shared[cores[i]]);
    }
    uint32_t id = 0;
    while (id < e->cap_parts && e->parts[id]) id++;
    size_t cap = e->cap_parts; /* ids are int32 (core_owner) */
    dk_partition **parts = dk_grow(e->parts, &cap, (size_t)id + 1, sizeof *parts, INT32_MAX);
    if (!parts) return DK_E_NOMEM;
    e->parts = parts;
    e->cap_parts = (uint32_t)cap;
    dk_partition *p = dk_alloc(sizeof *p);
    if (!p) return DK_E_NOMEM;
    p->cores = dk_alloc(n * sizeof *p->cores);
    if (!p->cores) {
        dk_free(p);
        return DK_E_NOMEM;
    }
    memcpy(p->cores, cores, n * sizeof *cores);
    p->id = id;
    p->chip = chip;
    p->mode = mode;
    p->keps_budget = keps_budget;
    p->n_cores = n;
    pthread_mutex_init(&p->lock, NULL);
    for (uint32_t i = 0; i < n; i++) {
        if (mode == DK_PART_EXCLUSIVE) c->core_owner[cores[i]] = (int32_t)id;
        else c->core_shared[cores[i]]++;
    }
    e->parts[id] = p;
    *part_id = id;
    return DK_OK;
}

int dk_partition_create(dk_engine *e, uint32_t chip, const uint32_t *cores, uint32_t n_cores,
                        int32_t mode, uint64_t keps_budget, uint32_t *part_id) {
    if (!e || !part_id || (n_cores && !cores))
        return dk_fail(DK_E_INVALID, "dk_partition_create: NULL argument");
    if (n_cores > 1u << 20) return dk_fail(DK_E_INVALID, "%u cores is not a plausible partition", n_cores);
    uint32_t *copy = dk_alloc((size_t)n_cores * sizeof *copy);
    if (!copy) return DK_E_NOMEM;
    if (n_cores) memcpy(copy, cores, n_cores * sizeof *cores);
    dk_chip *c;
    int rc = dk_chip_lock(e, chip, &c);
    if (rc == DK_OK) {
        rc = part_create_locked(e, c, chip, copy, n_cores, mode, keps_budget, part_id);
        pthread_mutex_unlock(&e->lock);
    }
    dk_free(copy);
    return rc;
}

int dk_partition_create_domains(dk_engine *e, uint32_t chip, const uint32_t *domains,
                                uint32_t n_domains, int32_t mode, uint64_t keps_budget,
                                uint32_t *part_id) {
    if (!e || !part_id || (n_domains && !domains))
        return dk_fail(DK_E_INVALID, "dk_partition_create_domains: NULL argument");
    dk_chip *c;
    int rc = dk_chip_lock(e, chip, &c);
    if (rc) return rc;
    if (n_domains == 0) {
        rc = dk_fail(DK_E_INVALID, "a partition needs at least one domain");
        goto out;
    }
    uint8_t *want = dk_alloc(c->n_domains);
    uint32_t *cores = dk_alloc(c->n_cores * sizeof *cores);
    if (!want || !cores) {
        dk_free(want);
        dk_free(cores);
        rc = DK_E_NOMEM;
        goto out;
    }
    rc = DK_OK;
    for (uint32_t i = 0; i < n_domains && rc == DK_OK; i++) {
        if (domains[i] >= c->n_domains)
            rc = dk_fail(DK_E_INVALID, "domain %u does not exist (chip %u has %u domains)",
                         domains[i], chip, c->n_domains);
        else if (want[domains[i]])
            rc = dk_fail(DK_E_INVALID, "domain %u is listed twice", domains[i]);
        else
            want[domains[i]] = 1;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_cores && rc == DK_OK; i++)
        if (want[c->core_domain[i]]) cores[n++] = i;
    if (rc == DK_OK) rc = part_create_locked(e, c, chip, cores, n, mode, keps_budget, part_id);
    dk_free(want);
    dk_free(cores);
out:
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int dk_partition_destroy(dk_engine *e, uint32_t id) {
    if (!e) return dk_fail(DK_E_INVALID, "dk_partition_destroy: engine is NULL");
    pthread_mutex_lock(&e->lock);
    dk_partition *p = id < e->cap_parts ? e->parts[id] : NULL;
    if (!p) {
        pthread_mutex_unlock(&e->lock);
        return dk_fail(DK_E_NOT_FOUND, "partition %u does not exist", id);
    }
    dk_chip *c = &e->chips[p->chip];
    for (uint32_t i = 0; i < p->n_cores; i++) {
        if (p->mode == DK_PART_EXCLUSIVE) c->core_owner[p->cores[i]] = -1;
        else c->core_shared[p->cores[i]]--;
    }
    e->parts[id] = NULL;
    p->link_uses = NULL; /* its links are no longer shared with it */
    e->share_epoch++;
    p->dead = true;
    bool gone = p->refs == 0;
    pthread_mutex_unlock(&e->lock);
    /* A run in progress keeps its reference; the last user frees the partition. */
    if (gone) part_free(p);
    return DK_OK;
}

int dk_partition_count(dk_engine *e, uint32_t *count) {
    if (!e || !count) return dk_fail(DK_E_INVALID, "dk_partition_count: NULL argument");
    pthread_mutex_lock(&e->lock);
    uint32_t n = 0;
    for (uint32_t i = 0; i < e->cap_parts; i++) n += e->parts[i] != NULL;
    *count = n;
    pthread_mutex_unlock(&e->lock);
    return DK_OK;
}

int dk_partition_ids(dk_engine *e, uint32_t *ids, uint32_t cap, uint32_t *count) {
    if (!e || !count || (cap && !ids)) return dk_fail(DK_E_INVALID, "dk_partition_ids: NULL argument");
    pthread_mutex_lock(&e->lock);
    uint32_t n = 0;
    for (uint32_t i = 0; i < e->cap_parts; i++) {
        if (!e->parts[i]) continue;
        if (n < cap) ids[n] = i;
        n++;
    }
    pthread_mutex_unlock(&e->lock);
    *count = n;
    if (n > cap) return dk_fail(DK_E_OVERFLOW, "%u partitions do not fit a buffer of %u", n, cap);
    return DK_OK;
}

int dk_partition_cores(dk_engine *e, uint32_t id, uint32_t *chip, uint32_t *cores, uint32_t cap,
                       uint32_t *count, int32_t *mode, uint64_t *keps_budget) {
    if (!e || !chip || !count || !mode || !keps_budget || (cap && !cores))
        return dk_fail(DK_E_INVALID, "dk_partition_cores: NULL argument");
    pthread_mutex_lock(&e->lock);
    dk_partition *p = id < e->cap_parts ? e->parts[id] : NULL;
    if (!p) {
        pthread_mutex_unlock(&e->lock);
        return dk_fail(DK_E_NOT_FOUND, "partition %u does not exist", id);
    }
    *chip = p->chip;
    *count = p->n_cores;
    *mode = p->mode;
    *keps_budget = p->keps_budget;
    uint32_t n = p->n_cores;
    if (n <= cap) memcpy(cores, p->cores, n * sizeof *cores);
    pthread_mutex_unlock(&e->lock);
    if (n > cap) return dk_fail(DK_E_OVERFLOW, "partition %u has %u cores; buffer holds %u", id, n, cap);
    return DK_OK;
}

int dk_partition_set_budget(dk_engine *e, uint32_t id, uint64_t keps_budget) {
    dk_partition *p;
    int rc = dk_part_get(e, id, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    p->keps_budget = keps_budget;
    pthread_mutex_unlock(&p->lock);
    dk_part_put(e, p);
    return DK_OK;
}

int dk_partition_configure(dk_engine *e, uint32_t id, const dk_partition_config *cfg) {
    if (!cfg) return dk_fail(DK_E_INVALID, "dk_partition_configure: NULL argument");
    if (cfg->routing < 0 || cfg->routing >= DK_N_ROUTES)
        return dk_fail(DK_E_INVALID, "routing %d is neither multicast-tree (0) nor xy (1)",
                       cfg->routing);
    if (cfg->delay_store < 0 || cfg->delay_store >= DK_N_DELAY_STORES)
        return dk_fail(DK_E_INVALID, "delay store %d is none of auto (0), sums (1), queues (2)",
                       cfg->delay_store);
    if (cfg->timestep_us > 10000)
        return dk_fail(DK_E_INVALID, "timestep %u us exceeds the engine's 10000 us",
                       cfg->timestep_us);
    dk_partition *p;
    int rc = dk_part_get(e, id, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    if (p->net)
        rc = dk_fail(DK_E_CONFLICT, "partition %u runs a network; configure it before loading", id);
    else
        p->cfg = *cfg;
    pthread_mutex_unlock(&p->lock);
    dk_part_put(e, p);
    return rc;
}

int dk_partition_config_get(dk_engine *e, uint32_t id, dk_partition_config *out) {
    if (!out) return dk_fail(DK_E_INVALID, "dk_partition_config_get: NULL argument");
    dk_partition *p;
    int rc = dk_part_get(e, id, &p);
    if (rc) return rc;
    pthread_mutex_lock(&p->lock);
    *out = p->cfg;
    pthread_mutex_unlock(&p->lock);
    dk_part_put(e, p);
    return DK_OK;
}
