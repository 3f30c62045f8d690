/* Internal structures of the Darwin engine, shared by its source files. */
#ifndef DARWIN_ENGINE_INTERNAL_H
#define DARWIN_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "darwin_engine.h"

#define DK_ALIGN 64
/* The engine is built for the portable x86-64 baseline; the vectorised neuron updates are also
 * compiled for AVX2 and AVX-512 and the loader picks the widest the CPU has (GCC function
 * multi-versioning through ifunc). dk_simd_path() says which one runs. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(DK_NO_CLONES)
#define DK_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define DK_HAVE_CLONES 1
#else
#define DK_VECTOR_CLONES
#define DK_HAVE_CLONES 0
#endif
/* A helper of a multi-versioned loop: inlined into each clone, so it is compiled for that
 * clone's vector width (a call would run the baseline build of it). */
#define DK_CLONE_INLINE static inline __attribute__((always_inline))
/* Neurons are spread over a multiple of this many cores so that 1, 2 or 4 threads, each owning
 * whole cores, get equal shares of the work. */
#define DK_PLACEMENT_QUANTUM 4u
#define DK_MAX_THREADS 64u
#define DK_POISSON_TABLE 64u

/* ---- errors ---- */
int dk_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void *dk_alloc(size_t bytes);         /* zeroed, aligned; NULL on failure (message set) */
void dk_free(void *p);
/* The one grow-by-doubling helper: a block for at least `need` items of `size` bytes. That is
 * `old` itself while its `*cap` items suffice; else a zeroed block of a doubled capacity (16
 * items when *cap is 0) holding a copy of old's *cap items, with old freed and *cap updated.
 * NULL (old and *cap untouched, DK_E_NOMEM message set) when out of memory or when the
 * capacity would pass `max` items or the bytes overflow size_t. */
void *dk_grow(void *old, size_t *cap, size_t need, size_t size, size_t max);

/* ---- chips ---- */
typedef struct {
    dk_chip_profile prof;
    dk_chip_desc desc;
    uint32_t n_cores, n_domains, domains_x, n_tiles;
    uint16_t *core_x, *core_y, *core_domain;
    int32_t *tile_core;     /* tile (y * mesh_w + x) -> core id, -1 for the controller */
    uint8_t *core_failed;
    uint8_t *link_failed;   /* n_tiles * 4, indexed tile * 4 + dir */
    int32_t *core_owner;    /* exclusive partition id or -1 */
    uint32_t *core_shared;  /* number of shared partitions using the core */
    bool failed;            /* the whole chip */
    uint64_t fault_epoch;   /* bumped on every fault change */
} dk_chip;

/* ---- networks ---- */
/* A segment (a run of one source's synapses with one target core and one delay: one packet)
 * is one 32-bit word: its length in the low `seg_lbits` bits, then a bit set when all its
 * synapses share one weight (that of its first), then the delay (8 bits), then the target core
 * (as an index into the partition's used cores) in the bits left. Its synapses start where
 * the source's previous segments end (src_syn gives each source's first synapse). */
#define DK_SEG_DELAY_BITS 8u
typedef struct {
    uint32_t start, end;    /* neuron range */
    float p22, p20ie, e_l, v_th, v_reset, w_ext;
    uint32_t ref_steps;
    int32_t model, reset;   /* DK_MODEL_*, DK_RESET_* */
    bool spiking;           /* NIR models: fires at all */
    /* NIR models, one step: v <- e_l + a_m (v - e_l) + p_vi i + g_x x; i <- a_s i + g_s x */
    float a_m, g_x, a_s, g_s, p_vi, sub;
    uint64_t bias_start;
    uint32_t n_thresholds;  /* Poisson inverse-CDF thresholds in use */
    uint32_t thresholds[DK_POISSON_TABLE];
    double drive_per_step;
} dk_group_rt;

typedef struct {
    uint64_t *steps;
    uint32_t *ids;
    uint32_t cap, head, count; /* ring buffer */
} dk_spike_ring;

typedef struct {
    dk_kernel k;            /* weight points into wts */
    float *wts;
    uint32_t src_end;       /* src_first + c_in h_in w_in */
    uint32_t dst_end;       /* dst_first + c_out h_out w_out */
    uint32_t fan;           /* most targets one source can have: c_out / groups x k_h x k_w */
    /* stride 1 only (else NULL): per input channel, fan cells of its nonzero taps' target
     * offsets and weights (ascending), tap_n of them used; for the interior sources */
    int32_t *tap_off;
    float *tap_w;
    uint32_t *tap_n;
} dk_kernel_rt;

typedef struct dk_thread_ctx dk_thread_ctx;

/* Spike sources (neuron ids, then n_neurons + input ids) of one step. */
typedef struct {
    uint32_t *ids;
    uint32_t n;
} spike_list;

/* The router's bandwidth (router.c): per-link packet limits, backlogs and drops. */
typedef struct {
    uint32_t n_links;       /* chip links, n_tiles * 4 (tile * 4 + dir) */
    uint32_t cap;           /* packets a link carries per step (dk_link_capacity) */
    uint32_t mult;          /* most packets one spike puts on one link (1 when multicast) */
    /* Shared links (router.c, dk_router_shares): per link, the partitions of the chip routing
     * over it (users, this one included) and how many of them have a lower id (rank); this
     * one's share of a step's capacity (lcap) and the spikes its backlog there holds (bcap). */
    uint8_t *uses;          /* per link: a tree of this network crosses it */
    uint32_t *users, *rank, *lcap, *bcap;
    uint32_t cap_min;       /* the least whole share of any link it uses (floor(cap / users)) */
    bool shared;            /* some link it uses has another user */
    uint64_t share_epoch;   /* the engine's share_epoch the shares were computed at */
    uint32_t *load;         /* packets on each link in the step being routed */
    uint32_t *backlog;      /* spikes waiting at each link */
    uint64_t *dropped;      /* spikes dropped at each link */
    uint32_t *pend_src, *pend_link; /* waiting spikes, oldest first, and where they wait */
    size_t cap_src, cap_link;
    uint32_t pend_n;
    uint32_t pend_seen[2];  /* pend_n after the last step of each parity (read by every thread) */
    spike_list routed;      /* the spikes that enter the mesh in a step that needed routing */
    size_t cap_routed;
    uint32_t *ktgt;         /* scratch: a dropped spike's kernel targets */
    float *kw;
} dk_router;

typedef struct {
    uint32_t n_neurons, n_inputs, n_src, n_groups;
    float dt_ms;
    uint64_t seed;
    /* placement */
    uint32_t cores_used, per_core;
    /* synapse store: per source a run of segments, synapses contiguous in segment order */
    /* Compact form (<= 16 weights, <= 4096 neurons a core): local target (12 bits) | weight
     * index (4 bits) << 12, the segment giving the core. Mid form (<= 256 weights, <= 65536
     * neurons a core): local target (16 bits) and an 8-bit weight index beside it (wid8). Wide
     * form: target (24) | index << 24. */
    int32_t form;           /* DK_FORM_* */
    uint16_t *syn16;
    uint8_t *wid8;
    uint32_t *syn;
    /* first segment of each source (n_src + 1 entries): seg_blk[s / 64] + seg_rel[s], 2 bytes a
     * source, or src_seg[s] when a block of 64 sources spans more than 65535 segments */
    uint32_t *seg_blk;
    uint16_t *seg_rel;
    uint32_t *src_seg;
    uint32_t *seg;          /* n_seg segment words (layout above) */
    uint32_t *src_syn;      /* n_src + 1: each source's first synapse (NULL: none listed) */
    uint32_t seg_lbits;     /* bits of a segment's length: 23 minus those its core needs */
    uint64_t n_syn, n_seg;
    uint32_t n_delays;      /* distinct delays of the listed synapses */
    dk_kernel_rt *kernels;  /* projections kept once per kernel */
    uint32_t n_kernels, kernel_fan; /* kernel_fan: the largest fan of any kernel */
    uint64_t kernel_syn;    /* synapses the kernels imply */
    float wtab[DK_MAX_WEIGHTS];
    uint32_t n_weights;
    double quant_error;
    /* routing: every source has a multicast tree id; trees hold their links */
    uint32_t *src_tree;
    uint32_t n_trees;
    uint32_t *tree_link_ptr;/* n_trees + 1 */
    uint32_t *tree_links;
    uint16_t *src_core;     /* partition core index of each source (inputs: entry tile) */
    /* neuron state */
    float *v;
    float *isyn;            /* synaptic currents (CUBA models), NULL if no group has one */
    float *bias;            /* constant input per neuron, NULL if none */
    uint16_t *refr;
    uint32_t *rng;
    uint8_t *flag;
    dk_group_rt *groups;
    /* Delay queues: per (slot, used core), the packets due in that slot, in delivery order
     * (a segment packet: its first synapse and its segment word; a kernel packet: its event
     * count, a zero word, then (target, weight bits) per event). A core's packets are added
     * into the input sums (`ring`, one per neuron) just before it updates, so the sums are
     * those a ring of n_slots x n_neurons sums would hold, bit for bit, but only one slot of
     * them is ever in cache. Per core event counts per slot beside them. With DK_DELAYS_SUMS
     * (slot_sums) the whole ring of n_slots x n_neurons sums is kept instead and packets are
     * added into it as they are delivered: the same additions in the same order, so the same
     * sums, without writing and re-reading queues or fetching the synapses a second time. */
    uint32_t n_slots;       /* max delay + 1: step s uses slot s mod n_slots */
    bool slot_sums;         /* ring holds n_slots x n_neurons sums, packets added at delivery */
    uint32_t qstride;       /* n_slots, at least 16: one core's queues and counts fill whole
                             * cache lines, so threads owning other cores never share them */
    float *ring;            /* n_neurons input sums of the step being updated (slot_sums: of
                             * every slot, slot after slot) */
    uint32_t **qbuf;        /* cores_used x qstride queues (dk_queue_index) */
    uint32_t *qlen;         /* their words in use */
    size_t *qcap;           /* and their capacities (they grow while runs need them) */
    uint64_t qbytes;        /* the queues' bytes */
    /* every worker's update and delivery time over all runs: what a neuron-step and an event
     * cost on this network on average */
    uint64_t busy_update_ns, busy_deliver_ns;
    double *core_ns;        /* per used core: the busy time of the runs so far (thread_bounds) */
    uint32_t *core_slot_events; /* cores_used x qstride, like the queues */
    /* counters */
    uint64_t *spike_count;  /* per source, since load */
    uint64_t *tree_spikes_folded; /* per source: spikes already folded into link counters */
    uint64_t *link_events;  /* per chip link */
    uint64_t *core_events;  /* per used core */
    uint8_t *reach;         /* cores_used(+1 entry) x cores_used: delivery possible */
    uint8_t *core_dead;     /* per used core */
    uint64_t fault_epoch;   /* of the chip, when reach and core_dead were computed */
    uint64_t step;
    dk_telemetry tel;
    dk_router rt;
    /* ports */
    uint8_t *recorded;      /* per neuron */
    dk_spike_ring out;
    dk_spike_ring in;       /* pending injected spikes, kept sorted by step */
    /* spike list of one step: double-buffered per thread */
    uint64_t bytes;
} dk_network;

typedef struct dk_partition {
    uint32_t id, chip;
    int32_t mode;
    uint64_t keps_budget;
    dk_partition_config cfg;
    uint32_t n_cores;
    uint32_t *cores;        /* chip core ids, ascending */
    pthread_mutex_t lock;   /* serialises run, inject, read, load */
    dk_network *net;
    const uint8_t *link_uses; /* per chip link: its network routes over it (engine lock) */
    uint32_t refs;          /* guarded by the engine lock */
    bool dead;
} dk_partition;

/* A directed fabric link between two neighbouring chips of one fabric (fabric.c): a FIFO of
 * `capacity` spikes a step; `cursor` is the step being filled, holding `load` spikes. Made at its
 * first send or fault; st.dt_ms is 0 until its first send. */
typedef struct {
    dk_fabric_stats st;
    uint64_t cursor, load;
} dk_fabric_link;

struct dk_engine {
    pthread_mutex_t lock;   /* chips, faults, the partition table, fabric links, link users */
    dk_chip *chips;
    uint32_t n_chips, cap_chips;
    dk_partition **parts;
    uint32_t cap_parts;
    dk_fabric_link *fabric; /* the fabric links used so far */
    size_t n_fabric, cap_fabric;
    uint64_t share_epoch;   /* bumped whenever a partition's link_uses changes */
};

enum { DK_FORM_COMPACT = 0, DK_FORM_MID = 1, DK_FORM_WIDE = 2 };

static inline uint32_t dk_seg_len(const dk_network *n, uint32_t w) {
    return w & ((1u << n->seg_lbits) - 1u);
}
static inline bool dk_seg_uniform(const dk_network *n, uint32_t w) {
    return (w >> n->seg_lbits) & 1u;
}
static inline uint32_t dk_seg_delay(const dk_network *n, uint32_t w) {
    return (w >> (n->seg_lbits + 1u)) & ((1u << DK_SEG_DELAY_BITS) - 1u);
}
static inline uint32_t dk_seg_core(const dk_network *n, uint32_t w) {
    return w >> (n->seg_lbits + 1u + DK_SEG_DELAY_BITS);
}

/* The queue (and event count) of used core `core` for ring slot `sl`. */
static inline uint32_t dk_queue_index(const dk_network *n, uint32_t sl, uint32_t core) {
    return core * n->qstride + sl;
}

static inline uint32_t dk_first_seg(const dk_network *n, uint32_t s) {
    return n->seg_rel ? n->seg_blk[s >> 6] + n->seg_rel[s] : n->src_seg[s];
}

/* Locks the engine and finds chip `chip`: DK_OK with the lock held (the caller unlocks), or
 * DK_E_NOT_FOUND with it released. */
int dk_chip_lock(dk_engine *e, uint32_t chip, dk_chip **out);

/* partition lookup with a reference; release with dk_part_put */
int dk_part_get(dk_engine *e, uint32_t id, dk_partition **out);
void dk_part_put(dk_engine *e, dk_partition *p);

/* topology helpers */
int32_t dk_link_of(const dk_chip *c, uint32_t x, uint32_t y, uint32_t dir);
/* Walks the XY route between two tiles, calling visit(link) for each link. */
typedef void (*dk_link_visitor)(void *ctx, int32_t link);
void dk_route_xy(const dk_chip *c, uint32_t x0, uint32_t y0, uint32_t x1, uint32_t y1,
                 dk_link_visitor visit, void *ctx);

/* Targets of local source `s` (0 .. c_in h_in w_in - 1) of a kernel, ascending, with their
 * weights (zero weights skipped); returns how many (at most k->fan). */
uint32_t dk_kernel_targets(const dk_kernel_rt *k, uint32_t s, uint32_t *tgt, float *w);
/* Those of its targets in [lo, hi) (a worker's neurons), in the same order. */
uint32_t dk_kernel_window(const dk_kernel_rt *k, uint32_t s, uint32_t lo, uint32_t hi,
                          uint32_t *restrict tgt, float *restrict w);
/* The same, always from the tap arithmetic (what the tap tables must reproduce). */
uint32_t dk_kernel_window_taps(const dk_kernel_rt *k, uint32_t s, uint32_t lo, uint32_t hi,
                               uint32_t *tgt, float *w);
/* Checks kernel `i` of a description and counts the synapses it implies. */
int dk_kernel_check(const dk_kernel *k, uint32_t i, uint32_t n_src, uint32_t n_neurons,
                    uint64_t *count);
/* The network's copy of the description's kernels; *bytes what they hold. */
int dk_kernels_copy(dk_network *n, const dk_network_desc *d, uint64_t kernel_syn, uint64_t *bytes);
void dk_kernels_free(dk_network *n);

/* router bandwidth (router.c) */
int dk_router_init(dk_network *n, const dk_chip *c);
void dk_router_free(dk_router *r);
/* Whether step `step`, whose new spikes number `total`, must be routed one spike at a time:
 * spikes wait from the step before, or they could overfill a link. Every worker asks, after the
 * step's barrier, and all get the same answer. */
bool dk_router_needed(const dk_network *n, uint64_t step, uint64_t total);
/* Thread 0: routes the waiting spikes, then the new ones of `lists` in order, into n->rt.routed
 * (what the workers then deliver), keeping or dropping what does not fit. */
void dk_router_step(dk_network *n, uint64_t step, const spike_list *const *lists,
                    uint32_t n_lists);
/* Thread 0, on a step routed in bulk: the step's `total` spikes all entered the mesh. */
void dk_router_bulk(dk_network *n, uint64_t step, uint64_t total);
/* The busiest link's packets carried over capacity x steps (links folded first). */
double dk_router_peak(dk_network *n);

/* Recomputes p's shares of the links it routes over from the partitions now using them;
 * engine lock held, partition lock held. */
void dk_router_shares(dk_engine *e, dk_partition *p);

/* spike ports: DK_OK when every spike names an input of n at a step not yet past */
int dk_inject_check(const dk_network *n, const uint64_t *steps, const uint32_t *inputs,
                    uint32_t count);
/* spike ports: queues `count` spikes into n's inputs (partition lock held); see dk_inject */
int dk_inject_locked(dk_network *n, const uint64_t *steps, const uint32_t *inputs, uint32_t count,
                     uint32_t *accepted);

/* fabric links (fabric.c, fabric_topo.c); engine lock held */
/* The link a -> b; made (unclocked, healthy) when absent and `create`; NULL if absent or out of
 * memory. */
dk_fabric_link *dk_fabric_find(dk_engine *e, uint32_t a, uint32_t b, bool create);
/* DK_OK when chips a and b are two chips of one fabric (error message set otherwise). */
int dk_fabric_pair(const dk_engine *e, uint32_t a, uint32_t b);
/* DK_OK when chips a and b (of one fabric) are neighbours on its grid, else DK_E_NOT_FOUND. */
int dk_fabric_adjacent(const dk_engine *e, uint32_t a, uint32_t b);
/* The path a spike from chip a to chip b (one fabric) takes now: its chips into path (room for
 * n_chips), *n of them, 0 when none works; when the dimension-ordered path is broken, its first
 * broken hop in *blocked_a -> *blocked_b (set only then). */
int dk_fabric_path(dk_engine *e, uint32_t a, uint32_t b, uint32_t *path, uint32_t *n,
                   uint32_t *blocked_a, uint32_t *blocked_b);
/* Fails (value 1) or repairs (0) the fabric link chip -> other. */
int dk_fabric_fault_locked(dk_engine *e, uint32_t chip, uint32_t other, uint8_t value);
/* The fabric links out of chip to its grid neighbours, and how many of them have failed. */
void dk_fabric_chip_links(dk_engine *e, uint32_t chip, uint32_t *links, uint32_t *failed);

/* network internals */
void dk_network_free(dk_network *n);
void dk_network_fold_links(dk_network *n);
/* Recomputes reachability from the chip's faults; engine lock held, partition lock held. */
void dk_network_refresh_faults(const dk_chip *c, dk_partition *p);

#endif
