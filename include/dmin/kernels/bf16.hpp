// dmin/kernels/bf16.hpp — bf16 operands for the float32 GEMM tiles: round-to-nearest-even conversion, pairs
// of bf16 along k packed in one 32-bit word, and the products C += A·B on such pairs (vdpbf16ps where the
// build has AVX512_BF16, float32 widening in registers elsewhere, a scalar emulation in the scalar build).
#pragma once

#include <cstdint>
#include <cstring>

#include "dmin/kernels/gemm.hpp"

namespace dmin::kernels {

/// float → bf16 bits, rounded to nearest even; a NaN stays a (quiet) NaN, ±inf stays ±inf, and a finite
/// value too large for bf16 rounds to ±inf as IEEE rounding does. Not ISA-dependent: every path, the
/// packing of weights at load and of activations while scoring, rounds with this one function, so the
/// one-candidate and lane paths see the same operand bits.
inline std::uint16_t to_bf16(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // NaN: keep it one
    u += 0x7FFFu + ((u >> 16) & 1u);
    return static_cast<std::uint16_t>(u >> 16);
}

/// bf16 bits → float (exact).
inline float from_bf16(std::uint16_t h) {
    const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

/// x rounded to bf16 and back: the value a bf16 product sees (tests' references use it).
inline float round_bf16(float x) { return from_bf16(to_bf16(x)); }

/// Two values along k as one pair word: the even k in the low half, as vdpbf16ps reads them.
inline std::uint32_t bf16_pair(float even, float odd) {
    return static_cast<std::uint32_t>(to_bf16(even)) | static_cast<std::uint32_t>(to_bf16(odd)) << 16;
}

/// Pairs along k of a K-deep operand (an odd K gets a zero partner for its last element).
constexpr int bf16_pairs(int K) { return (K + 1) / 2; }

DMIN_ISA_NAMESPACE_BEGIN

/// n bf16 values widened to float32 (exact): an embedding row kept in bf16 (LoadOptions::bf16_tables).
inline void widen_bf16(const std::uint16_t* src, int n, float* dst) {
    for (int k = 0; k < n; ++k) dst[k] = from_bf16(src[k]);
}

/// Row-major activations X[rows × K] (leading dimension ldx) as pair rows P[r][kp] = (X[r][2kp], X[r][2kp+1])
/// with leading dimension ldp: the broadcast operand of a row-major product (gemm_bf16).
inline void pack_bf16_rows(const float* X, int rows, int K, int ldx, std::uint32_t* P, int ldp) {
    for (int r = 0; r < rows; ++r) {
        const float* x = X + static_cast<std::ptrdiff_t>(r) * ldx;
        std::uint32_t* p = P + static_cast<std::ptrdiff_t>(r) * ldp;
        for (int k = 0; k + 1 < K; k += 2) p[k / 2] = bf16_pair(x[k], x[k + 1]);
        if (K % 2) p[K / 2] = bf16_pair(x[K - 1], 0.0f);
    }
}

/// Feature-major activations X[K × cols] (leading dimension ldx) as pair rows P[kp][c] = (X[2kp][c],
/// X[2kp+1][c]) with leading dimension ldp: the vector operand of a feature-major product (gemm_tn_bf16).
inline void pack_bf16_units(const float* X, int K, int cols, int ldx, std::uint32_t* P, int ldp) {
    for (int k = 0; k < K; k += 2) {
        const float* x0 = X + static_cast<std::ptrdiff_t>(k) * ldx;
        const float* x1 = k + 1 < K ? x0 + ldx : nullptr;
        std::uint32_t* p = P + static_cast<std::ptrdiff_t>(k / 2) * ldp;
        for (int c = 0; c < cols; ++c) p[c] = bf16_pair(x0[c], x1 ? x1[c] : 0.0f);
    }
}

#if defined(__AVX512BF16__) && !defined(DMIN_SCALAR_KERNELS) && XSIMD_WITH_AVX512F
/// vdpbf16ps computes the products: this build needs AVX512_BF16 on the running CPU (checked at load).
inline constexpr bool kBf16Native = true;

/// One vdpbf16ps per accumulator: 16 lanes × one pair each (32 products).
struct Bf16Ops {
    using elem = std::uint32_t;
    using vb = __m512i;
    static_assert(vfloat::size == 16, "vdpbf16ps works on zmm vectors");
    static __m512i load_b(const std::uint32_t* p) { return _mm512_loadu_si512(p); }
    static __m512i broadcast(std::uint32_t a) { return _mm512_set1_epi32(static_cast<int>(a)); }
    static vfloat madd(__m512i a, __m512i b, vfloat c) {
        // A vector conversion (same size, bits kept): GCC 12 and clang 14 type __m512bh as 32 shorts, GCC 13 on as 32 __bf16.
        return vfloat(vfloat::batch(_mm512_dpbf16_ps(c.v, (__m512bh)a, (__m512bh)b)));
    }
};
#else
/// The same pairs widened to float32 in registers (a bf16 is the high half of a float): no special
/// instruction, so any CPU runs it.
inline constexpr bool kBf16Native = false;

/// A vector of pairs, widened: the even-k values and the odd-k values as two float vectors.
struct vpair {
    vfloat even, odd;
};

struct Bf16Ops {
    using elem = std::uint32_t;
    using vb = vpair;
    static vpair load_b(const std::uint32_t* p) {
#if defined(DMIN_SCALAR_KERNELS)
        return broadcast(*p);
#elif XSIMD_WITH_AVX512F
        // The zero-masking forms: the plain shift passes _mm512_undefined_epi32() (GCC bug 105593, simd.hpp).
        const __m512i x = _mm512_loadu_si512(p);
        return {vfloat(vfloat::batch(_mm512_castsi512_ps(_mm512_maskz_slli_epi32(__mmask16(0xFFFF), x, 16)))),
                vfloat(vfloat::batch(_mm512_castsi512_ps(_mm512_maskz_and_epi32(__mmask16(0xFFFF), x, _mm512_set1_epi32(-65536)))))};
#else
        using ib = xsimd::batch<std::uint32_t, arch>;
        const ib x = ib::load_unaligned(p);
        return {vfloat(xsimd_compat::bitwise_cast<vfloat::batch>(ib(x << 16))),
                vfloat(xsimd_compat::bitwise_cast<vfloat::batch>(ib(x & ib(0xFFFF0000u))))};
#endif
    }
    static vpair broadcast(std::uint32_t a) {
        return {vfloat(from_bf16(static_cast<std::uint16_t>(a & 0xFFFFu))), vfloat(from_bf16(static_cast<std::uint16_t>(a >> 16)))};
    }
    /// The odd pair first, then the even one, each rounded once, as vdpbf16ps orders them (the product
    /// of two bf16 is exact in float32, so fma and a·b + c agree here).
    static vfloat madd(const vpair& a, const vpair& b, vfloat c) { return fma(a.even, b.even, fma(a.odd, b.odd, c)); }
};
#endif

/// C[M×N] = A·B + init on bf16 pairs: A's pair rows [M × Kp] (leading dimension lda), B's pair rows
/// [Kp × N] (leading dimension ldb). Row-major layers: A from pack_bf16_rows, B the weights packed at
/// load; feature-major ones: A the weights (row r = output unit r), B from pack_bf16_units. Init and Epilogue as in
/// gemm. Each C element is one chain over the pairs in k order whatever the tile: a row's result does
/// not depend on M. Preconditions as gemm's (B readable to N rounded up to the vector width).
inline void gemm_bf16(int M, int N, int Kp, const std::uint32_t* A, int lda, const std::uint32_t* B, int ldb, float* C, int ldc,
                      const float* bias = nullptr, Init init = Init::zero, Epilogue ep = Epilogue::none) {
    detail::gemm_strided<detail::BiasInit, Bf16Ops>(M, N, Kp, A, lda, 1, B, ldb, C, ldc, detail::bias_init(bias, init), ep);
}

/// gemm_bf16 from an OuterSum's initial values (the preconditions of gemm_tn's OuterSum form). With the
/// weights as the broadcast operand (At's pair rows: row r = output unit r, packed at load) and B's pair
/// rows [Kp × N] from pack_bf16_units, this is the feature-major product of the lane layout.
inline void gemm_bf16(int M, int N, int Kp, const std::uint32_t* At, int ldat, const std::uint32_t* B, int ldb, float* C, int ldc,
                      const OuterSum& s, Epilogue ep = Epilogue::none) {
    detail::gemm_strided<detail::OuterInit, Bf16Ops>(M, N, Kp, At, ldat, 1, B, ldb, C, ldc, detail::outer_init(s), ep);
}

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::kernels
