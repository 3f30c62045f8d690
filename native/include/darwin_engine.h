/*
 * Darwin engine: a simulated Darwin-class neuromorphic chip and the spike router of the runtime.
 *
 * Every function returns DK_OK or a negative DK_E_* code; dk_last_error() gives the message of
 * the last failure on the calling thread. Objects are opaque. The text between the CDEF markers
 * is parsed by cffi (native/build_engine.py), so it holds only plain declarations.
 */
#ifndef DARWIN_ENGINE_H
#define DARWIN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
/* The Python boundary turns every negative code into its own exception (engine/errors.py). */
enum dk_error {
    DK_OK = 0,
    DK_E_INVALID = -1,     /* an argument is malformed or out of range */
    DK_E_NOT_FOUND = -2,   /* no such chip, partition or object */
    DK_E_CONFLICT = -3,    /* overlapping partition, network already loaded, ... */
    DK_E_CAPACITY = -4,    /* exceeds a hardware budget (neurons, synapses, cores) */
    DK_E_OVERFLOW = -5,    /* a queue or buffer is full; the excess is dropped and counted */
    DK_E_NOMEM = -6,       /* allocation failed */
    DK_E_STATE = -7,       /* wrong state for the call (no network loaded, failed hardware) */
    DK_E_INTERNAL = -8
};

enum { DK_HEALTH_OK = 0, DK_HEALTH_FAILED = 1 };
enum dk_direction { DK_DIR_EAST = 0, DK_DIR_WEST = 1, DK_DIR_NORTH = 2, DK_DIR_SOUTH = 3 };
/* What dk_fault_inject and dk_fault_clear act on; the index is a core, a domain, a link (from
 * dk_link_index), for a whole chip ignored, or for a fabric link the chip at its other end (the
 * directed fabric link from `chip` to chip `index`, two neighbours of one fabric). */
enum dk_fault_kind {
    DK_FAULT_CORE = 0, DK_FAULT_DOMAIN = 1, DK_FAULT_LINK = 2, DK_FAULT_CHIP = 3,
    DK_FAULT_FABRIC = 4
};
enum { DK_PART_EXCLUSIVE = 0, DK_PART_SHARED = 1 };
enum { DK_MAX_GROUPS = 64, DK_MAX_WEIGHTS = 256, DK_MAX_DELAY = 255 };
/* Neurons, and input lines, of one network: 2^24, the target field of a synapse word. */
enum { DK_MAX_NEURONS = 16777216 };
/* KEPS, the one unit of event throughput (docs/engine.md, "KEPS"): thousands of synaptic events
 * per second of MODEL time (steps x dt), never of wall time. A chip's capacity, a shared
 * partition's grant and its enforcement all use it; how fast this host simulates is a separate
 * figure (dk_telemetry.host_keps). */
enum { DK_EVENTS_PER_KEPS = 1000 };
/* The router's bandwidth (docs/engine.md, "Router bandwidth"): every directed mesh link carries
 * at most dk_link_capacity() packets (a spike crossing the link) per timestep. A spike whose
 * route would overfill a link waits, whole, in that link's backlog and enters the mesh at a later
 * step (its synaptic delays then count from that step); a link's backlog holds at most
 * DK_LINK_BACKLOG_STEPS steps of its capacity, and a spike that finds it full is dropped and
 * counted at that link. */
enum { DK_LINK_BACKLOG_STEPS = 4 };
/* Where delivered events wait for the step they are due (dk_partition_config.delay_store):
 * SUMS keeps a ring of input sums, one per delay slot and neuron (max delay + 1 slots), and adds
 * each packet into it as it is delivered; QUEUES keeps, per slot and core, a queue of the packets
 * and adds them into one set of sums just before the core updates, so its memory follows the
 * traffic instead of slots x neurons. Both give the same sums, bit for bit. AUTO (the default)
 * takes SUMS when the ring holds at most DK_SLOT_SUMS_MAX_BYTES, else QUEUES. */
enum { DK_DELAYS_AUTO = 0, DK_DELAYS_SUMS = 1, DK_DELAYS_QUEUES = 2, DK_N_DELAY_STORES = 3 };
enum { DK_SLOT_SUMS_MAX_BYTES = 33554432 };
/* Neuron models. IAF_PSC_DELTA is NEST's iaf_psc_delta (the default, zero). The others follow
 * the NIR definitions (see docs/models.md), integrated exactly over a step for an input held
 * constant during the step; they fire when v > v_th (strictly) and have no refractoriness. */
enum {
    DK_MODEL_IAF_PSC_DELTA = 0,
    DK_MODEL_LIF = 1,       /* tau_m dv/dt = (e_l - v) + r x */
    DK_MODEL_IF = 2,        /* dv/dt = r x (t in ms) */
    DK_MODEL_CUBA_LIF = 3,  /* tau_syn di/dt = -i + w_in x; tau_m dv/dt = (e_l - v) + r i */
    DK_MODEL_LI = 4,        /* LIF without firing: a readout */
    DK_MODEL_CUBA_LI = 5,   /* CUBA_LIF without firing: a readout */
    DK_MODEL_THRESHOLD = 6, /* v = x; fires when x > v_th; no state */
    DK_N_MODELS = 7
};
/* v <- v_reset, or v <- v - (v_th - v_reset) */
enum { DK_RESET_VALUE = 0, DK_RESET_SUBTRACT = 1 };
/* How a spike reaches its target cores (PartitionConfig routingMode): one multicast packet along
 * the union of the XY routes, each link crossed once per spike ("multicast-tree"), or one packet
 * per target core along its own XY route, a link crossed once per target behind it ("xy"). */
enum { DK_ROUTE_MULTICAST_TREE = 0, DK_ROUTE_XY = 1, DK_N_ROUTES = 2 };

typedef struct dk_engine dk_engine;

/* What a partition's user configured (the plugin's PartitionConfig and a shared claim's grant);
 * set before a network is loaded. Zero means "not limited". */
typedef struct {
    uint32_t timestep_us;             /* a network must step by exactly this dt (0: any) */
    int32_t routing;                  /* DK_ROUTE_* */
    uint64_t max_neurons;             /* the grant of a share (0: the cores' capacity) */
    uint64_t max_synapses;            /* the grant of a share (0: the cores' share of the chip) */
    int32_t delay_store;              /* DK_DELAYS_* */
} dk_partition_config;

/* What a chip model looks like; filled from the chip profile file. */
typedef struct {
    char model[32];
    uint32_t mesh_w, mesh_h;          /* tiles */
    uint32_t domain_w, domain_h;      /* tiles per asynchronous domain */
    uint32_t controller_x, controller_y; /* the RISC-V tile: not a neuron core */
    uint32_t neurons_per_core;
    uint64_t synapses_per_chip;       /* nominal synapse memory (with compression) */
    uint64_t core_queue_events;       /* per-core event queue capacity per timestep */
    double router_events_per_s;       /* nominal router throughput of the whole chip */
    double energy_pj_per_op;
    double fabric_events_per_s;       /* spikes one direction of a fabric link carries a second */
    uint32_t fabric_grid_w;           /* chips per row of the fabric's 2D grid (0: every pair of
                                         chips of the fabric has a direct link) */
} dk_chip_profile;

/* One physical chip of the inventory. */
typedef struct {
    char serial[64];
    char fabric[64];
    int32_t numa_node;
} dk_chip_desc;

typedef struct {
    uint32_t id;
    char model[32];
    char serial[64];
    char fabric[64];
    int32_t numa_node;
    uint32_t mesh_w, mesh_h;
    uint32_t n_domains, n_cores;
    uint32_t neurons_per_core;
    uint64_t synapses_per_chip;
    double router_events_per_s;
    double energy_pj_per_op;
    uint32_t failed_cores;
    uint32_t failed_links;
    int32_t health;
    uint32_t fabric_links;            /* directed fabric links out of the chip (to neighbours) */
    uint32_t failed_fabric_links;     /* of those, failed (DK_FAULT_FABRIC) */
} dk_chip_info;

typedef struct {
    uint32_t core;                    /* index within the chip, 0..n_cores-1 */
    uint32_t x, y;                    /* tile coordinates */
    uint32_t domain;
    int32_t health;
    int32_t partition;                /* id of the exclusive partition owning it, or -1 */
} dk_core_info;

typedef struct {
    uint32_t domain;
    uint32_t x0, y0, x1, y1;          /* tile rectangle, inclusive */
    uint32_t n_cores;
    uint32_t failed_cores;
    int32_t health;
} dk_domain_info;

/* Leaky integrate-and-fire, current-based, delta synapses; potentials in mV, times in ms. */
typedef struct {
    uint32_t count;                   /* neurons in this group (groups are contiguous) */
    float tau_m, v_th, v_reset, e_l, i_e_mv_per_ms, t_ref, v_init;
    float poisson_rate_hz;            /* drive generated in the engine, per neuron */
    float poisson_weight;             /* mV per drive event */
    /* The fields below are used by the NIR models only (model != DK_MODEL_IAF_PSC_DELTA). */
    int32_t model;                    /* DK_MODEL_* */
    int32_t reset;                    /* DK_RESET_* for the spiking NIR models */
    float tau_syn;                    /* ms: synaptic current of CUBA_LIF and CUBA_LI */
    float r;                          /* input gain (resistance); for IF per ms */
    float w_in;                       /* input weight of the synaptic current (CUBA_*) */
    uint32_t bias_start;              /* the bias applies from this step on (a layer's latency) */
} dk_group;

/* A convolution or pooling projection kept once per kernel, not once per synapse. The input map
 * is c_in x h_in x w_in sources from src_first on (channel-major, row-major: source src_first +
 * (c h_in + y) w_in + x), the output map c_out x h_out x w_out neurons from dst_first on. Output
 * (co, oy, ox) takes input (ci, oy stride_h - pad_h + ky dil_h, ox stride_w - pad_w + kx dil_w)
 * with weight[co][ci % (c_in / groups)][ky][kx] for every ci of co's group (co / (c_out /
 * groups)); positions outside the input map and zero weights give no synapse. Pooling is a
 * grouped convolution (groups = c_in = c_out) with a constant kernel. */
typedef struct {
    uint32_t src_first, dst_first;
    uint32_t c_in, h_in, w_in;
    uint32_t c_out, h_out, w_out;
    uint32_t k_h, k_w;
    uint32_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
    uint32_t groups;
    uint16_t delay;                   /* timesteps, 1 .. DK_MAX_DELAY */
    const float *weight;              /* c_out x (c_in / groups) x k_h x k_w, row-major; mV */
} dk_kernel;

enum { DK_MAX_KERNELS = 256 };

typedef struct {
    uint32_t n_neurons;
    uint32_t n_inputs;                /* virtual sources fed by dk_inject: ids n_neurons.. */
    uint32_t n_groups;
    const dk_group *groups;
    uint64_t n_synapses;
    const uint32_t *src;              /* 0 .. n_neurons + n_inputs - 1 */
    const uint32_t *dst;              /* 0 .. n_neurons - 1 */
    const float *weight;              /* mV */
    const uint16_t *delay;            /* timesteps, 1 .. DK_MAX_DELAY */
    float dt_ms;
    uint64_t seed;
    const float *bias;                /* NULL, or n_neurons constant inputs added every step
                                         (NIR models only; must be 0 on iaf_psc_delta) */
    uint32_t n_kernels;               /* projections kept once per kernel, besides the synapses */
    const dk_kernel *kernels;
} dk_network_desc;

typedef struct {
    uint64_t steps;
    uint64_t spikes;                  /* spikes emitted by the partition's neurons */
    uint64_t input_spikes;            /* spikes injected and delivered */
    uint64_t events;                  /* synaptic events delivered */
    uint64_t drive_events;            /* Poisson drive events generated */
    uint64_t packets;                 /* router packets: (spike, target core) pairs */
    uint64_t dropped_queue;           /* events lost to full core queues */
    uint64_t dropped_fault;           /* events lost to failed cores or links */
    uint64_t dropped_budget;          /* events lost to the partition's KEPS share */
    uint64_t dropped_input;           /* injected spikes refused (input queue full) */
    uint64_t dropped_output;          /* recorded spikes lost (output buffer full) */
    uint64_t queue_peak;              /* most events one core received in one timestep */
    uint64_t wall_ns;                 /* time spent in dk_run */
    uint64_t update_ns;               /* of which: neuron update and drive */
    uint64_t deliver_ns;              /* of which: routing and event delivery */
    double keps;                      /* events per second of model time / 1000 (dk_keps_of) */
    double host_keps;                 /* events per wall second / 1000: this host's speed */
    uint64_t synapse_bytes;           /* memory held by the synapse store (kernels included) */
    uint64_t synapses;                /* synapses held: listed ones plus those kernels imply */
    uint64_t network_bytes;           /* all memory held by the loaded network */
    double quant_error_mv;            /* largest weight quantisation error */
    uint32_t cores_used;
    uint32_t threads;
    int32_t delay_store;              /* the loaded network's: DK_DELAYS_SUMS or DK_DELAYS_QUEUES */
    /* The router's bandwidth (dk_link_capacity); per-link figures come from dk_link_stats. */
    uint64_t routed_spikes;           /* spikes (neurons' and injected) that entered the mesh */
    uint64_t deferred;                /* spike-steps spent waiting in link backlogs */
    uint64_t backlog;                 /* spikes waiting in link backlogs now */
    uint64_t dropped_link_spikes;     /* spikes dropped at a full link backlog */
    uint64_t dropped_link;            /* synaptic events those spikes would have delivered */
    uint64_t link_capacity;           /* packets one mesh link carries per timestep */
    double link_util_peak;            /* the busiest link: packets carried / (capacity x steps) */
} dk_telemetry;

/* Fabric links (docs/engine.md, "Chips on one fabric"): the chips of one fabric (the same
 * non-empty dk_chip_desc.fabric), in the order of their ids, sit on a 2D grid of the lowest-id
 * chip's profile's fabric_grid_w chips a row (chip k of the fabric at column k mod w, row k / w),
 * and a directed link joins each chip to each of its grid neighbours; with fabric_grid_w 0 every
 * ordered pair of them has a direct link. A spike from one chip to another crosses the links of
 * a shortest path: dimension-ordered (along the row, then the column) while that path works,
 * else the first shortest path of a breadth-first search over the working links (neighbours
 * tried east, west, south, north; by id with fabric_grid_w 0); with no working path it is
 * dropped and counted (dropped_fault) at the first broken hop of the dimension-ordered path.
 * Each link carries at most dk_fabric_capacity() spikes per timestep (of the slower end's
 * fabric_events_per_s) and is a FIFO: a spike goes at the step it reaches the link or, that step
 * being full, at the first later step with room; one that would wait there more than
 * DK_LINK_BACKLOG_STEPS steps is dropped and counted at the link. A hop takes no step of its
 * own: a spike arrives at the step its last hop carried it. */
typedef struct {
    uint32_t src_chip, dst_chip;
    float dt_ms;                      /* the timestep of its steps (set by the first send) */
    uint64_t capacity;                /* spikes per timestep (0 until the first send) */
    uint64_t carried;                 /* spikes that crossed it */
    uint64_t dropped;                 /* spikes dropped: they would have waited too long */
    uint64_t deferred;                /* spike-steps spent waiting */
    uint64_t peak;                    /* most spikes it carried in one step */
    uint64_t busy_steps;              /* steps in which it carried a spike */
    uint64_t last_step;               /* the latest step it carried a spike in */
    uint64_t dropped_fault;           /* spikes lost because it (or the chip behind it) failed
                                         and no other path worked */
    uint32_t failed;                  /* 1 while a DK_FAULT_FABRIC fault holds it */
} dk_fabric_stats;

/* Spikes one fabric link carries per timestep of `dt_ms`: rate x dt, rounded down, at least 1,
 * at most 2^31. */
uint64_t dk_fabric_capacity(double fabric_events_per_s, double dt_ms);

/* Packets one directed mesh link carries per timestep of `dt_ms`: the chip's router throughput
 * (events per second of model time) over a step, spread evenly over its directed mesh links
 * (2 ((w - 1) h + w (h - 1))), rounded down, at least 1, at most 2^31. */
uint64_t dk_link_capacity(double router_events_per_s, double dt_ms, uint32_t mesh_w,
                          uint32_t mesh_h);

/* KEPS of `events` delivered over `steps` of `dt_ms`: events / (steps dt) / DK_EVENTS_PER_KEPS;
 * 0 when no model time passed. */
double dk_keps_of(uint64_t events, uint64_t steps, double dt_ms);
/* The events per timestep of `dt_ms` that `keps` stands for: keps DK_EVENTS_PER_KEPS dt. */
double dk_keps_events_per_step(double keps, double dt_ms);

const char *dk_last_error(void);
const char *dk_version(void);
/* The vector width the neuron updates run with on this CPU ("avx512f", "avx2", "x86-64
 * baseline"), chosen at run time: the build itself targets the portable baseline. */
const char *dk_simd_path(void);

int dk_engine_create(dk_engine **out);
void dk_engine_destroy(dk_engine *e);
int dk_chip_add(dk_engine *e, const dk_chip_profile *profile, const dk_chip_desc *desc, uint32_t *chip_id);

/* Discovery. */
int dk_chip_count(dk_engine *e, uint32_t *count);
int dk_chip_info_get(dk_engine *e, uint32_t chip, dk_chip_info *out);
int dk_domain_info_get(dk_engine *e, uint32_t chip, uint32_t domain, dk_domain_info *out);
int dk_core_info_get(dk_engine *e, uint32_t chip, uint32_t core, dk_core_info *out);
/* Link (tile, dir) of the chip mesh; -1 if it does not exist (mesh edge). */
int dk_link_index(dk_engine *e, uint32_t chip, uint32_t x, uint32_t y, uint32_t dir, int32_t *index);
int dk_link_count(dk_engine *e, uint32_t chip, uint32_t *count);
/* Which links of the chip are failed (dk_fault_inject): failed[i] is 1 for a failed link i,
 * else 0, for i < n; n must be dk_link_count. */
int dk_links_failed(dk_engine *e, uint32_t chip, uint8_t *failed, uint32_t n);

/* Partitions: a set of cores of one chip. Exclusive partitions never overlap anything; shared
 * partitions may overlap other shared partitions but never an exclusive one. */
int dk_partition_create(dk_engine *e, uint32_t chip, const uint32_t *cores, uint32_t n_cores,
                        int32_t mode, uint64_t keps_budget, uint32_t *part_id);
int dk_partition_create_domains(dk_engine *e, uint32_t chip, const uint32_t *domains,
                                uint32_t n_domains, int32_t mode, uint64_t keps_budget,
                                uint32_t *part_id);
int dk_partition_destroy(dk_engine *e, uint32_t part);
int dk_partition_count(dk_engine *e, uint32_t *count);
int dk_partition_ids(dk_engine *e, uint32_t *ids, uint32_t cap, uint32_t *count);
int dk_partition_cores(dk_engine *e, uint32_t part, uint32_t *chip, uint32_t *cores,
                       uint32_t cap, uint32_t *count, int32_t *mode, uint64_t *keps_budget);
int dk_partition_set_budget(dk_engine *e, uint32_t part, uint64_t keps_budget);
/* DK_E_CONFLICT while a network is loaded: configure first, then load. */
int dk_partition_configure(dk_engine *e, uint32_t part, const dk_partition_config *cfg);
int dk_partition_config_get(dk_engine *e, uint32_t part, dk_partition_config *out);

/* Networks. */
int dk_network_load(dk_engine *e, uint32_t part, const dk_network_desc *net);
int dk_network_unload(dk_engine *e, uint32_t part);
/* Where neuron i lives: partition core index and chip core id. */
int dk_neuron_core(dk_engine *e, uint32_t part, uint32_t neuron, uint32_t *core);

/* Run: advance n timesteps with `threads` worker threads (1..64, capped by cores used). */
int dk_run(dk_engine *e, uint32_t part, uint64_t steps, uint32_t threads);
int dk_membrane(dk_engine *e, uint32_t part, float *v, uint32_t n);
/* Potentials of neurons first..first+n-1 (the readout of LI / CubaLI layers) and their synaptic
 * currents (0 for models without one); i_syn may be NULL. */
int dk_potentials(dk_engine *e, uint32_t part, uint32_t first, uint32_t n, float *v, float *i_syn);
/* Sets every neuron's membrane potential (mV), e.g. random initial conditions. */
int dk_membrane_set(dk_engine *e, uint32_t part, const float *v, uint32_t n);

/* Spike ports (address-event representation). Inputs: spikes of virtual sources at absolute
 * timesteps >= the current one. Outputs: spikes of recorded (exported) neurons. */
int dk_record(dk_engine *e, uint32_t part, const uint32_t *neurons, uint32_t n, uint32_t capacity);
int dk_inject(dk_engine *e, uint32_t part, const uint64_t *steps, const uint32_t *inputs,
              uint32_t n, uint32_t *accepted);
int dk_read_spikes(dk_engine *e, uint32_t part, uint64_t *steps, uint32_t *neurons,
                   uint32_t cap, uint32_t *count);
int dk_input_capacity(dk_engine *e, uint32_t part, uint32_t capacity);

/* Telemetry. */
int dk_telemetry_get(dk_engine *e, uint32_t part, dk_telemetry *out);
int dk_link_events(dk_engine *e, uint32_t part, uint64_t *events, uint32_t n);
/* Per chip link (n = dk_link_count): packets carried (as dk_link_events), spikes dropped at a
 * full backlog, and spikes waiting in its backlog now. Any pointer may be NULL. */
int dk_link_stats(dk_engine *e, uint32_t part, uint64_t *carried, uint64_t *dropped,
                  uint64_t *backlog, uint32_t n);
/* Per chip link (n = dk_link_count): how many partitions with a network loaded on the chip route
 * over it (this one included; 0 where this one does not). A link's capacity per step is shared
 * among them (docs/engine.md, "Shared links"). */
int dk_link_users(dk_engine *e, uint32_t part, uint32_t *users, uint32_t n);

/* Sends spikes of partition src_part, for timesteps `steps` (>= dst's current step), to inputs
 * `inputs` of partition dst_part on another chip of the same fabric, over the fabric links of
 * their path (dk_fabric_route): each spike is injected into dst at the step the path's last
 * link carries it (at[i], UINT64_MAX when dropped at a link or lost to a fault; `at` may be
 * NULL). *sent counts the spikes that arrived; a full input queue at dst raises DK_E_OVERFLOW
 * after accepting what fits (dst's dropped_input counts the rest). */
int dk_fabric_send(dk_engine *e, uint32_t src_part, uint32_t dst_part, const uint64_t *steps,
                   const uint32_t *inputs, uint32_t n, uint64_t *at, uint32_t *sent);
/* The fabric link from src_chip to dst_chip (DK_E_INVALID unless they share a fabric,
 * DK_E_NOT_FOUND unless they are neighbours on its grid). */
int dk_fabric_link_stats(dk_engine *e, uint32_t src_chip, uint32_t dst_chip,
                         dk_fabric_stats *out);
/* The chips a spike from src_chip to dst_chip crosses now, both ends included, into chips (cap
 * at least dk_chip_count); *n is 0 when no working path joins them (a failed link or chip). */
int dk_fabric_route(dk_engine *e, uint32_t src_chip, uint32_t dst_chip, uint32_t *chips,
                    uint32_t cap, uint32_t *n);
int dk_core_events(dk_engine *e, uint32_t part, uint64_t *events, uint32_t n);
int dk_spike_counts(dk_engine *e, uint32_t part, uint64_t *counts, uint32_t n);

/* Calibration (docs/engine.md, "Calibration"): the synaptic events per second of model time
 * that `cores` of `chip` (NULL and 0: every core) route under uniform traffic (every core's
 * spikes multicast to every core of the set) at the rate where the busiest link, or a core's
 * port into the mesh, reaches its bandwidth (routerEventsPerSecond over the directed links).
 * The traffic and so the rate are those of the healthy set; only deliveries that still arrive
 * count (a failed core, link or domain lowers it; a failed chip gives 0). Deterministic. */
int dk_saturation(dk_engine *e, uint32_t chip, const uint32_t *cores, uint32_t n_cores,
                  double *events_per_s);

/* Faults. kind: a DK_FAULT_* (enum dk_fault_kind). */
int dk_fault_inject(dk_engine *e, uint32_t chip, int32_t kind, uint32_t index);
int dk_fault_clear(dk_engine *e, uint32_t chip, int32_t kind, uint32_t index);
/* CDEF END */

#ifdef __cplusplus
}
#endif
#endif
