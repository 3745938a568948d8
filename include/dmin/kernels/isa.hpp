// dmin/kernels/isa.hpp — the instruction set this translation unit compiles dmin's code for, as a namespace.
#pragma once

// Every inline function whose machine code depends on the instruction set (the kernels, and anything
// that calls them or uses vfloat) lives in an inline namespace named after that instruction set. Two
// translation units built with different -m flags then define differently named symbols, not two
// bodies of one symbol of which the linker would keep either (an AVX-512 body on the AVX2 path is the
// one-definition-rule violation this prevents). Call sites are unchanged: dmin::kernels::gemm names
// the translation unit's own dmin::kernels::avx2_fma::gemm (or avx512bw::, sse2::, ...).
//
// The name follows xsimd's choice of architecture (its XSIMD_WITH_* macros come from the same
// compiler macros), plus everything else that changes code: FMA (kernels::fma_scalar, and the
// compiler's contraction of a·b + c elsewhere) and the scalar fallback. Wrap such code in
// DMIN_ISA_NAMESPACE_BEGIN / DMIN_ISA_NAMESPACE_END inside its own namespace. Templates instantiated
// with a type from such a namespace (Scorer<Model<>>, self_test<Model<>>) are distinct already.

#if !defined(DMIN_SCALAR_KERNELS)
#include <xsimd/xsimd.hpp>
#if defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
#define DMIN_SCALAR_KERNELS 1
#endif
#endif

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define DMIN_ISA_HAS_FMA 1
#else
#define DMIN_ISA_HAS_FMA 0
#endif

// The target tier, xsimd's order (all_x86_architectures, then ARM); AVX-512 and AArch64 imply FMA.
#if defined(__AVX512F__) && defined(__AVX512BW__)
#define DMIN_ISA_TIER avx512bw
#elif defined(__AVX512F__) && defined(__AVX512DQ__)
#define DMIN_ISA_TIER avx512dq
#elif defined(__AVX512F__) && defined(__AVX512CD__)
#define DMIN_ISA_TIER avx512cd
#elif defined(__AVX512F__)
#define DMIN_ISA_TIER avx512f
#elif defined(__AVX2__) && DMIN_ISA_HAS_FMA
#define DMIN_ISA_TIER avx2_fma
#elif defined(__AVX2__)
#define DMIN_ISA_TIER avx2
#elif defined(__AVX__) && DMIN_ISA_HAS_FMA
#define DMIN_ISA_TIER avx_fma
#elif defined(__AVX__)
#define DMIN_ISA_TIER avx
#elif defined(__FMA4__)
#define DMIN_ISA_TIER fma4
#elif defined(__SSE4_2__) && DMIN_ISA_HAS_FMA
#define DMIN_ISA_TIER sse4_2_fma
#elif defined(__SSE4_2__)
#define DMIN_ISA_TIER sse4_2
#elif defined(__SSE4_1__)
#define DMIN_ISA_TIER sse4_1
#elif defined(__SSSE3__)
#define DMIN_ISA_TIER ssse3
#elif defined(__SSE3__)
#define DMIN_ISA_TIER sse3
#elif defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#define DMIN_ISA_TIER sse2
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define DMIN_ISA_TIER neon64
#elif defined(__ARM_NEON) && DMIN_ISA_HAS_FMA
#define DMIN_ISA_TIER neon_fma
#elif defined(__ARM_NEON)
#define DMIN_ISA_TIER neon
#elif DMIN_ISA_HAS_FMA
#define DMIN_ISA_TIER generic_fma
#else
#define DMIN_ISA_TIER generic
#endif

#define DMIN_ISA_CAT_(a, b) a##b
#define DMIN_ISA_CAT(a, b) DMIN_ISA_CAT_(a, b)
#define DMIN_ISA_STR_(x) #x
#define DMIN_ISA_STR(x) DMIN_ISA_STR_(x)

/// The namespace's name: the tier, or scalar_<tier> for the scalar kernels (whose plain loops the
/// compiler still vectorises for the tier); <tier>_bf16 when the bf16 products use vdpbf16ps
/// (AVX512_BF16, kernels/bf16.hpp) instead of widening to float32.
#if defined(DMIN_SCALAR_KERNELS)
#define DMIN_ISA_NS DMIN_ISA_CAT(scalar_, DMIN_ISA_TIER)
#elif defined(__AVX512BF16__) && defined(__AVX512F__)
#define DMIN_ISA_NS DMIN_ISA_CAT(DMIN_ISA_TIER, _bf16)
#else
#define DMIN_ISA_NS DMIN_ISA_TIER
#endif

#define DMIN_ISA_NAMESPACE_BEGIN inline namespace DMIN_ISA_NS {
#define DMIN_ISA_NAMESPACE_END }

namespace dmin::kernels {
DMIN_ISA_NAMESPACE_BEGIN
/// The name of this translation unit's instruction-set namespace ("avx512bw", "avx2_fma", "sse2", "scalar_sse2", ...).
inline constexpr char isa_name[] = DMIN_ISA_STR(DMIN_ISA_NS);
DMIN_ISA_NAMESPACE_END
}  // namespace dmin::kernels
