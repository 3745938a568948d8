// dmin/nn/ops.hpp — row-wise building blocks on row-major buffers (residual sums, means; LayerNorm is
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

/// m = the mean of `rows` contiguous rows of `width` floats.
template <int N = Eigen::Dynamic>
inline void mean_rows(const float* X, int rows, int width, float* m) {
    std::fill(m, m + width, 0.0f);
    for (int r = 0; r < rows; ++r) add_rows<N>(m, width, X + static_cast<std::ptrdiff_t>(r) * width, width, 1, width);
    for (int e = 0; e < width; ++e) m[e] /= static_cast<float>(rows);
}

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::nn
