// dmin/kernels/sizes.hpp — a size known at compile time or only at run time: dmin::Dynamic and dim_or.
#pragma once

namespace dmin {

/// A size left to run time (Eigen's value, so shape fields pass straight into Eigen types).
inline constexpr int Dynamic = -1;

/// Compile-time value if fixed, else the runtime one.
template <int Fixed>
constexpr int dim_or(int runtime) {
    if constexpr (Fixed == Dynamic) return runtime;
    else return Fixed;
}

}  // namespace dmin
