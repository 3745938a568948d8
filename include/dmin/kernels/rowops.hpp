// dmin/kernels/rowops.hpp — SIMD row kernels: the common activations in place, and one-output projections.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "dmin/act.hpp"
#include "dmin/kernels/activation.hpp"
#include "dmin/kernels/simd.hpp"
#include "dmin/kernels/sizes.hpp"

namespace dmin::kernels {

/// What a blocked logit gets in softmax_columns: +1 (FuxiCTR's additive float mask on the refiner: it
/// stays in the softmax) or −inf (excluded: its weight is exactly 0, as the extractor's −1e9
/// replacement gives).
enum class Blocked { plus_one, excluded };

DMIN_ISA_NAMESPACE_BEGIN

namespace detail {

/// The vectorised activations (ReLU, PReLU, Dice, Sigmoid) on one vector, with per-lane parameters.
/// The one formula both layouts use, so a unit gets the same bits row-major and feature-major.
inline bool has_vector_form(Act a) { return a == Act::relu || a == Act::prelu || a == Act::dice || a == Act::sigmoid; }
inline vfloat act_vector(Act a, vfloat v, vfloat slope, vfloat scale, vfloat shift) {
    const vfloat zero(0.0f), one(1.0f);
    switch (a) {
        case Act::relu: return max(v, zero);
        case Act::prelu: return max(v, zero) + slope * min(v, zero);
        case Act::sigmoid: return one / (one + exp(-v));
        default: {  // Dice: q = sigmoid(scale·x + shift); y = x·(q + alpha·(1 − q))
            const vfloat q = one / (one + exp(-fma(scale, v, shift)));
            return v * fma(slope, one - q, q);
        }
    }
}

/// Applies f (vector → vector) in place to x[0..n), n < one vector, through a masked load (lanes past
/// n are zero) and store: tails get the vector formula too, so no element's value depends on where it sits.
template <class F>
inline void apply_first(float* x, int n, F f) {
    f(vfloat::load_first(x, n, 0.0f)).store_first(x, n);
}

}  // namespace detail

/// Applies `a` in place to `rows` rows of `width` units (leading dimension ld). ReLU, PReLU, Dice and
/// Sigmoid run vectorised (tails included); every other activation falls back to apply_act.
inline void activate_rows(Act a, const ActParams& p, float* X, int rows, int width, int ld) {
    constexpr int W = vfloat::size;
    if (a == Act::none || a == Act::identity) return;
    if (!detail::has_vector_form(a)) {
        for (int r = 0; r < rows; ++r) apply_act(a, p, X + static_cast<std::ptrdiff_t>(r) * ld, width);
        return;
    }
    // Parameters of units j..j+W (zero-padded past the row's end).
    auto param = [&](const float* q, int j) {
        if (!q) return vfloat(0.0f);
        return j + W <= width ? vfloat::load(q + j) : vfloat::load_first(q + j, width - j, 0.0f);
    };
    for (int r = 0; r < rows; ++r) {
        float* x = X + static_cast<std::ptrdiff_t>(r) * ld;
        for (int j = 0; j < width; j += W) {
            const vfloat slope = param(p.slope, j), scale = param(p.scale, j), shift = param(p.shift, j);
            auto f = [&](vfloat v) { return detail::act_vector(a, v, slope, scale, shift); };
            if (j + W <= width) f(vfloat::load(x + j)).store(x + j);
            else detail::apply_first(x + j, width - j, f);
        }
    }
}

/// Applies `a` in place to feature-major activations: `units` rows (unit j = row j, parameter j) of
/// `cols` values each (leading dimension ld). ReLU, PReLU, Dice and Sigmoid run vectorised, with
/// activate_rows' formula; Softmax normalises each column over the units; every other activation is
/// element-wise without parameters.
inline void activate_units(Act a, const ActParams& p, float* X, int units, int cols, int ld) {
    constexpr int W = vfloat::size;
    if (a == Act::none || a == Act::identity) return;
    if (a == Act::softmax) {
        for (int c = 0; c < cols; ++c) {
            float m = X[c];
            for (int j = 1; j < units; ++j) m = std::max(m, X[static_cast<std::ptrdiff_t>(j) * ld + c]);
            float s = 0;
            for (int j = 0; j < units; ++j) {
                float& x = X[static_cast<std::ptrdiff_t>(j) * ld + c];
                s += (x = std::exp(x - m));
            }
            for (int j = 0; j < units; ++j) X[static_cast<std::ptrdiff_t>(j) * ld + c] /= s;
        }
        return;
    }
    if (!detail::has_vector_form(a)) {
        for (int j = 0; j < units; ++j) apply_act(a, ActParams{}, X + static_cast<std::ptrdiff_t>(j) * ld, cols);  // no parameters
        return;
    }
    for (int j = 0; j < units; ++j) {
        float* x = X + static_cast<std::ptrdiff_t>(j) * ld;
        // Unit j's parameters, broadcast along its row.
        const vfloat slope(p.slope ? p.slope[j] : 0.0f), scale(p.scale ? p.scale[j] : 0.0f), shift(p.shift ? p.shift[j] : 0.0f);
        auto f = [&](vfloat v) { return detail::act_vector(a, v, slope, scale, shift); };
        int c = 0;
        for (; c + W <= cols; c += W) f(vfloat::load(x + c)).store(x + c);
        if (c < cols) detail::apply_first(x + c, cols - c, f);
    }
}

/// Max-subtracted softmax of x[0..n) in place, vectorised to the last element (the ragged tail through
/// masked loads and stores, filled with −inf, whose exp is +0).
inline void softmax(float* x, int n) {
    constexpr int W = vfloat::size;
    constexpr float ninf = -std::numeric_limits<float>::infinity();
    const int whole = n - n % W, rest = n - whole;
    vfloat vmax(ninf);
    for (int j = 0; j < whole; j += W) vmax = max(vmax, vfloat::load(x + j));
    if (rest) vmax = max(vmax, vfloat::load_first(x + whole, rest, ninf));
    const vfloat vm(hmax(vmax));
    vfloat acc(0.0f);
    for (int j = 0; j < whole; j += W) {
        const vfloat e = exp(vfloat::load(x + j) - vm);
        e.store(x + j);
        acc = acc + e;
    }
    if (rest) {
        const vfloat e = exp(vfloat::load_first(x + whole, rest, ninf) - vm);
        e.store_first(x + whole, rest);
        acc = acc + e;
    }
    const vfloat vi(1.0f / hsum(acc));
    for (int j = 0; j < whole; j += W) (vfloat::load(x + j) * vi).store(x + j);
    if (rest) (vfloat::load_first(x + whole, rest, 0.0f) * vi).store_first(x + whole, rest);
}

namespace detail {
/// The mask vectors of softmax_columns as windows into two patterns of W lanes: before[W − d ..] blocks
/// the first d lanes (queries before key k), except[W − j ..] every lane but lane j (a padding key,
/// allowed only as its own query). Built at compile time, one pair per blocked value and vector width.
template <int W>
struct MaskWindows {
    float before[2 * W] = {};
    float except[2 * W + 1] = {};
    constexpr explicit MaskWindows(float blocked) {
        for (int j = 0; j < W; ++j) before[j] = except[j] = except[W + 1 + j] = blocked;
    }
};
template <int W>
inline constexpr MaskWindows<W> kMaskPlusOne{1.0f};
template <int W>
inline constexpr MaskWindows<W> kMaskExcluded{-std::numeric_limits<float>::infinity()};
}  // namespace detail

/// Column-wise masked softmax of the transposed attention logits, in place: X is rows (keys) × cols
/// (queries), leading dimension ld, and every column c becomes softmax_k(X[k][c]·scale + mask(k, c)).
/// Query c allows key k when k == c, or k < c and key k is not padding (pad[k] == 0); a blocked logit
/// gets +1 or −inf (`blocked`). One query per lane: max, sum and normalisation are vertical
/// operations, with no horizontal reduction or row-to-row latency chain. The mask is not stored: each
/// row's mask vector is a window into a static pattern (detail::MaskWindows), so nothing of size L × L
/// is written or read besides X. `lower`: keys after a block of W queries' last query are neither read
/// nor written (with Blocked::excluded their weights are 0; callers stop their sums there). Columns
/// c >= rows (queries past the sequence, computed only to keep whole vectors) may have no allowed key
/// and then hold NaN with Blocked::excluded: callers never read them.
/// With `inv` (cols rounded up to whole vectors of floats) the normalisation is left to the caller:
/// X keeps e = exp(y − max) and inv[c] = 1 / Σ_k e[k][c] (the attention scales P·V's rows by it,
/// gemm_tn with Init::row_scale), which saves the third pass over X.
/// RowsC, ColsC: rows and cols when fixed at compile time (Dynamic: the arguments).
template <int RowsC = Dynamic, int ColsC = Dynamic>
inline void softmax_columns(float* X, int rows_arg, int cols_arg, int ld, float scale, const float* pad, Blocked blocked, bool lower,
                            float* inv = nullptr) {
    constexpr int W = vfloat::size;
    const int rows = dim_or<RowsC>(rows_arg), cols = dim_or<ColsC>(cols_arg);
    const auto& win = blocked == Blocked::plus_one ? detail::kMaskPlusOne<W> : detail::kMaskExcluded<W>;
    const float *before = win.before, *except = win.except;
    const vfloat vs(scale);
    for (int c0 = 0; c0 < cols; c0 += W) {
        const int n = std::min(W, cols - c0);
        const int kend = lower ? std::min(rows, c0 + W) : rows;
        auto ld_x = [&](int k) {
            const float* p = X + static_cast<std::ptrdiff_t>(k) * ld + c0;
            return n == W ? vfloat::load(p) : vfloat::load_first(p, n, 0.0f);
        };
        auto st_x = [&](vfloat v, int k) {
            float* p = X + static_cast<std::ptrdiff_t>(k) * ld + c0;
            if (n == W) v.store(p);
            else v.store_first(p, n);
        };
        vfloat vmax(-std::numeric_limits<float>::infinity());
        for (int k = 0; k < kend; ++k) {
            const int j = k - c0;  // key k's lane in this block, if 0 <= j < W
            const float* m = pad[k] != 0.0f ? (j >= 0 && j < W ? except + W - j : except)
                                             : before + W - std::min(std::max(j, 0), W);
            const vfloat y = fma(ld_x(k), vs, vfloat::load(m));
            st_x(y, k);
            vmax = max(vmax, y);
        }
        vfloat sum(0.0f);
        for (int k = 0; k < kend; ++k) {
            const vfloat e = exp(ld_x(k) - vmax);
            st_x(e, k);
            sum = sum + e;
        }
        const vfloat r = vfloat(1.0f) / sum;
        if (inv) {
            r.store(inv + c0);
            continue;
        }
        for (int k = 0; k < kend; ++k) st_x(ld_x(k) * r, k);
    }
}

namespace detail {
/// transpose_padded (pad) and transpose (!pad): size × size register transposes (vfloat::transpose).
/// RowsC, ColsC: rows and cols when fixed at compile time (Dynamic: the arguments).
template <int RowsC = Dynamic, int ColsC = Dynamic>
inline void transpose_blocks(const float* A, int lda, int rows_arg, int cols_arg, float* B, int ldb, bool pad) {
    constexpr int W = vfloat::size;
    const int rows = dim_or<RowsC>(rows_arg), cols = dim_or<ColsC>(cols_arg);
    vfloat blk[W];
    for (int i0 = 0; i0 < rows; i0 += W) {
        const int ni = std::min(W, rows - i0);
        for (int j0 = 0; j0 < cols; j0 += W) {
            const int nj = std::min(W, cols - j0);
            for (int i = 0; i < W; ++i) {
                const float* a = A + static_cast<std::ptrdiff_t>(i0 + i) * lda + j0;
                blk[i] = i >= ni ? vfloat(0.0f) : (nj == W ? vfloat::load(a) : vfloat::load_first(a, nj, 0.0f));
            }
            vfloat::transpose(blk);
            for (int j = 0; j < nj; ++j) {
                float* b = B + static_cast<std::ptrdiff_t>(j0 + j) * ldb + i0;
                if (pad || ni == W) blk[j].store(b);
                else blk[j].store_first(b, ni);
            }
        }
    }
}
}  // namespace detail

/// B[j][i] = A[i][j] for i < rows, j < cols, and B[j][i] = 0 for rows <= i < rows rounded up to whole
/// vectors: A^T with its rows padded to whole vectors (B's leading dimension ldb must allow that).
/// size × size register transposes (vfloat::transpose), every store a whole vector.
/// RowsC, ColsC: rows and cols when fixed at compile time (Dynamic: the arguments).
template <int RowsC = Dynamic, int ColsC = Dynamic>
inline void transpose_padded(const float* A, int lda, int rows, int cols, float* B, int ldb) {
    detail::transpose_blocks<RowsC, ColsC>(A, lda, rows, cols, B, ldb, true);
}

/// B[j][i] = A[i][j] for i < rows, j < cols; nothing else of B is written (partial rows: masked stores).
inline void transpose(const float* A, int lda, int rows, int cols, float* B, int ldb) {
    detail::transpose_blocks(A, lda, rows, cols, B, ldb, false);
}

/// X[r] = LayerNorm(X[r] + R[r]) for `rows` rows of `width` (eps 1e-5, biased variance, then ·gamma + beta),
/// or only the residual sum when gamma is null: the post-norm residual of FuxiCTR's attention blocks
/// in one kernel. Three passes over a row that stays in L1 (sum, squared deviations, normalisation),
/// the mean and variance by vector sums and one horizontal sum each. A partial last vector is loaded
/// once, masked, and kept in a register until its one masked store (a load after a masked store
/// waits for it: no forwarding). Rows shorter than one vector (D = 8 on zmm) take plain loops: the
/// masked form was twice as slow as Eigen's loop there, the plain loops twice as fast.
/// RowsC, WidthC: rows and width when fixed at compile time (Dynamic: the arguments).
template <int RowsC = Dynamic, int WidthC = Dynamic>
inline void residual_layer_norm_rows(float* X, int ldx, const float* R, int ldr, int rows_arg, int width_arg, const float* gamma,
                                     const float* beta) {
    constexpr int W = vfloat::size;
    const int rows = dim_or<RowsC>(rows_arg), width = dim_or<WidthC>(width_arg);
    const int full = width / W * W, tail = width - full;
    const float inv_w = 1.0f / static_cast<float>(width);
    if (full == 0) {  // rows shorter than a vector: plain loops (the compiler's narrower vectors beat masked zmm here)
        for (int r = 0; r < rows; ++r) {
            float* x = X + static_cast<std::ptrdiff_t>(r) * ldx;
            const float* y = R + static_cast<std::ptrdiff_t>(r) * ldr;
            float sum = 0.0f;
            for (int k = 0; k < width; ++k) {
                x[k] += y[k];
                sum += x[k];
            }
            if (!gamma) continue;
            const float m = sum * inv_w;
            float sq = 0.0f;
            // Explicit FMAs, as in the vector path: left to the compiler, whether a*b + c is contracted
            // depends on how it vectorises the loop, which changes when the width is a compile-time
            // constant, and a fixed-shape model would then differ from the runtime-sized one in the last bit.
            for (int k = 0; k < width; ++k) sq = fma_scalar(x[k] - m, x[k] - m, sq);
            const float rstd = 1.0f / std::sqrt(sq * inv_w + 1e-5f);
            for (int k = 0; k < width; ++k) x[k] = fma_scalar((x[k] - m) * rstd, gamma[k], beta[k]);
        }
        return;
    }
    float ones[W];
    for (int k = 0; k < W; ++k) ones[k] = 1.0f;
    const vfloat keep = vfloat::load_first(ones, tail, 0.0f);  // 1 on the row's lanes of the partial vector
    for (int r = 0; r < rows; ++r) {
        float* x = X + static_cast<std::ptrdiff_t>(r) * ldx;
        const float* y = R + static_cast<std::ptrdiff_t>(r) * ldr;
        vfloat sum(0.0f);
        for (int k = 0; k < full; k += W) {
            const vfloat v = vfloat::load(x + k) + vfloat::load(y + k);
            v.store(x + k);
            sum = sum + v;
        }
        vfloat t(0.0f);  // the partial vector; lanes past the row are 0
        if (tail) {
            t = vfloat::load_first(x + full, tail, 0.0f) + vfloat::load_first(y + full, tail, 0.0f);
            sum = sum + t;
        }
        if (!gamma) {
            if (tail) t.store_first(x + full, tail);
            continue;
        }
        const float m = hsum(sum) * inv_w;
        const vfloat mean(m);
        vfloat sq(0.0f);
        for (int k = 0; k < full; k += W) {
            const vfloat d = vfloat::load(x + k) - mean;
            sq = fma(d, d, sq);
        }
        if (tail) {
            const vfloat d = (t - mean) * keep;
            sq = fma(d, d, sq);
        }
        const vfloat rstd(1.0f / std::sqrt(hsum(sq) * inv_w + 1e-5f));
        for (int k = 0; k < full; k += W)
            fma((vfloat::load(x + k) - mean) * rstd, vfloat::load(gamma + k), vfloat::load(beta + k)).store(x + k);
        if (tail)
            fma((t - mean) * rstd, vfloat::load_first(gamma + full, tail, 0.0f), vfloat::load_first(beta + full, tail, 0.0f))
                .store_first(x + full, tail);
    }
}

/// Softmax over the n positions of e[v·lanes + lane], independently per lane (lanes a multiple of the
/// vector width): the target attention of many candidates at once, one per lane.
inline void softmax_lanes(float* e, int n, int lanes) {
    using V = vfloat;
    for (int w = 0; w < lanes; w += V::size) {
        V m = V::load(e + w);
        for (int v = 1; v < n; ++v) m = max(m, V::load(e + v * lanes + w));
        V sum(0.0f);
        for (int v = 0; v < n; ++v) {
            const V x = exp(V::load(e + v * lanes + w) - m);
            x.store(e + v * lanes + w);
            sum = sum + x;
        }
        const V inv = V(1.0f) / sum;
        for (int v = 0; v < n; ++v) (V::load(e + v * lanes + w) * inv).store(e + v * lanes + w);
    }
}

/// Softmax of x[0..n) in place with softmax_lanes' exact operation order for one lane (the vector exp on
/// every element, the sum accumulated in index order, one reciprocal): one candidate scored alone gets
/// the bits it gets in a lane group.
inline void softmax_ordered(float* x, int n) {
    constexpr int W = vfloat::size;
    float m = x[0];
    for (int j = 1; j < n; ++j) m = x[j] > m ? x[j] : m;
    const vfloat vm(m);
    auto f = [&](vfloat v) { return exp(v - vm); };
    int j = 0;
    for (; j + W <= n; j += W) f(vfloat::load(x + j)).store(x + j);
    if (j < n) detail::apply_first(x + j, n - j, f);
    float s = 0;
    for (j = 0; j < n; ++j) s += x[j];
    const float inv = 1.0f / s;
    for (j = 0; j < n; ++j) x[j] *= inv;
}

namespace detail {
/// C rows of project_rows_ordered as C scalar FMA chains side by side (the same operations, fma_scalar).
/// Out of line: the seven instances inlined into project_rows_ordered made a paper one-candidate request
/// slower, though there they handle 2 of 50 rows per head (benchmarks/RESULTS.md §7, "chains").
template <int C, int NC>
DMIN_KERNEL_NOINLINE void project_rows_chains(const float* X, int ld, int nr, const float* w, float b, float* out) {
    const int n = dim_or<NC>(nr);
    float a[C];
    for (int i = 0; i < C; ++i) a[i] = b;
    for (int k = 0; k < n; ++k)
        for (int i = 0; i < C; ++i) a[i] = fma_scalar(w[k], X[static_cast<std::ptrdiff_t>(i) * ld + k], a[i]);
    for (int i = 0; i < C; ++i) out[i] = a[i];
}
}  // namespace detail

/// out[r] = b + Σ_k X[r][k]·w[k] as one fused multiply-add chain in k order per row: the rounding
/// of gemm_tn with a single output row (the lane layout), for one candidate's rows. The chains of W
/// rows run side by side, one per lane, on W × W blocks of X transposed in registers (vfloat::transpose,
/// faster than scalar copies into a transposed buffer). One chain at a time waited for every FMA's
/// latency. A last block of fewer than W/2 rows runs as that many scalar chains side by side: filling a
/// whole transposed block for a few rows (the small shape's 5 positions) was a large share of a
/// one-candidate request, and 4 chains followed by a lone fifth were slower still (benchmarks/RESULTS.md
/// §7, "transposed blocks"). NC: n when fixed at compile time (a fixed shape's last attention width).
template <int NC = Dynamic>
inline void project_rows_ordered(const float* X, int rows, int nr, int ld, const float* w, float b, float* out) {
    constexpr int W = vfloat::size;
    const int n = dim_or<NC>(nr);
    float res[W];
    for (int r0 = 0; r0 < rows; r0 += W) {
        const int m = std::min(W, rows - r0);
        if (2 * m < W) {  // a few rows (m < W/2 ≤ 7): scalar chains, cheaper than filling a whole transposed block
            const float* x = X + static_cast<std::ptrdiff_t>(r0) * ld;
            switch (m) {
                case 1: detail::project_rows_chains<1, NC>(x, ld, n, w, b, out + r0); break;
                case 2: detail::project_rows_chains<2, NC>(x, ld, n, w, b, out + r0); break;
                case 3: detail::project_rows_chains<3, NC>(x, ld, n, w, b, out + r0); break;
                case 4: detail::project_rows_chains<4, NC>(x, ld, n, w, b, out + r0); break;
                case 5: detail::project_rows_chains<5, NC>(x, ld, n, w, b, out + r0); break;
                case 6: detail::project_rows_chains<6, NC>(x, ld, n, w, b, out + r0); break;
                default: detail::project_rows_chains<7, NC>(x, ld, n, w, b, out + r0); break;
            }
            return;
        }
        vfloat acc(b);
        for (int k0 = 0; k0 < n; k0 += W) {
            const int kc = std::min(W, n - k0);
            vfloat c[W];
            for (int i = 0; i < W; ++i) {  // lanes past the last row repeat it
                const float* x = X + static_cast<std::ptrdiff_t>(r0 + std::min(i, m - 1)) * ld + k0;
                c[i] = kc == W ? vfloat::load(x) : vfloat::load_first(x, kc, 0.0f);
            }
            vfloat::transpose(c);  // c[k]: column k0 + k of the W rows
            for (int k = 0; k < kc; ++k) acc = fma(vfloat(w[k0 + k]), c[k], acc);
        }
        acc.store(res);
        std::copy(res, res + m, out + r0);
    }
}

/// dst[0..n) = src[0..n): whole vectors, then one masked partial vector. For the short rows copied per
/// candidate (embeddings of E floats, interests of D), where std::copy's call to memmove cost more than
/// the copy (benchmarks/RESULTS.md §7, "copies"). Not for a row that is
/// loaded again at once: a load waiting on a masked store is not forwarded (the user phase's sequence
/// embedding rows, read by the next product, keep std::copy).
inline void copy_floats(const float* src, int n, float* dst) {
    constexpr int W = vfloat::size;
    int k = 0;
    for (; k + W <= n; k += W) vfloat::load(src + k).store(dst + k);
    if (k < n) vfloat::load_first(src + k, n - k, 0.0f).store_first(dst + k, n - k);
}

/// out[r] = X[r]·w + b for `rows` rows of width n (the final one-unit Linear of an MLP); NC: n when fixed.
template <int NC = Dynamic>
inline void project_rows(const float* X, int rows, int nr, int ld, const float* w, float b, float* out) {
    constexpr int W = vfloat::size;
    const int n = dim_or<NC>(nr);
    for (int r = 0; r < rows; ++r) {
        const float* x = X + static_cast<std::ptrdiff_t>(r) * ld;
        vfloat acc0(0.0f), acc1(0.0f);
        int k = 0;
        for (; k + 2 * W <= n; k += 2 * W) {
            acc0 = fma(vfloat::load(x + k), vfloat::load(w + k), acc0);
            acc1 = fma(vfloat::load(x + k + W), vfloat::load(w + k + W), acc1);
        }
        for (; k + W <= n; k += W) acc0 = fma(vfloat::load(x + k), vfloat::load(w + k), acc0);
        float s = hsum(acc0 + acc1);
        for (; k < n; ++k) s = fma_scalar(x[k], w[k], s);  // explicit: see residual_layer_norm_rows
        out[r] = s + b;
    }
}

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::kernels
