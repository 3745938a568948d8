// dmin/kernels/simd.hpp — the SIMD vector type the kernels use: xsimd's best arch, or a 1-lane scalar fallback.
#pragma once

#include <cmath>
#include <string>

#if !defined(DMIN_SCALAR_KERNELS)
#include <xsimd/xsimd.hpp>
#if defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
#define DMIN_SCALAR_KERNELS 1
#endif
#endif

namespace dmin::kernels {

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
};
using vfloat_ew = vfloat;
inline std::string simd_arch_name() { return "scalar"; }
#else
/// Two instruction sets:
///  - gemm_arch, for the matrix products: xsimd's best (AVX-512 where enabled; on Zen 5 its FMAs are
///    full width, twice the ymm peak). Only loads, stores, broadcasts and FMAs are used there.
///  - ew_arch, for element-wise kernels (activations, exp, reductions): AVX2+FMA when available,
///    because GCC 12's AVX-512 max/min/exp/reduction intrinsics raise spurious -Wmaybe-uninitialized
///    warnings (GCC bug 105593) in every program that includes dmin. These kernels are memory-light
///    and not the bottleneck. Define DMIN_EW_AVX512 to use the best arch for them too.
using gemm_arch = xsimd::default_arch;
#if XSIMD_WITH_FMA3_AVX2 && !defined(DMIN_EW_AVX512)
using ew_arch = xsimd::fma3<xsimd::avx2>;
#else
using ew_arch = xsimd::default_arch;
#endif

/// Thin wrapper over xsimd::batch<float, Arch> with the operations dmin's kernels use.
template <class Arch>
struct basic_vfloat {
    using batch = xsimd::batch<float, Arch>;
    static constexpr int size = static_cast<int>(batch::size);
    batch v;
    basic_vfloat() : v(0.0f) {}
    explicit basic_vfloat(float x) : v(x) {}  // broadcast (never brace-init a batch: xsimd 8.1 reads memory)
    explicit basic_vfloat(batch b) : v(b) {}
    static basic_vfloat load(const float* p) { return basic_vfloat(batch::load_unaligned(p)); }
    void store(float* p) const { v.store_unaligned(p); }
    /// Fused multiply-add. xsimd 8.1 has no AVX-512 fma (it falls back to x·y + z and leaves the fusion to
    /// the compiler's contraction, which GCC applies in some contexts and not others): call the intrinsic,
    /// so every kernel rounds a·b + c once, whichever lane or layout computes it.
    friend basic_vfloat fma(basic_vfloat a, basic_vfloat b, basic_vfloat c) {
#if XSIMD_WITH_AVX512F
        if constexpr (size == 16) return basic_vfloat(batch(_mm512_fmadd_ps(a.v, b.v, c.v)));
        else
#endif
            return basic_vfloat(xsimd::fma(a.v, b.v, c.v));
    }
    friend basic_vfloat operator+(basic_vfloat a, basic_vfloat b) { return basic_vfloat(a.v + b.v); }
    friend basic_vfloat operator*(basic_vfloat a, basic_vfloat b) { return basic_vfloat(a.v * b.v); }
    friend basic_vfloat max(basic_vfloat a, basic_vfloat b) { return basic_vfloat(xsimd::max(a.v, b.v)); }
    friend basic_vfloat min(basic_vfloat a, basic_vfloat b) { return basic_vfloat(xsimd::min(a.v, b.v)); }
    friend basic_vfloat operator-(basic_vfloat a, basic_vfloat b) { return basic_vfloat(a.v - b.v); }
    friend basic_vfloat operator-(basic_vfloat a) { return basic_vfloat(-a.v); }
    friend basic_vfloat operator/(basic_vfloat a, basic_vfloat b) { return basic_vfloat(a.v / b.v); }
    friend basic_vfloat exp(basic_vfloat a) { return basic_vfloat(xsimd::exp(a.v)); }
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
    friend float hsum(basic_vfloat a) { return xsimd::hadd(a.v); }  // xsimd 8.1 has no reduce_add
};
using vfloat = basic_vfloat<gemm_arch>;
using vfloat_ew = basic_vfloat<ew_arch>;
inline std::string simd_arch_name() { return std::string(gemm_arch::name()) + "/" + ew_arch::name(); }
#endif

/// Floats a buffer must be readable beyond its last row so that kernels may load whole vectors.
inline constexpr int kReadSlack = 16;

}  // namespace dmin::kernels
