// dmin/nn/ops.hpp — row-wise building blocks on row-major buffers (residual sums; LayerNorm is
// kernels::residual_layer_norm_rows).
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>

#include "dmin/kernels/isa.hpp"

namespace dmin::nn {
DMIN_ISA_NAMESPACE_BEGIN

/// Compile-time width when known (>0), Eigen::Dynamic otherwise.
template <int N>
using RowMap = Eigen::Map<Eigen::Array<float, 1, N>>;
template <int N>
using ConstRowMap = Eigen::Map<const Eigen::Array<float, 1, N>>;

/// Y[r] += X[r] for each row.
template <int N = Eigen::Dynamic>
inline void add_rows(float* Y, int ldy, const float* X, int ldx, int rows, int width) {
    for (int r = 0; r < rows; ++r)
        RowMap<N>(Y + static_cast<std::ptrdiff_t>(r) * ldy, width) += ConstRowMap<N>(X + static_cast<std::ptrdiff_t>(r) * ldx, width);
}

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::nn
