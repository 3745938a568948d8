// dmin/kernels/xsimd_compat.hpp — the xsimd calls whose name or form changed between the versions dmin
// accepts: 8.1 (Debian 12) through 13 (Debian 13). Every version difference the kernels meet is here,
// so simd.hpp reads the same for all of them.
#pragma once

#include <xsimd/xsimd.hpp>

#if !defined(XSIMD_VERSION_MAJOR) || XSIMD_VERSION_MAJOR < 8 || XSIMD_VERSION_MAJOR > 13
#error "dmin needs xsimd 8.1 to 13 (include/dmin/kernels/xsimd_compat.hpp)"
#endif

namespace dmin::kernels::xsimd_compat {

/// Sum of the lanes. xsimd 9 renamed hadd to reduce_add.
template <class T, class A>
inline T reduce_add(const xsimd::batch<T, A>& x) {
#if XSIMD_VERSION_MAJOR >= 9
    return xsimd::reduce_add(x);
#else
    return xsimd::hadd(x);
#endif
}

/// The bits of x as the batch type B (same arch, same width). xsimd 11 changed bitwise_cast's template
/// argument from the result batch type to the result element type.
template <class B, class T, class A>
inline B bitwise_cast(const xsimd::batch<T, A>& x) {
#if XSIMD_VERSION_MAJOR >= 11
    return xsimd::bitwise_cast<typename B::value_type>(x);
#else
    return xsimd::bitwise_cast<B>(x);
#endif
}

}  // namespace dmin::kernels::xsimd_compat
