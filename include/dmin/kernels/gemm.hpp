// dmin/kernels/gemm.hpp — register-blocked C = A·B (+ bias | + C) for the small row-major shapes of DMIN.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <type_traits>

#include "dmin/kernels/simd.hpp"
#include "dmin/kernels/sizes.hpp"

// Full unrolling of the loops over a register tile's rows and vectors, requested before GCC's
// scalar replacement of aggregates runs: without it GCC 12 keeps the accumulator array c[MR][NV] on
// the stack and copies all of it in and out around the k-loop and the epilogue (benchmarks/RESULTS.md
// §7, "unrolling").
#if defined(__clang__)
#define DMIN_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define DMIN_UNROLL _Pragma("GCC unroll 16")
#else
#define DMIN_UNROLL
#endif

namespace dmin::kernels {

/// How C is initialised before A·B is added: zeros, bias[column] (a Linear on row-major
/// activations), bias[row] (a Linear on feature-major activations, see gemm_tn), or C's contents.
/// Init::row_scale starts from zeros and multiplies row r of the product by bias[r] instead:
/// C = diag(bias)·(A·B) (the attention's P·V on unnormalised weights, scaled by 1/Σe per query, see
/// kernels::softmax_columns with `inv`). (An OuterSum is the sixth way: the gemm_tn overload that
/// takes one.)
enum class Init { zero, bias, row_bias, accumulate, row_scale };
/// What is applied to the finished tile before it is stored.
enum class Epilogue { none, relu };

/// Initial values C[r][j] = u[r·ldu + j mod period] + w[(j div period)·ldw + r]: a vector per row
/// repeated every `period` columns plus one value per row and block of `period` columns. The lane
/// layout's first attention layer starts this way from a0_c + g_v (rows are units, a block is one
/// sequence position of `period` candidates), inside the register tiles instead of through a pass
/// that writes C first (benchmarks/RESULTS.md §7, "periodic start"). Precondition: period is a power
/// of two and a multiple of the vector width (so a vector never straddles two blocks, and a column's
/// block is a shift away: kLanes = 16).
struct OuterSum {
    const float* u = nullptr;
    int ldu = 0;
    const float* w = nullptr;
    int ldw = 0;
    int period = 1;
};

DMIN_ISA_NAMESPACE_BEGIN

namespace detail {

/// Where a tile's initial values come from, moved to each tile by the loops (at_row, at_col) and
/// loaded into the accumulators by gemm_block (load); `finish` runs on the finished tile before the
/// epilogue (Init::row_scale's multiply). Two policies: BiasInit (the Init modes: 16 bytes, passed in
/// two registers like the bias pointer and Init it replaces, so the common products cost what they
/// did) and OuterInit (whole vectors of columns only; passed by reference, SrcArg). Each policy is a
/// whole tree of gemm_block instantiations (a few seconds of g++ -O3 per translation unit, ~20 s of
/// clang under ASan+UBSan): new ways to start or finish a tile are Init modes, not policies.
struct BiasInit {
    const float* bias;  ///< Init::bias: at the tile's first column; Init::row_bias, Init::row_scale: at its first row
    Init init;
    static constexpr bool whole_vectors = false;  ///< true: every column chunk is whole vectors
    template <int MR, int NV>
    void finish(vfloat (&c)[MR][NV]) const {
        if (init != Init::row_scale) return;
        DMIN_UNROLL
        for (int r = 0; r < MR; ++r) {
            const vfloat sr(bias[r]);
            DMIN_UNROLL
            for (int v = 0; v < NV; ++v) c[r][v] = c[r][v] * sr;
        }
    }

    BiasInit at_row(int m) const { return {init == Init::row_bias || init == Init::row_scale ? bias + m : bias, init}; }
    BiasInit at_col(int n) const { return {init == Init::bias ? bias + n : bias, init}; }
    template <int MR, int NV, bool Full>
    void load(vfloat (&c)[MR][NV], const float* C, int ldc, int last) const {
        constexpr int W = vfloat::size;
        switch (init) {
            case Init::bias:
                DMIN_UNROLL
                for (int v = 0; v < NV; ++v) {
                    const vfloat bv = vfloat::load(bias + v * W);
                    DMIN_UNROLL
                    for (int r = 0; r < MR; ++r) c[r][v] = bv;
                }
                break;
            case Init::row_bias:
                DMIN_UNROLL
                for (int r = 0; r < MR; ++r)
                    DMIN_UNROLL
                    for (int v = 0; v < NV; ++v) c[r][v] = vfloat(bias[r]);
                break;
            case Init::accumulate:
                DMIN_UNROLL
                for (int r = 0; r < MR; ++r) {
                    DMIN_UNROLL
                    for (int v = 0; v + 1 < NV; ++v) c[r][v] = vfloat::load(C + r * ldc + v * W);
                    c[r][NV - 1] = Full ? vfloat::load(C + r * ldc + (NV - 1) * W) : vfloat::load_first(C + r * ldc + (NV - 1) * W, last, 0.0f);
                }
                break;
            default:
                DMIN_UNROLL
                for (int r = 0; r < MR; ++r)
                    DMIN_UNROLL
                    for (int v = 0; v < NV; ++v) c[r][v] = vfloat(0.0f);
        }
    }
};

struct OuterInit {
    OuterSum s;     ///< u and w at the tile's first row
    int col = 0;    ///< the tile's first column in the whole product
    int shift = 0;  ///< log2(period)
    static constexpr bool whole_vectors = true;
    template <int MR, int NV>
    void finish(vfloat (&)[MR][NV]) const {}

    OuterInit at_row(int m) const {
        return {{s.u + static_cast<std::ptrdiff_t>(m) * s.ldu, s.ldu, s.w + m, s.ldw, s.period}, col, shift};
    }
    OuterInit at_col(int n) const { return {s, col + n, shift}; }
    template <int MR, int NV, bool Full>
    void load(vfloat (&c)[MR][NV], const float*, int, int) const {
        constexpr int W = vfloat::size;
        if (s.period == W) {  // one block per vector (the lane layout on zmm): u's row vector serves them all
            const float* w0 = s.w + static_cast<std::ptrdiff_t>(col >> shift) * s.ldw;
            DMIN_UNROLL
            for (int r = 0; r < MR; ++r) {
                const vfloat ur = vfloat::load(s.u + r * s.ldu);
                DMIN_UNROLL
                for (int v = 0; v < NV; ++v) c[r][v] = ur + vfloat(w0[v * s.ldw + r]);
            }
            return;
        }
        int q = col >> shift, lane = col & (s.period - 1);  // vector v lies in one block (period is a multiple of W)
        DMIN_UNROLL
        for (int v = 0; v < NV; ++v) {
            const float* wv = s.w + static_cast<std::ptrdiff_t>(q) * s.ldw;
            DMIN_UNROLL
            for (int r = 0; r < MR; ++r) c[r][v] = vfloat::load(s.u + r * s.ldu + lane) + vfloat(wv[r]);
            lane += W;
            if (lane == s.period) lane = 0, ++q;
        }
    }
};

/// The operands of a product: what A and B hold (Ops::elem), how a vector of B's columns is loaded
/// (load_b), how one A element is spread over a vector (broadcast) and how their product is added to an
/// accumulator (madd). F32Ops is the float32 product; kernels/bf16.hpp's Bf16Ops multiplies pairs of
/// bf16 along k. The tiles, the chunking and the Init/OuterSum starts below are shared by both.
struct F32Ops {
    using elem = float;
    using vb = vfloat;
    static vfloat load_b(const float* p) { return vfloat::load(p); }
    static vfloat broadcast(float a) { return vfloat(a); }
    static vfloat madd(vfloat a, vfloat b, vfloat c) { return fma(a, b, c); }
};

/// How a tile's Src travels: BiasInit by value (two registers), OuterInit by reference.
template <class Src>
using SrcArg = std::conditional_t<(sizeof(Src) <= 16), Src, const Src&>;

/// The micro-kernel: an MR × (NV·W) tile of C held in registers while k runs over K.
/// A(r, k) = A[r·ars + k·aks]: row-major A has (ars, aks) = (lda, 1), a transposed one (1, lda).
/// `src` (BiasInit or OuterInit) is already at this tile.
/// Full: all NV·W columns are inside C (no tail), so every loop bound is a constant and the tile
/// never leaves the registers; otherwise the last vector holds ncols − (NV−1)·W columns.
/// Out of line on purpose (DMIN_KERNEL_NOINLINE): inlined into gemm_strided's dispatch, GCC 12
/// sometimes kept the accumulator tile in memory (a load and a store per FMA; 4x slower for 6x1 tiles).
/// KC: K when fixed at compile time (the k loop then has a constant trip count), else Dynamic.
template <int MR, int NV, bool Full, class Src, class Ops = F32Ops, int KC = Dynamic, class E = typename Ops::elem>
DMIN_KERNEL_NOINLINE void gemm_block(int Kr, const E* A, std::ptrdiff_t ars, std::ptrdiff_t aks, const E* B, int ldb, float* C,
                       int ldc, int ncols, SrcArg<Src> src, Epilogue ep) {
    constexpr int W = vfloat::size;
    const int K = dim_or<KC>(Kr);
    const int last = Full ? W : ncols - (NV - 1) * W;  // valid columns of the last vector
    vfloat c[MR][NV];
    src.template load<MR, NV, Full>(c, C, ldc, last);
    const E* b = B;
    const E* ak = A;
    for (int k = 0; k < K; ++k, b += ldb, ak += aks) {
        typename Ops::vb bv[NV];
        DMIN_UNROLL
        for (int v = 0; v < NV; ++v) bv[v] = Ops::load_b(b + v * W);
        DMIN_UNROLL
        for (int r = 0; r < MR; ++r) {
            const auto av = Ops::broadcast(ak[r * ars]);
            DMIN_UNROLL
            for (int v = 0; v < NV; ++v) c[r][v] = Ops::madd(av, bv[v], c[r][v]);
        }
    }
    src.template finish<MR, NV>(c);
    if (ep == Epilogue::relu)
        DMIN_UNROLL
        for (int r = 0; r < MR; ++r)
            DMIN_UNROLL
            for (int v = 0; v < NV; ++v) c[r][v] = relu(c[r][v]);
    DMIN_UNROLL
    for (int r = 0; r < MR; ++r) {
        DMIN_UNROLL
        for (int v = 0; v + 1 < NV; ++v) c[r][v].store(C + r * ldc + v * W);
        if (Full) c[r][NV - 1].store(C + r * ldc + (NV - 1) * W);
        else c[r][NV - 1].store_first(C + r * ldc + (NV - 1) * W, last);  // masked: nothing past the row's end
    }
}

/// Accumulator registers a tile may use: 24 of AVX-512's 32 vector registers, 12 of AVX2's 16 (the
/// rest hold the B vectors and the broadcast A element). Beyond them GCC spills the tile and the
/// tile's rate falls (benchmarks/RESULTS.md §7, "tile registers").
constexpr int kTileAccumulators = vfloat::size >= 16 ? 24 : 12;

/// With 32 vector registers a chunk of five vectors runs as 5 × 5 tiles: 25 accumulators, 5 B
/// vectors and the broadcast A element. Used where the columns are five vectors (+ multiples of four):
/// the attention layers' A1 = 80 outputs (g_l, a single candidate's layer 1) and the lane layout's
/// chunks of 5 positions × 16 lanes, which would otherwise be split 3 + 2 vectors (18 and 12
/// accumulators, a slower pair of tiles: benchmarks/RESULTS.md §7, "5 × 5 tiles").
constexpr bool kFiveByFive = vfloat::size >= 16;

/// Vectors in the next column chunk of a product with MR-row tiles, nvec vectors of columns left.
/// Chunks of up to kTileAccumulators / 6 vectors (4 zmm, 2 ymm), never leaving a lone 1-vector chunk
/// when it can be avoided: fewer than 8 accumulators cannot hide the FMA latency. On zmm a count of
/// 4k + 1 vectors takes one chunk of 5 (5 × 5 tiles, kFiveByFive: 5 → 5, 9 → 5 + 4). One- and
/// two-row products (a single candidate's DNN, the request part of the first DNN layer) take up to 8
/// vectors per chunk (6 for two rows of ymm) for the same reason.
constexpr int chunk_vectors(int MR, int nvec) {
    if (MR <= 2) {
        const int cap = std::min(8, kTileAccumulators / MR);
        return nvec <= cap ? nvec : (nvec < 2 * cap ? (nvec + 1) / 2 : cap);
    }
    constexpr int cap = kTileAccumulators / 6;
    if (kFiveByFive && nvec % cap == 1 && nvec > cap) return 5;  // 5 → 5 (not 3 + 2), 9 → 5 + 4
    return nvec >= cap + 2 ? cap : (nvec == cap + 1 ? (nvec + 1) / 2 : nvec);
}

/// How many 5-row tiles to use for R rows so that 6-row tiles cover the rest exactly (R = 6a + 5b,
/// b ≤ 5: 32 = 2·6 + 4·5, 40 = 5·6 + 2·5, 50 = 5·6 + 4·5); 0 when no such split exists (R < 5 and
/// 7, 8, 9, 13, 14, 19 rows), which leaves a short tail tile. A 5-row tile runs at the 6-row rate;
/// a 2- or 4-row tail does not (benchmarks/RESULTS.md §7, "row tails").
constexpr int five_row_tiles(int R) {
    for (int b = 0; b <= 5 && 5 * b <= R; ++b)
        if ((R - 5 * b) % 6 == 0) return b;
    return 0;
}

/// A product's sizes fixed at compile time (each Dynamic or the value), passed down the tile loops.
template <int MC, int NC, int KC>
struct Sizes {
    static constexpr int M = MC, N = NC, K = KC;
};

/// Whether gemm_strided's row tiling of M rows (fixed) runs an MR-row tile in a chunk of `take` vectors.
/// Mirrors gemm_strided's loops. (One plan walked by both moved parts of the runtime-sized kernel out of
/// line: benchmarks/RESULTS.md §6, "One tiling plan". gemm_tile's assert and tests/test_kernels.cpp's
/// fixed sizes keep the two in step.)
constexpr bool row_tile_used(int M, int take, int MR) {
    int m = 0;
    if (take == 1)
        for (; m + 12 <= M; m += 12)
            if (MR == 12) return true;
    const int fives = take == 5 ? (M - m) / 5 : (take >= 2 ? five_row_tiles(M - m) : 0);
    if (M - m - 5 * fives >= 6 && MR == 6) return true;
    m += (M - m - 5 * fives) / 6 * 6;
    if (fives > 0 && MR == 5) return true;
    return M - m - 5 * fives == MR;  // the short tail (gemm_tail_rows), if any
}

/// Whether gemm_strided<..., Sz> can run an MR × NV tile with all columns inside C (full) or with a
/// column tail. With N fixed the column chunks are known when compiling, with M fixed the row tiles too;
/// the tiles that cannot occur are never instantiated. Each one is a fully unrolled function, and without
/// this a fixed shape compiled every tile for each of its K values (several times the compile time of
/// the runtime-sized model, most of it under the sanitizers).
template <class Sz>
constexpr bool tile_used(int MR, int NV, bool full) {
    if (Sz::N == Dynamic) return true;
    constexpr int W = vfloat::size;
    for (int policy : {1, 2, 6}) {  // gemm_strided's chunk policy: M itself for one or two rows, else 6
        if (Sz::M != Dynamic && policy != (Sz::M <= 2 ? Sz::M : 6)) continue;
        if (Sz::M == Dynamic && policy <= 2 && MR != policy) continue;  // one or two rows: one tile of M rows
        int n = 0;
        for (int nvec = (Sz::N + W - 1) / W; nvec > 0;) {
            const int take = chunk_vectors(policy, nvec), cols = std::min(Sz::N - n, take * W);
            const bool rows_ok = Sz::M != Dynamic ? row_tile_used(Sz::M, take, MR) : (MR != 12 || take == 1);
            if (take == NV && (cols == take * W) == full && rows_ok) return true;
            n += take * W;
            nvec -= take;
        }
    }
    return false;
}

/// gemm_block<MR, NV, Full> for a tile whose columns are all inside C (full) or not, instantiating only
/// the tiles that the product's fixed sizes allow (tile_used). Src::whole_vectors: C's rows are whole
/// vectors, so a tile with a column tail may store whole vectors too (one instantiation for both).
template <int MR, int NV, class Src, class Ops, class Sz, class E>
inline void gemm_tile(bool full, int K, const E* A, std::ptrdiff_t ars, std::ptrdiff_t aks, const E* B, int ldb, float* C, int ldc,
                      int cols, SrcArg<Src> src, Epilogue ep) {
    constexpr bool used_full = tile_used<Sz>(MR, NV, true), used_tail = tile_used<Sz>(MR, NV, false);
    if (Src::whole_vectors || full) {
        if constexpr (used_full || (Src::whole_vectors && used_tail))
            gemm_block<MR, NV, true, Src, Ops, Sz::K>(K, A, ars, aks, B, ldb, C, ldc, cols, src, ep);
        else assert(!"tile_used ruled out a tile that the product runs");
    } else {
        if constexpr (!Src::whole_vectors && used_tail)
            gemm_block<MR, NV, false, Src, Ops, Sz::K>(K, A, ars, aks, B, ldb, C, ldc, cols, src, ep);
        else assert(!"tile_used ruled out a tile that the product runs");
    }
}

/// Columns [n, n + cols) of MR rows of C with a tile of `take` vectors (cols ≤ take·W).
/// `src` is the whole product's, moved here to row m and column n in one step: a Src moved by the caller
/// and copied here went through the stack, and for OuterInit (48 bytes, passed by reference) GCC built
/// it with scalar stores and copied it with a vector load that those stores cannot forward to, a stall
/// per row tile that made the compile-time paper shape slower than the runtime one (RESULTS.md §6).
template <int MR, class Src, class Ops, class Sz, class E = typename Ops::elem>
inline void gemm_chunk(int take, int n, int cols, int K, const E* A, std::ptrdiff_t ars, std::ptrdiff_t aks, const E* B,
                       int ldb, float* C, int ldc, SrcArg<Src> src, int m, Epilogue ep) {
    constexpr int W = vfloat::size;
    const Src at = src.at_row(m).at_col(n);
    const bool full = cols == take * W;
    auto run = [&](auto nv_tag) {
        constexpr int NV = decltype(nv_tag)::value;
        gemm_tile<MR, NV, Src, Ops, Sz>(full, K, A, ars, aks, B + n, ldb, C + n, ldc, cols, at, ep);
    };
    switch (take) {
        case 1: run(std::integral_constant<int, 1>{}); break;
        case 2: run(std::integral_constant<int, 2>{}); break;
        case 3: run(std::integral_constant<int, 3>{}); break;
        case 4: run(std::integral_constant<int, 4>{}); break;
        default:
            if constexpr (MR <= 2) {
                switch (take) {
                    case 5: run(std::integral_constant<int, 5>{}); break;
                    case 6: run(std::integral_constant<int, 6>{}); break;
                    case 7: run(std::integral_constant<int, 7>{}); break;
                    default: run(std::integral_constant<int, 8>{}); break;
                }
            } else if constexpr (MR <= 5 && kFiveByFive) {
                run(std::integral_constant<int, 5>{});  // take == 5 (chunk_vectors), tiles of 5 rows or fewer
            }
            break;
    }
}

/// Rows [m, m + rows) (rows < 6) of one column chunk, with the tile height that fits exactly (A and C
/// already at row m; src as gemm_chunk's).
template <class Src, class Ops, class Sz, class E = typename Ops::elem>
inline void gemm_tail_rows(int rows, int take, int n, int cols, int K, const E* A, std::ptrdiff_t ars, std::ptrdiff_t aks,
                           const E* B, int ldb, float* C, int ldc, SrcArg<Src> src, int m, Epilogue ep) {
    switch (rows) {
        case 1: gemm_chunk<1, Src, Ops, Sz>(take, n, cols, K, A, ars, aks, B, ldb, C, ldc, src, m, ep); break;
        case 2: gemm_chunk<2, Src, Ops, Sz>(take, n, cols, K, A, ars, aks, B, ldb, C, ldc, src, m, ep); break;
        case 3: gemm_chunk<3, Src, Ops, Sz>(take, n, cols, K, A, ars, aks, B, ldb, C, ldc, src, m, ep); break;
        case 4: gemm_chunk<4, Src, Ops, Sz>(take, n, cols, K, A, ars, aks, B, ldb, C, ldc, src, m, ep); break;
        case 5: gemm_chunk<5, Src, Ops, Sz>(take, n, cols, K, A, ars, aks, B, ldb, C, ldc, src, m, ep); break;
        default: break;
    }
}

/// C = A·B + initial values (src) over M rows with A(r, k) = A[r·ars + k·aks] (see gemm and gemm_tn).
/// Column chunks outside, row tiles inside: the K × chunk panel of B is read from memory once and
/// reused by every row tile from L1/L2 (a DNN layer's weights can exceed L2: large shape, 1.3–2 MB).
/// Each C element is still one FMA chain in k order, so a row's result does not depend on M, on the
/// chunking or on the loop order.
/// MC, NC, KC: the sizes fixed at compile time (Dynamic: the argument), so that a fixed shape's products
/// have constant trip counts and their chunking and tails are resolved when the function is compiled.
template <class Src, class Ops = F32Ops, int MC = Dynamic, int NC = Dynamic, int KC = Dynamic, class E = typename Ops::elem>
inline void gemm_strided(int Mr, int Nr, int K, const E* A, std::ptrdiff_t ars, std::ptrdiff_t aks, const E* B, int ldb,
                         float* C, int ldc, Src src, Epilogue ep) {
    constexpr int W = vfloat::size;
    using Sz = Sizes<MC, NC, KC>;
    const int M = dim_or<MC>(Mr), N = dim_or<NC>(Nr);
    // Register tile: 6 rows × 2 ymm (12 accumulators of 16 registers) or 6 rows × 4 zmm (24 of 32),
    // with 5-row tiles where they avoid a short tail (five_row_tiles), 5 rows × 5 zmm for a chunk of five
    // vectors (kFiveByFive); products of one or two rows use wider chunks (chunk_vectors).
    constexpr int MR = 6;
    if (M <= 0) return;  // chunk_vectors divides by the policy, which is M for one or two rows
    const int policy = M <= 2 ? M : MR;
    int n = 0;
    for (int nvec = (N + W - 1) / W; nvec > 0;) {
        const int take = chunk_vectors(policy, nvec), cols = std::min(N - n, take * W);
        int m = 0;
        if (take == 1) {  // one vector of columns: 12-row tiles, since 6 accumulators cannot hide the FMA latency
            const bool full = cols == W;
            for (; m + 2 * MR <= M; m += 2 * MR) {
                const Src at = src.at_row(m).at_col(n);
                float* c = C + static_cast<std::ptrdiff_t>(m) * ldc + n;
                gemm_tile<2 * MR, 1, Src, Ops, Sz>(full, K, A + m * ars, ars, aks, B + n, ldb, c, ldc, cols, at, ep);
            }
        }
        const int fives = take == 5 ? (M - m) / 5 : (take >= 2 ? five_row_tiles(M - m) : 0);  // 5 × 5 tiles: 5 rows only
        for (; m + MR <= M - 5 * fives; m += MR)
            gemm_chunk<MR, Src, Ops, Sz>(take, n, cols, K, A + m * ars, ars, aks, B, ldb, C + static_cast<std::ptrdiff_t>(m) * ldc, ldc,
                           src, m, ep);
        for (int f = 0; f < fives; ++f, m += 5)
            gemm_chunk<5, Src, Ops, Sz>(take, n, cols, K, A + m * ars, ars, aks, B, ldb, C + static_cast<std::ptrdiff_t>(m) * ldc, ldc,
                          src, m, ep);
        gemm_tail_rows<Src, Ops, Sz>(M - m, take, n, cols, K, A + m * ars, ars, aks, B, ldb, C + static_cast<std::ptrdiff_t>(m) * ldc, ldc,
                       src, m, ep);
        n += take * W;
        nvec -= take;
    }
}

/// Init::bias, Init::row_bias or Init::row_scale without a bias is Init::zero.
inline BiasInit bias_init(const float* bias, Init init) {
    return {bias, (init == Init::bias || init == Init::row_bias || init == Init::row_scale) && !bias ? Init::zero : init};
}

/// The OuterInit of a whole product from s (shift = log2(s.period)).
inline OuterInit outer_init(const OuterSum& s) {
    int shift = 0;
    while ((1 << shift) < s.period) ++shift;
    return OuterInit{s, 0, shift};
}

}  // namespace detail

/// C[M×N] = A[M×K]·B[K×N] + init, all row-major with leading dimensions lda, ldb, ldc.
/// Init::bias adds bias[N] to every row, Init::row_bias bias[r] to row r; Init::accumulate adds to
/// the existing C. Epilogue::relu stores max(C, 0) (the fused activation of a Linear followed by ReLU).
/// Preconditions: every row of B, and bias, is readable up to N rounded up to the vector width
/// (dmin's arenas guarantee kReadSlack floats after every buffer); only N columns of C are written.
/// M, N, K fixed at compile time (template arguments other than Dynamic) take the place of the runtime
/// ones, which must then equal them.
template <int MC = Dynamic, int NC = Dynamic, int KC = Dynamic>
inline void gemm(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                 const float* bias = nullptr, Init init = Init::zero, Epilogue ep = Epilogue::none) {
    assert(dim_or<MC>(M) == M && dim_or<NC>(N) == N && dim_or<KC>(K) == K);
    detail::gemm_strided<detail::BiasInit, detail::F32Ops, MC, NC, KC>(M, N, K, A, lda, 1, B, ldb, C, ldc, detail::bias_init(bias, init), ep);
}

/// C[M×N] = At^T·B + init where At is stored [K×M] row-major (leading dimension ldat): the product
/// with a transposed left operand. dmin stores Linear weights as W^T [in, out], so on feature-major
/// activations (rows = features, columns = positions × candidates) a layer is
/// gemm_tn(out, cols, in, wt, out, X, ldx, Y, ldy, b, Init::row_bias).
template <int MC = Dynamic, int NC = Dynamic, int KC = Dynamic>
inline void gemm_tn(int M, int N, int K, const float* At, int ldat, const float* B, int ldb, float* C, int ldc,
                    const float* bias = nullptr, Init init = Init::zero, Epilogue ep = Epilogue::none) {
    assert(dim_or<MC>(M) == M && dim_or<NC>(N) == N && dim_or<KC>(K) == K);
    detail::gemm_strided<detail::BiasInit, detail::F32Ops, MC, NC, KC>(M, N, K, At, 1, ldat, B, ldb, C, ldc, detail::bias_init(bias, init), ep);
}

/// gemm_tn from an OuterSum's initial values: C = s + At^T·B. Each element is still one FMA chain in
/// k order from its initial value, so C has the bits of writing s into C and calling gemm_tn with
/// Init::accumulate. Preconditions: N is a multiple of the vector width (whole vectors of columns),
/// and s.period a power of two and a multiple of the vector width.
inline void gemm_tn(int M, int N, int K, const float* At, int ldat, const float* B, int ldb, float* C, int ldc, const OuterSum& s,
                    Epilogue ep = Epilogue::none) {
    assert(N % vfloat::size == 0 && s.period % vfloat::size == 0 && (s.period & (s.period - 1)) == 0);
    detail::gemm_strided(M, N, K, At, 1, ldat, B, ldb, C, ldc, detail::outer_init(s), ep);
}

/// The obvious triple loop, in double precision accumulation: the oracle for gemm in tests.
inline void gemm_reference(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                           const float* bias = nullptr, Init init = Init::zero, Epilogue ep = Epilogue::none) {
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            double s = init == Init::accumulate ? C[i * ldc + j] : 0.0;
            if (init == Init::bias && bias) s = bias[j];
            if (init == Init::row_bias && bias) s = bias[i];
            for (int k = 0; k < K; ++k) s += static_cast<double>(A[i * lda + k]) * B[k * ldb + j];
            if (init == Init::row_scale && bias) s *= bias[i];
            C[i * ldc + j] = static_cast<float>(ep == Epilogue::relu && s < 0 ? 0.0 : s);
        }
}

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::kernels
