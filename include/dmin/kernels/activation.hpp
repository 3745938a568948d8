// dmin/kernels/activation.hpp — every activation of dmin::Act evaluated on one row, in eval mode (the
// scalar forms; kernels::activate_rows and activate_units run the common ones vectorised).
#pragma once

#include <algorithm>
#include <cmath>

#include "dmin/act.hpp"
#include "dmin/kernels/isa.hpp"

namespace dmin::kernels {
DMIN_ISA_NAMESPACE_BEGIN

namespace detail {
inline float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float softplusf(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }
}  // namespace detail

/// Applies activation `a` in place to one row of n units (unit j uses parameter j).
inline void apply_act(Act a, const ActParams& p, float* x, int n) {
    using detail::sigmoidf;
    using detail::softplusf;
    switch (a) {
        case Act::none: case Act::identity: return;
        case Act::softmax: {
            float m = x[0];
            for (int j = 1; j < n; ++j) m = std::max(m, x[j]);
            float s = 0;
            for (int j = 0; j < n; ++j) s += (x[j] = std::exp(x[j] - m));
            for (int j = 0; j < n; ++j) x[j] /= s;
            return;
        }
        case Act::relu: for (int j = 0; j < n; ++j) x[j] = std::max(x[j], 0.0f); return;
        case Act::prelu: for (int j = 0; j < n; ++j) x[j] = x[j] >= 0 ? x[j] : p.slope[j] * x[j]; return;
        case Act::dice:
            for (int j = 0; j < n; ++j) {
                const float q = sigmoidf(p.scale[j] * x[j] + p.shift[j]);
                x[j] = q * x[j] + p.slope[j] * (1.0f - q) * x[j];
            }
            return;
        default: break;
    }
    for (int j = 0; j < n; ++j) {
        const float v = x[j];
        float y = v;
        switch (a) {
            case Act::sigmoid: y = sigmoidf(v); break;
            case Act::tanh: y = std::tanh(v); break;
            case Act::leaky_relu: y = v >= 0 ? v : 0.01f * v; break;
            case Act::elu: y = v > 0 ? v : std::expm1(v); break;
            case Act::selu: y = 1.0507009873554804934f * (v > 0 ? v : 1.6732632423543772848f * std::expm1(v)); break;
            case Act::celu: y = std::max(v, 0.0f) + std::min(0.0f, std::expm1(v)); break;
            case Act::gelu: y = 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)); break;
            case Act::silu: y = v * sigmoidf(v); break;
            case Act::mish: y = v * std::tanh(softplusf(v)); break;
            case Act::softplus: y = softplusf(v); break;
            case Act::softsign: y = v / (1.0f + std::fabs(v)); break;
            case Act::hardswish: y = v * std::min(std::max(v + 3.0f, 0.0f), 6.0f) / 6.0f; break;
            case Act::hardsigmoid: y = std::min(std::max(v + 3.0f, 0.0f), 6.0f) / 6.0f; break;
            case Act::hardtanh: y = std::min(std::max(v, -1.0f), 1.0f); break;
            case Act::relu6: y = std::min(std::max(v, 0.0f), 6.0f); break;
            case Act::logsigmoid: y = std::min(v, 0.0f) - std::log1p(std::exp(-std::fabs(v))); break;
            case Act::tanhshrink: y = v - std::tanh(v); break;
            case Act::softshrink: y = v > 0.5f ? v - 0.5f : (v < -0.5f ? v + 0.5f : 0.0f); break;
            case Act::hardshrink: y = (v > 0.5f || v < -0.5f) ? v : 0.0f; break;
            case Act::rrelu: y = v >= 0 ? v : v * ((1.0f / 8.0f + 1.0f / 3.0f) / 2.0f); break;
            default: break;
        }
        x[j] = y;
    }
}

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::kernels
