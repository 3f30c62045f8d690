/* Convolutions and pools kept once per kernel: their checks, the synapses they imply, and the
 * targets a source reaches through them, computed when a spike is delivered. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

/* The taps of one axis that input position `i` reaches, in descending tap order (so that the
 * outputs `o` ascend): tap kt reads output (i + pad - kt dil) / stride where that is whole and
 * in [0, n_out). Returns how many. */
static uint32_t axis_taps(uint32_t i, uint32_t kn, uint32_t pad, uint32_t dil, uint32_t stride,
                          uint32_t n_out, uint32_t *tap, uint32_t *o) {
    uint32_t m = 0;
    for (uint32_t kt = kn; kt-- > 0;) {
        const int64_t nv = (int64_t)i + pad - (int64_t)kt * dil;
        if (nv < 0) continue;
        uint64_t ov = (uint64_t)nv;
        if (stride != 1) {
            if (ov % stride) continue;
            ov /= stride;
        }
        if (ov >= n_out) continue;
        tap[m] = kt;
        o[m++] = (uint32_t)ov;
    }
    return m;
}

/* Where local source `s` of a kernel sits, and the sizes its targets are found with. */
typedef struct {
    uint32_t iy, ix;       /* its input position */
    uint32_t cil;          /* its input channel within its group */
    uint32_t co0, co1;     /* its group's output channels */
    uint32_t cig, ohw, kk; /* input channels a group, output plane, taps */
} kernel_source;

static kernel_source source_of(const dk_kernel *k, uint32_t s) {
    const uint32_t hw = k->h_in * k->w_in, ci = s / hw;
    const uint32_t cig = k->c_in / k->groups, cog = k->c_out / k->groups, g = ci / cig;
    return (kernel_source){.iy = s % hw / k->w_in, .ix = s % k->w_in, .cil = ci % cig,
                           .co0 = g * cog, .co1 = (g + 1) * cog, .cig = cig,
                           .ohw = k->h_out * k->w_out, .kk = k->k_h * k->k_w};
}

/* Kernels up to this side take the taps once per source (on the stack); larger ones per tap. */
#define KTAPS 32u

/* The targets (ascending) and weights of kernel source `s` that lie in [lo, hi): for each
 * output channel of its group, the output positions its input position reaches, tap by tap. */
static uint32_t kernel_window(const dk_kernel_rt *kr, uint32_t s, uint32_t lo, uint32_t hi,
                              uint32_t *tgt, float *w) {
    const dk_kernel *k = &kr->k;
    const kernel_source p = source_of(k, s);
    uint32_t ty[KTAPS], oy[KTAPS], tx[KTAPS], ox[KTAPS];
    const uint32_t my = axis_taps(p.iy, k->k_h, k->pad_h, k->dil_h, k->stride_h, k->h_out, ty, oy);
    const uint32_t mx = axis_taps(p.ix, k->k_w, k->pad_w, k->dil_w, k->stride_w, k->w_out, tx, ox);
    uint32_t n = 0;
    for (uint32_t co = p.co0; co < p.co1; co++) {
        const uint32_t base = k->dst_first + co * p.ohw;
        if (base >= hi) break;
        if (base + p.ohw <= lo) continue;
        const float *wk = kr->wts + ((size_t)co * p.cig + p.cil) * p.kk;
        for (uint32_t a = 0; a < my; a++) {
            const float *wr = wk + ty[a] * k->k_w;
            const uint32_t row = base + oy[a] * k->w_out;
            for (uint32_t b = 0; b < mx; b++) {
                const float wv = wr[tx[b]];
                const uint32_t t = row + ox[b];
                if (wv == 0.f || t < lo || t >= hi) continue;
                tgt[n] = t;
                w[n++] = wv;
            }
        }
    }
    return n;
}

/* The generic form, a tap at a time (any kernel size). */
static uint32_t kernel_any(const dk_kernel_rt *kr, uint32_t s, uint32_t lo, uint32_t hi,
                           uint32_t *tgt, float *w) {
    const dk_kernel *k = &kr->k;
    const kernel_source p = source_of(k, s);
    uint32_t n = 0;
    for (uint32_t co = p.co0; co < p.co1; co++) {
        const float *wk = kr->wts + ((size_t)co * p.cig + p.cil) * p.kk;
        const uint32_t base = k->dst_first + co * p.ohw;
        /* ky and kx descending give oy and ox ascending: targets come out sorted */
        for (uint32_t ky = k->k_h; ky-- > 0;) {
            const int64_t ny = (int64_t)p.iy + k->pad_h - (int64_t)ky * k->dil_h;
            if (ny < 0 || ny % k->stride_h) continue;
            const uint64_t oy = (uint64_t)ny / k->stride_h;
            if (oy >= k->h_out) continue;
            for (uint32_t kx = k->k_w; kx-- > 0;) {
                const int64_t nx = (int64_t)p.ix + k->pad_w - (int64_t)kx * k->dil_w;
                if (nx < 0 || nx % k->stride_w) continue;
                const uint64_t ox = (uint64_t)nx / k->stride_w;
                if (ox >= k->w_out) continue;
                const float wv = wk[ky * k->k_w + kx];
                const uint32_t t = base + (uint32_t)oy * k->w_out + (uint32_t)ox;
                if (wv == 0.f || t < lo || t >= hi) continue;
                tgt[n] = t;
                w[n++] = wv;
            }
        }
    }
    return n;
}

uint32_t dk_kernel_window_taps(const dk_kernel_rt *kr, uint32_t s, uint32_t lo, uint32_t hi,
                               uint32_t *tgt, float *w) {
    if (kr->k.k_h <= KTAPS && kr->k.k_w <= KTAPS) return kernel_window(kr, s, lo, hi, tgt, w);
    return kernel_any(kr, s, lo, hi, tgt, w);
}

/* Source `s` lies in the interior: every tap of both axes reaches an output. */
static inline bool interior(const dk_kernel *k, uint32_t iy, uint32_t ix) {
    return iy + k->pad_h >= (k->k_h - 1) * k->dil_h && iy + k->pad_h < k->h_out &&
           ix + k->pad_w >= (k->k_w - 1) * k->dil_w && ix + k->pad_w < k->w_out;
}

uint32_t dk_kernel_window(const dk_kernel_rt *kr, uint32_t s, uint32_t lo, uint32_t hi,
                          uint32_t *restrict tgt, float *restrict w) {
    const dk_kernel *k = &kr->k;
    /* outputs wholly outside the window (another worker's cores): nothing to compute */
    if (kr->dst_end <= lo || k->dst_first >= hi) return 0;
    if (!kr->tap_off) return dk_kernel_window_taps(kr, s, lo, hi, tgt, w);
    const uint32_t hw = k->h_in * k->w_in;
    const uint32_t ci = s / hw, iy = s % hw / k->w_in, ix = s % k->w_in;
    if (!interior(k, iy, ix)) return dk_kernel_window_taps(kr, s, lo, hi, tgt, w);
    const uint32_t cog = k->c_out / k->groups, g = ci / (k->c_in / k->groups);
    const uint32_t base = k->dst_first + g * cog * k->h_out * k->w_out + iy * k->w_out + ix;
    const uint32_t m = kr->tap_n[ci];
    const int32_t *restrict off = kr->tap_off + (size_t)ci * kr->fan;
    const float *restrict tw = kr->tap_w + (size_t)ci * kr->fan;
    if (!m) return 0;
    /* offsets ascend: the whole run in the window is the common case, a plain copy */
    if (base + (uint32_t)off[0] >= lo && base + (uint32_t)off[m - 1] < hi) {
        for (uint32_t j = 0; j < m; j++) {
            tgt[j] = base + (uint32_t)off[j];
            w[j] = tw[j];
        }
        return m;
    }
    uint32_t n = 0;
    for (uint32_t j = 0; j < m; j++) {
        const uint32_t t = base + (uint32_t)off[j];
        if (t < lo || t >= hi) continue;
        tgt[n] = t;
        w[n++] = tw[j];
    }
    return n;
}

/* Stride-1 kernels get, per input channel, the target offsets (from the output under the input
 * position, in the first output channel of its group) and weights of its nonzero taps, in the
 * order kernel_window emits them: an interior source's targets are then one add per synapse
 * instead of the tap arithmetic. Returns the bytes held. */
static int build_taps(dk_kernel_rt *kr, uint64_t *bytes) {
    const dk_kernel *k = &kr->k;
    const uint32_t cig = k->c_in / k->groups, cog = k->c_out / k->groups;
    const uint64_t ohw = (uint64_t)k->h_out * k->w_out;
    const uint32_t kk = k->k_h * k->k_w;
    *bytes = 0;
    /* offsets must fit an int32: the last channel's last row plus the padding */
    if (k->stride_h != 1 || k->stride_w != 1 ||
        (uint64_t)cog * ohw + (uint64_t)k->pad_h * k->w_out + k->pad_w > INT32_MAX ||
        (uint64_t)(k->k_h - 1) * k->dil_h * k->w_out + (uint64_t)(k->k_w - 1) * k->dil_w >
            INT32_MAX)
        return DK_OK;
    const size_t cells = (size_t)k->c_in * kr->fan;
    kr->tap_off = dk_alloc(cells * sizeof *kr->tap_off);
    kr->tap_w = dk_alloc(cells * sizeof *kr->tap_w);
    kr->tap_n = dk_alloc((size_t)k->c_in * sizeof *kr->tap_n);
    if (!kr->tap_off || !kr->tap_w || !kr->tap_n) return DK_E_NOMEM;
    for (uint32_t ci = 0; ci < k->c_in; ci++) {
        const uint32_t g = ci / cig, cil = ci % cig;
        int32_t *off = kr->tap_off + (size_t)ci * kr->fan;
        float *tw = kr->tap_w + (size_t)ci * kr->fan;
        uint32_t n = 0;
        for (uint32_t col = 0; col < cog; col++) {
            const float *wk = kr->wts + ((size_t)(g * cog + col) * cig + cil) * kk;
            for (uint32_t ky = k->k_h; ky-- > 0;)
                for (uint32_t kx = k->k_w; kx-- > 0;) {
                    const float wv = wk[ky * k->k_w + kx];
                    if (wv == 0.f) continue;
                    off[n] = (int32_t)((int64_t)col * (int64_t)ohw +
                                       ((int64_t)k->pad_h - (int64_t)ky * k->dil_h) * k->w_out +
                                       (int64_t)k->pad_w - (int64_t)kx * k->dil_w);
                    tw[n++] = wv;
                }
        }
        kr->tap_n[ci] = n;
    }
    *bytes = cells * (sizeof *kr->tap_off + sizeof *kr->tap_w) +
             (size_t)k->c_in * sizeof *kr->tap_n;
    return DK_OK;
}

uint32_t dk_kernel_targets(const dk_kernel_rt *kr, uint32_t s, uint32_t *tgt, float *w) {
    return dk_kernel_window(kr, s, 0, UINT32_MAX, tgt, w);
}

/* How many output positions along one axis read input tap `kt`: #{o < n_out : 0 <= o stride
 * - pad + kt dil < n_in}. */
static uint64_t axis_hits(uint32_t kt, uint32_t n_in, uint32_t n_out, uint32_t stride,
                          uint32_t pad, uint32_t dil) {
    uint64_t hits = 0;
    for (uint32_t o = 0; o < n_out; o++) {
        int64_t i = (int64_t)o * stride - pad + (int64_t)kt * dil;
        hits += i >= 0 && i < n_in;
    }
    return hits;
}

/* Checks kernel `i` and counts the synapses it implies. */
int dk_kernel_check(const dk_kernel *k, uint32_t i, uint32_t n_src, uint32_t n_neurons,
                        uint64_t *count) {
    if (!k->c_in || !k->h_in || !k->w_in || !k->c_out || !k->h_out || !k->w_out || !k->k_h ||
        !k->k_w || !k->stride_h || !k->stride_w || !k->dil_h || !k->dil_w || !k->groups)
        return dk_fail(DK_E_INVALID, "kernel %u: sizes, strides, dilations and groups must be >= 1",
                       i);
    if (k->c_in % k->groups || k->c_out % k->groups)
        return dk_fail(DK_E_INVALID, "kernel %u: %u groups do not divide %u input and %u output "
                       "channels", i, k->groups, k->c_in, k->c_out);
    if (k->pad_h > 65535 || k->pad_w > 65535 || k->k_h > 65535 || k->k_w > 65535 ||
        k->dil_h > 65535 || k->dil_w > 65535 || k->stride_h > 65535 || k->stride_w > 65535)
        return dk_fail(DK_E_INVALID, "kernel %u: kernel, stride, padding and dilation must be "
                       "at most 65535", i);
    const uint64_t n_in = (uint64_t)k->c_in * k->h_in * k->w_in;
    const uint64_t n_out = (uint64_t)k->c_out * k->h_out * k->w_out;
    if ((uint64_t)k->src_first + n_in > n_src)
        return dk_fail(DK_E_INVALID, "kernel %u: its %llu sources from %u pass the %u neurons and "
                       "inputs", i, (unsigned long long)n_in, k->src_first, n_src);
    if ((uint64_t)k->dst_first + n_out > n_neurons)
        return dk_fail(DK_E_INVALID, "kernel %u: its %llu targets from %u pass the %u neurons", i,
                       (unsigned long long)n_out, k->dst_first, n_neurons);
    if (k->delay < 1 || k->delay > DK_MAX_DELAY)
        return dk_fail(DK_E_INVALID, "kernel %u: delay %u must be 1..%u timesteps", i, k->delay,
                       DK_MAX_DELAY);
    const uint64_t fan = (uint64_t)(k->c_out / k->groups) * k->k_h * k->k_w;
    if (fan > (1u << 24))
        return dk_fail(DK_E_CAPACITY, "kernel %u: a source reaches up to %llu targets; at most "
                       "2^24", i, (unsigned long long)fan);
    if (!k->weight) return dk_fail(DK_E_INVALID, "kernel %u: weight is NULL", i);
    const uint32_t cig = k->c_in / k->groups, kk = k->k_h * k->k_w;
    /* cig kk < 2^49; only when that is small is the product with c_out (< 2^24) formed */
    if ((uint64_t)cig * kk > (1ull << 28) || (uint64_t)cig * kk * k->c_out > (1ull << 28))
        return dk_fail(DK_E_CAPACITY, "kernel %u: more than 2^28 weights", i);
    const uint64_t n_w = (uint64_t)k->c_out * cig * kk;
    uint64_t *hy = dk_alloc(((size_t)k->k_h + k->k_w) * sizeof *hy);
    if (!hy) return DK_E_NOMEM;
    uint64_t *hx = hy + k->k_h;
    for (uint32_t t = 0; t < k->k_h; t++)
        hy[t] = axis_hits(t, k->h_in, k->h_out, k->stride_h, k->pad_h, k->dil_h);
    for (uint32_t t = 0; t < k->k_w; t++)
        hx[t] = axis_hits(t, k->w_in, k->w_out, k->stride_w, k->pad_w, k->dil_w);
    uint64_t total = 0;
    int rc = DK_OK;
    for (uint64_t j = 0; j < n_w; j++) {
        const float wv = k->weight[j];
        if (!isfinite(wv)) {
            rc = dk_fail(DK_E_INVALID, "kernel %u: weight %llu is not finite", i,
                         (unsigned long long)j);
            break;
        }
        if (wv != 0.f) total += hy[j % kk / k->k_w] * hx[j % k->k_w];
    }
    dk_free(hy);
    *count = total;
    return rc;
}

/* Copies the kernels: their weights once per kernel, and their tap tables. Returns the bytes
 * they hold. */
int dk_kernels_copy(dk_network *n, const dk_network_desc *d, uint64_t kernel_syn,
                        uint64_t *bytes) {
    *bytes = 0;
    n->kernel_syn = kernel_syn;
    if (!d->n_kernels) return DK_OK;
    n->kernels = dk_alloc(d->n_kernels * sizeof *n->kernels);
    if (!n->kernels) return DK_E_NOMEM;
    n->n_kernels = d->n_kernels;
    *bytes = d->n_kernels * sizeof *n->kernels;
    for (uint32_t q = 0; q < d->n_kernels; q++) {
        const dk_kernel *k = &d->kernels[q];
        dk_kernel_rt *kr = &n->kernels[q];
        size_t nw = (size_t)k->c_out * (k->c_in / k->groups) * k->k_h * k->k_w;
        kr->wts = dk_alloc(nw * sizeof *kr->wts);
        if (!kr->wts) return DK_E_NOMEM;
        memcpy(kr->wts, k->weight, nw * sizeof *kr->wts);
        kr->k = *k;
        kr->k.weight = kr->wts;
        kr->src_end = k->src_first + k->c_in * k->h_in * k->w_in;
        kr->dst_end = k->dst_first + k->c_out * k->h_out * k->w_out;
        kr->fan = k->c_out / k->groups * k->k_h * k->k_w;
        if (kr->fan > n->kernel_fan) n->kernel_fan = kr->fan;
        uint64_t tap_bytes = 0;
        int rc = build_taps(kr, &tap_bytes);
        if (rc != DK_OK) return rc;
        *bytes += nw * sizeof *kr->wts + tap_bytes;
    }
    return DK_OK;
}

void dk_kernels_free(dk_network *n) {
    if (n->kernels)
        for (uint32_t k = 0; k < n->n_kernels; k++) {
            dk_free(n->kernels[k].wts);
            dk_free(n->kernels[k].tap_off);
            dk_free(n->kernels[k].tap_w);
            dk_free(n->kernels[k].tap_n);
        }
    dk_free(n->kernels);
}
