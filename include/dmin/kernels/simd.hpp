// dmin/kernels/simd.hpp — the SIMD vector type the kernels use: xsimd's best arch, or a 1-lane scalar fallback.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "dmin/kernels/isa.hpp"
#if !defined(DMIN_SCALAR_KERNELS)
#include "dmin/kernels/xsimd_compat.hpp"
#endif

/// A kernel kept out of line (still `inline` for the one-definition rule): see its uses.
#if defined(__GNUC__) || defined(__clang__)
#define DMIN_KERNEL_NOINLINE __attribute__((noinline)) inline
#else
#define DMIN_KERNEL_NOINLINE inline
#endif

namespace dmin::kernels {

/// Floats a buffer must be readable beyond its last row so that kernels may load whole vectors.
inline constexpr int kReadSlack = 16;

DMIN_ISA_NAMESPACE_BEGIN

#if defined(DMIN_SCALAR_KERNELS)
/// Scalar stand-in with the few operations the kernels use; selected with -DDMIN_SCALAR_KERNELS.
struct vfloat {
    static constexpr int size = 1;
    float v = 0;
    vfloat() = default;
    explicit vfloat(float x) : v(x) {}
    static vfloat load(const float* p) { return vfloat(*p); }
    void store(float* p) const { *p = v; }
    // Always fused (like the SIMD kernels on FMA hardware): the same bits whatever the compiler contracts.
    friend vfloat fma(vfloat a, vfloat b, vfloat c) { return vfloat(std::fma(a.v, b.v, c.v)); }
    friend vfloat operator+(vfloat a, vfloat b) { return vfloat(a.v + b.v); }
    friend vfloat operator*(vfloat a, vfloat b) { return vfloat(a.v * b.v); }
    friend vfloat max(vfloat a, vfloat b) { return vfloat(a.v > b.v ? a.v : b.v); }
    friend vfloat min(vfloat a, vfloat b) { return vfloat(a.v < b.v ? a.v : b.v); }
    friend vfloat operator-(vfloat a, vfloat b) { return vfloat(a.v - b.v); }
    friend vfloat operator-(vfloat a) { return vfloat(-a.v); }
    friend vfloat operator/(vfloat a, vfloat b) { return vfloat(a.v / b.v); }
    friend vfloat exp(vfloat a) { return vfloat(std::exp(a.v)); }
    friend vfloat relu(vfloat a) { return vfloat(a.v > 0 ? a.v : 0.0f); }
    friend float hsum(vfloat a) { return a.v; }
    friend float hmax(vfloat a) { return a.v; }
    static vfloat load_first(const float*, int, float fill) { return vfloat(fill); }  // n < size = 1: n = 0
    void store_first(float*, int) const {}
    static void transpose(vfloat*) {}  // a 1 × 1 block
};
inline std::string simd_arch_name() { return "scalar"; }
#else
/// One instruction set for every kernel: xsimd's best (AVX-512 where enabled; on Zen 5 its FMAs are
/// full width, twice the ymm peak). On AVX-512 the operations whose GCC 12 intrinsics pass
/// _mm512_undefined_ps() as the merge source — max, min, exp's rounding and scaling, the horizontal
/// sum — are written here with the zero-masking forms, because the plain ones raise spurious
/// -Wmaybe-uninitialized warnings (GCC bug 105593) in every program that includes dmin.
using arch = xsimd::default_arch;

/// The constants of dmin's vector exp (avx512::exp and exp_by_halves: one algorithm, the same bits):
/// clamp range, log2(e), ln2 in two parts, and the degree-6 polynomial for e^r (Cephes' expf).
struct ExpConst {
    static constexpr float lo = -104.0f, hi = 88.8f, log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    static constexpr float p[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
};

#if XSIMD_WITH_AVX512F
namespace avx512 {
constexpr __mmask16 kAll = 0xFFFF;
/// max/min with the second operand returned when either is NaN (vmaxps/vminps), like xsimd's.
inline __m512 max(__m512 a, __m512 b) { return _mm512_maskz_max_ps(kAll, a, b); }
inline __m512 min(__m512 a, __m512 b) { return _mm512_maskz_min_ps(kAll, a, b); }
/// e^x, |relative error| <= ~2 ulp: x = n·ln2 + r with |r| <= ln2/2 (ln2 in two parts, so r is
/// exact to ~1e-10), e^r by a degree-6 polynomial (Taylor terms refined for the interval, Cephes'
/// expf coefficients), then ·2^n by vscalefps, which underflows gradually to +0 and overflows to +inf.
/// x is clamped to [−104, 88.8] first (e^x is +0 / +inf beyond, and r stays small); NaN propagates.
inline __m512 exp(__m512 x) {
    using C = ExpConst;
    x = min(_mm512_set1_ps(C::hi), max(_mm512_set1_ps(C::lo), x));  // NaN: the second operand, x
    const __m512 n = _mm512_maskz_roundscale_ps(kAll, _mm512_mul_ps(x, _mm512_set1_ps(C::log2e)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C::ln2_hi), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C::ln2_lo), r);
    __m512 p = _mm512_set1_ps(C::p[0]);
    for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C::p[i]));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(kAll, y, n);
}
/// The 16 lanes folded by a halving tree (8 + 8, 4 + 4, 2 + 2, 1 + 1) with op on ymm (f8) and xmm (f4).
/// (_mm512_castps512_ps256 is an unmasked extract in GCC 12, hence the zero-masking form for both halves.)
template <class F8, class F4>
inline float fold(__m512 a, F8 f8, F4 f4) {
    const __m256 lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(__mmask8(0xF), _mm512_castps_pd(a), 0));
    const __m256 hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(__mmask8(0xF), _mm512_castps_pd(a), 1));
    const __m256 x8 = f8(lo, hi);
    __m128 x4 = f4(_mm256_castps256_ps128(x8), _mm256_extractf128_ps(x8, 1));
    x4 = f4(x4, _mm_movehl_ps(x4, x4));
    return _mm_cvtss_f32(f4(x4, _mm_movehdup_ps(x4)));
}
inline float hsum(__m512 a) {
    return fold(a, [](__m256 x, __m256 y) { return _mm256_add_ps(x, y); }, [](__m128 x, __m128 y) { return _mm_add_ps(x, y); });
}
/// Largest lane (vmaxps semantics: a NaN lane is not reliably propagated; dmin's inputs are finite).
inline float hmax(__m512 a) {
    return fold(a, [](__m256 x, __m256 y) { return _mm256_max_ps(x, y); }, [](__m128 x, __m128 y) { return _mm_max_ps(x, y); });
}
inline __mmask16 first(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
/// r[i][j] → r[j][i] for a 16 × 16 block in registers: pairs of rows interleaved (unpack), then
/// 2-float, 4-float and 8-float groups exchanged (shuffle, twice shuffle_f32x4); 64 shuffles.
inline void transpose(__m512* r) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_maskz_unpacklo_ps(kAll, r[i], r[i + 1]);
        t[i + 1] = _mm512_maskz_unpackhi_ps(kAll, r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_maskz_shuffle_ps(kAll, t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_maskz_shuffle_ps(kAll, t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_maskz_shuffle_ps(kAll, t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_maskz_shuffle_ps(kAll, t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 4; ++j) {
            t[i + j] = _mm512_maskz_shuffle_f32x4(kAll, r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_maskz_shuffle_f32x4(kAll, r[i + j], r[i + j + 4], 0xDD);
        }
    for (int j = 0; j < 8; ++j) {
        r[j] = _mm512_maskz_shuffle_f32x4(kAll, t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_maskz_shuffle_f32x4(kAll, t[j], t[j + 8], 0xDD);
    }
}
}  // namespace avx512
#endif

/// e^x on any xsimd float batch by the AVX-512 algorithm above (same clamp, split, polynomial), with
/// ·2^n as two exact power-of-two factors 2^⌊n/2⌋ · 2^(n−⌊n/2⌋) built from their exponent bits: the
/// first product stays normal, the second rounds once (gradual underflow, overflow to +inf), which is
/// what vscalefps does — the same bits as the AVX-512 exp. (xsimd 8.1's exp returns +inf from
/// x ≈ 88.38 although e^x < FLT_MAX up to 88.72, and +0 below x ≈ −87.7 instead of denormals.)
template <class Arch>
inline xsimd::batch<float, Arch> exp_by_halves(xsimd::batch<float, Arch> x) {
    using B = xsimd::batch<float, Arch>;
    using I = xsimd::batch<std::int32_t, Arch>;
    using C = ExpConst;
    x = xsimd::min(B(C::hi), xsimd::max(B(C::lo), x));  // NaN: the second operand, x
    const B n = xsimd::nearbyint(x * B(C::log2e));
    B r = xsimd::fnma(n, B(C::ln2_hi), x);
    r = xsimd::fnma(n, B(C::ln2_lo), r);
    B p(C::p[0]);
    for (int i = 1; i < 6; ++i) p = xsimd::fma(p, r, B(C::p[i]));
    const B y = xsimd::fma(p * r, r, r) + B(1.0f);
    const I ni = xsimd::to_int(n), n1 = ni >> 1, n2 = ni - n1;  // n in [−150, 128]: both halves in [−75, 64]
    const B f1 = xsimd_compat::bitwise_cast<B>((n1 + I(127)) << 23), f2 = xsimd_compat::bitwise_cast<B>((n2 + I(127)) << 23);
    return (y * f1) * f2;
}

/// Thin wrapper over xsimd::batch<float, Arch> with the operations dmin's kernels use.
template <class Arch>
struct basic_vfloat {
    using batch = xsimd::batch<float, Arch>;
    static constexpr int size = static_cast<int>(batch::size);
    batch v;
    /// Uninitialised, like the register it stands for. With a zeroing constructor GCC 12 kept storing
    /// the zeros of a register tile's accumulator array (gemm_block's c[MR][NV]) to the stack, dead but
    /// not removed, once the tile's initial values came from a policy's load(): up to 25 stores per call.
    basic_vfloat() = default;
    explicit basic_vfloat(float x) : v(x) {}  // broadcast (never brace-init a batch: xsimd 8.1 reads memory)
    explicit basic_vfloat(batch b) : v(b) {}
    static basic_vfloat load(const float* p) { return basic_vfloat(batch::load_unaligned(p)); }
    void store(float* p) const { v.store_unaligned(p); }
    /// Fused multiply-add. xsimd 8.1 has no AVX-512 fma (it falls back to x·y + z and leaves the fusion to
    /// the compiler's contraction, which GCC applies in some contexts and not others): call the intrinsic,
    /// so every kernel rounds a·b + c once, whichever lane or layout computes it (and xsimd version: 11 added one).
    friend basic_vfloat fma(basic_vfloat a, basic_vfloat b, basic_vfloat c) {
#if XSIMD_WITH_AVX512F
        if constexpr (size == 16) return basic_vfloat(batch(_mm512_fmadd_ps(a.v, b.v, c.v)));
        else
#endif
            return basic_vfloat(xsimd::fma(a.v, b.v, c.v));
    }
    friend basic_vfloat operator+(basic_vfloat a, basic_vfloat b) { return basic_vfloat(a.v + b.v); }
    friend basic_vfloat operator*(basic_vfloat a, basic_vfloat b) { return basic_vfloat(a.v * b.v); }
    friend basic_vfloat max(basic_vfloat a, basic_vfloat b) {
#if XSIMD_WITH_AVX512F
        if constexpr (size == 16) return basic_vfloat(batch(avx512::max(a.v, b.v)));
        else
#endif
            return basic_vfloat(xsimd::max(a.v, b.v));
    }
    friend basic_vfloat min(basic_vfloat a, basic_vfloat b) {
#if XSIMD_WITH_AVX512F
        if constexpr (size == 16) return basic_vfloat(batch(avx512::min(a.v, b.v)));
        else
#endif
            return basic_vfloat(xsimd::min(a.v, b.v));
    }
    friend basic_vfloat operator-(basic_vfloat a, basic_vfloat b) { return basic_vfloat(a.v - b.v); }
    friend basic_vfloat operator-(basic_vfloat a) { return basic_vfloat(-a.v); }
    friend basic_vfloat operator/(basic_vfloat a, basic_vfloat b) { return basic_vfloat(a.v / b.v); }
    friend basic_vfloat exp(basic_vfloat a) {
#if XSIMD_WITH_AVX512F
        if constexpr (size == 16) return basic_vfloat(batch(avx512::exp(a.v)));
        else
#endif
            return basic_vfloat(exp_by_halves(a.v));
    }
    /// max(a, 0): +0 for NaN and −0 as well. One vmaxps on AVX-512 — through the zero-masking intrinsic,
    /// because xsimd::max and _mm512_max_ps pass _mm512_undefined_ps() and trip GCC bug 105593 —
    /// compare+select elsewhere; the same result bit for bit (tested).
    friend basic_vfloat relu(basic_vfloat a) {
#if XSIMD_WITH_AVX512F
        if constexpr (size == 16) return basic_vfloat(batch(_mm512_maskz_max_ps(__mmask16(0xFFFF), a.v, _mm512_setzero_ps())));
        else
#endif
            return basic_vfloat(xsimd::select(a.v > batch(0.0f), a.v, batch(0.0f)));
    }
    friend float hsum(basic_vfloat a) {
#if XSIMD_WITH_AVX512F
        if constexpr (size == 16) return avx512::hsum(a.v);
        else
#endif
            return xsimd_compat::reduce_add(a.v);
    }
    friend float hmax(basic_vfloat a) {
#if XSIMD_WITH_AVX512F
        if constexpr (size == 16) return avx512::hmax(a.v);
        else
#endif
        {
            float t[size];
            a.store(t);
            for (int w = size / 2; w > 0; w /= 2)  // halving tree: log2(size) dependent steps
                for (int i = 0; i < w; ++i) t[i] = t[i + w] > t[i] ? t[i + w] : t[i];
            return t[0];
        }
    }
    /// The first n < size lanes from p, the others `fill`; and the matching partial store. Masked
    /// loads and stores on AVX/AVX-512 (no element past p + n is touched), a stack copy elsewhere.
    static basic_vfloat load_first(const float* p, int n, float fill) {
#if XSIMD_WITH_AVX512F
        if constexpr (size == 16) return basic_vfloat(batch(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), avx512::first(n), p)));
        else
#endif
#if XSIMD_WITH_AVX2
        if constexpr (size == 8) {
            const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            return basic_vfloat(batch(_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m))));
        } else
#endif
        {
            float t[size];
            for (int i = 0; i < size; ++i) t[i] = i < n ? p[i] : fill;
            return load(t);
        }
    }
    /// Transposes the size × size block r[0..size) in registers (AVX-512, AVX), through memory elsewhere.
    static void transpose(basic_vfloat* r) {
#if XSIMD_WITH_AVX512F
        if constexpr (size == 16) {
            __m512 x[16];
            for (int i = 0; i < 16; ++i) x[i] = r[i].v;
            avx512::transpose(x);
            for (int i = 0; i < 16; ++i) r[i] = basic_vfloat(batch(x[i]));
        } else
#endif
#if XSIMD_WITH_AVX
        if constexpr (size == 8) {  // the same three steps on 8 × 8: unpack, shuffle, exchange 128-bit halves
            __m256 t[8], u[8];
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(r[i].v, r[i + 1].v);
                t[i + 1] = _mm256_unpackhi_ps(r[i].v, r[i + 1].v);
            }
            for (int i = 0; i < 8; i += 4) {
                u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
                u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
                u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
                u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
            }
            for (int j = 0; j < 4; ++j) {
                r[j] = basic_vfloat(batch(_mm256_permute2f128_ps(u[j], u[j + 4], 0x20)));
                r[j + 4] = basic_vfloat(batch(_mm256_permute2f128_ps(u[j], u[j + 4], 0x31)));
            }
        } else
#endif
        {
            float t[size * size];
            for (int i = 0; i < size; ++i) r[i].store(t + i * size);
            for (int i = 0; i < size; ++i)
                for (int j = 0; j < i; ++j) std::swap(t[i * size + j], t[j * size + i]);
            for (int i = 0; i < size; ++i) r[i] = load(t + i * size);
        }
    }
    void store_first(float* p, int n) const {
#if XSIMD_WITH_AVX512F
        if constexpr (size == 16) _mm512_mask_storeu_ps(p, avx512::first(n), v);
        else
#endif
#if XSIMD_WITH_AVX2
        if constexpr (size == 8)
            _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), v);
        else
#endif
        {
            float t[size];
            store(t);
            std::copy(t, t + n, p);
        }
    }
};
using vfloat = basic_vfloat<arch>;
inline std::string simd_arch_name() { return arch::name(); }
#endif

/// a·b + c for scalar code that must give vfloat fma's bits: fused where the vector fma is (FMA3 and
/// AVX-512 hardware, the scalar fallback), a·b + c with two roundings where it is not (xsimd 8.1 to 13
/// emulates fma as x·y + z on SSE and AVX without FMA3; std::fma would round once there, in software).
#if defined(DMIN_SCALAR_KERNELS) || defined(__FMA__) || defined(__ARM_FEATURE_FMA)
inline float fma_scalar(float a, float b, float c) { return std::fma(a, b, c); }
#else
inline float fma_scalar(float a, float b, float c) { return a * b + c; }
#endif

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::kernels
