// dmin/kernels/simd.hpp — the SIMD vector type the kernels use: xsimd's best arch, or a 1-lane scalar fallback.
#pragma once

#include <cmath>

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
    friend vfloat fma(vfloat a, vfloat b, vfloat c) { return vfloat(a.v * b.v + c.v); }
    friend vfloat operator+(vfloat a, vfloat b) { return vfloat(a.v + b.v); }
    friend vfloat operator*(vfloat a, vfloat b) { return vfloat(a.v * b.v); }
    friend vfloat max(vfloat a, vfloat b) { return vfloat(a.v > b.v ? a.v : b.v); }
    friend vfloat min(vfloat a, vfloat b) { return vfloat(a.v < b.v ? a.v : b.v); }
    friend vfloat operator-(vfloat a, vfloat b) { return vfloat(a.v - b.v); }
    friend vfloat operator-(vfloat a) { return vfloat(-a.v); }
    friend vfloat operator/(vfloat a, vfloat b) { return vfloat(a.v / b.v); }
    friend vfloat exp(vfloat a) { return vfloat(std::exp(a.v)); }
    friend float hsum(vfloat a) { return a.v; }
};
inline const char* simd_arch_name() { return "scalar"; }
#else
/// The instruction set the kernels use. With AVX2+FMA available, dmin uses 256-bit vectors even when
/// AVX-512 is enabled: on the Zen 4 cores dmin is tuned for, 512-bit FMAs execute as two 256-bit halves
/// (same peak), and GCC 12's AVX-512 intrinsics raise spurious -Wmaybe-uninitialized warnings
/// (GCC bug 105593) in user code that includes dmin. Define DMIN_USE_AVX512 to use xsimd's best arch.
#if XSIMD_WITH_FMA3_AVX2 && !defined(DMIN_USE_AVX512)
using simd_arch = xsimd::fma3<xsimd::avx2>;
#else
using simd_arch = xsimd::default_arch;
#endif

/// Thin wrapper over xsimd::batch<float, simd_arch>.
struct vfloat {
    using batch = xsimd::batch<float, simd_arch>;
    static constexpr int size = static_cast<int>(batch::size);
    batch v;
    vfloat() : v(0.0f) {}
    explicit vfloat(float x) : v(x) {}  // broadcast (never brace-init a batch: xsimd 8.1 reads memory)
    explicit vfloat(batch b) : v(b) {}
    static vfloat load(const float* p) { return vfloat(batch::load_unaligned(p)); }
    void store(float* p) const { v.store_unaligned(p); }
    friend vfloat fma(vfloat a, vfloat b, vfloat c) { return vfloat(xsimd::fma(a.v, b.v, c.v)); }
    friend vfloat operator+(vfloat a, vfloat b) { return vfloat(a.v + b.v); }
    friend vfloat operator*(vfloat a, vfloat b) { return vfloat(a.v * b.v); }
    friend vfloat max(vfloat a, vfloat b) { return vfloat(xsimd::max(a.v, b.v)); }
    friend vfloat min(vfloat a, vfloat b) { return vfloat(xsimd::min(a.v, b.v)); }
    friend vfloat operator-(vfloat a, vfloat b) { return vfloat(a.v - b.v); }
    friend vfloat operator-(vfloat a) { return vfloat(-a.v); }
    friend vfloat operator/(vfloat a, vfloat b) { return vfloat(a.v / b.v); }
    friend vfloat exp(vfloat a) { return vfloat(xsimd::exp(a.v)); }
    friend float hsum(vfloat a) { return xsimd::hadd(a.v); }  // xsimd 8.1 has no reduce_add
};
inline const char* simd_arch_name() { return simd_arch::name(); }
#endif

/// Floats a buffer must be readable beyond its last row so that kernels may load whole vectors.
inline constexpr int kReadSlack = 16;

}  // namespace dmin::kernels
