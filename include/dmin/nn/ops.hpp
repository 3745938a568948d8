// dmin/nn/ops.hpp — row-wise building blocks on row-major buffers: LayerNorm, residual, ReLU.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>

namespace dmin::nn {

/// Compile-time width when known (>0), Eigen::Dynamic otherwise.
template <int N>
using RowMap = Eigen::Map<Eigen::Array<float, 1, N>>;
template <int N>
using ConstRowMap = Eigen::Map<const Eigen::Array<float, 1, N>>;

/// In place LayerNorm over each of `rows` rows of width `width` (eps 1e-5, biased variance, affine).
/// `N` is the compile-time width or Eigen::Dynamic.
template <int N = Eigen::Dynamic>
inline void layer_norm_rows(float* X, int rows, int width, int ld, const float* gamma, const float* beta) {
    const ConstRowMap<N> g(gamma, width), b(beta, width);
    for (int r = 0; r < rows; ++r) {
        RowMap<N> x(X + static_cast<std::ptrdiff_t>(r) * ld, width);
        const float mean = x.mean();
        const float var = (x - mean).square().mean();
        x = (x - mean) * (1.0f / std::sqrt(var + 1e-5f)) * g + b;
    }
}

/// Y[r] += X[r] for each row.
template <int N = Eigen::Dynamic>
inline void add_rows(float* Y, int ldy, const float* X, int ldx, int rows, int width) {
    for (int r = 0; r < rows; ++r)
        RowMap<N>(Y + static_cast<std::ptrdiff_t>(r) * ldy, width) += ConstRowMap<N>(X + static_cast<std::ptrdiff_t>(r) * ldx, width);
}

}  // namespace dmin::nn
