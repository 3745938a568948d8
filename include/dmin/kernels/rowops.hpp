// dmin/kernels/rowops.hpp — SIMD row kernels: the common activations in place, and one-output projections.
#pragma once

#include <algorithm>
#include <cmath>

#include "dmin/kernels/simd.hpp"
#include "dmin/nn/activation.hpp"

namespace dmin::kernels {

/// Applies `a` in place to `rows` rows of `width` units (leading dimension ld). ReLU, PReLU, Dice and
/// Sigmoid run vectorised; every other activation falls back to dmin::apply_act.
inline void activate_rows(Act a, const ActParams& p, float* X, int rows, int width, int ld) {
    constexpr int W = vfloat_ew::size;
    if (a == Act::none || a == Act::identity) return;
    if (a != Act::relu && a != Act::prelu && a != Act::dice && a != Act::sigmoid) {
        for (int r = 0; r < rows; ++r) apply_act(a, p, X + static_cast<std::ptrdiff_t>(r) * ld, width);
        return;
    }
    const vfloat_ew zero(0.0f), one(1.0f);
    // One vector of units from j: the same formula on every unit, tails included (padded through a
    // stack copy), so a unit's value never depends on its position in the row (see activate_units).
    auto apply = [&](const float* x, int j, const float* slope, const float* scale, const float* shift) {
        const vfloat_ew v = vfloat_ew::load(x);
        switch (a) {
            case Act::relu: return max(v, zero);
            case Act::prelu: return max(v, zero) + vfloat_ew::load(slope + j) * min(v, zero);
            case Act::sigmoid: return one / (one + exp(-v));
            default: {  // Dice: q = sigmoid(scale·x + shift); y = x·(q + alpha·(1 − q))
                const vfloat_ew q = one / (one + exp(-fma(vfloat_ew::load(scale + j), v, vfloat_ew::load(shift + j))));
                return v * fma(vfloat_ew::load(slope + j), one - q, q);
            }
        }
    };
    for (int r = 0; r < rows; ++r) {
        float* x = X + static_cast<std::ptrdiff_t>(r) * ld;
        int j = 0;
        for (; j + W <= width; j += W) apply(x + j, j, p.slope, p.scale, p.shift).store(x + j);
        if (j < width) {
            const int n = width - j;
            float xt[W] = {}, st[W] = {}, sct[W] = {}, sht[W] = {};
            for (int k = 0; k < n; ++k) {
                xt[k] = x[j + k];
                if (p.slope) st[k] = p.slope[j + k];
                if (p.scale) sct[k] = p.scale[j + k];
                if (p.shift) sht[k] = p.shift[j + k];
            }
            apply(xt, 0, st, sct, sht).store(xt);
            std::copy(xt, xt + n, x + j);
        }
    }
}

/// Applies `a` in place to feature-major activations: `units` rows (unit j = row j, parameter j) of
/// `cols` values each (leading dimension ld). ReLU, PReLU, Dice and Sigmoid run vectorised; Softmax
/// normalises each column over the units; every other activation is element-wise without parameters.
inline void activate_units(Act a, const ActParams& p, float* X, int units, int cols, int ld) {
    constexpr int W = vfloat_ew::size;
    if (a == Act::none || a == Act::identity) return;
    if (a == Act::softmax) {
        for (int c = 0; c < cols; ++c) {
            float m = X[c];
            for (int j = 1; j < units; ++j) m = std::max(m, X[static_cast<std::ptrdiff_t>(j) * ld + c]);
            float s = 0;
            for (int j = 0; j < units; ++j) {
                float& x = X[static_cast<std::ptrdiff_t>(j) * ld + c];
                s += (x = std::exp(x - m));
            }
            for (int j = 0; j < units; ++j) X[static_cast<std::ptrdiff_t>(j) * ld + c] /= s;
        }
        return;
    }
    if (a != Act::relu && a != Act::prelu && a != Act::dice && a != Act::sigmoid) {
        for (int j = 0; j < units; ++j) apply_act(a, ActParams{}, X + static_cast<std::ptrdiff_t>(j) * ld, cols);  // no parameters
        return;
    }
    const vfloat_ew zero(0.0f), one(1.0f);
    for (int j = 0; j < units; ++j) {
        float* x = X + static_cast<std::ptrdiff_t>(j) * ld;
        // Unit j's parameters broadcast along the row; the formulas are activate_rows', so a unit gets
        // bit-identical values in either layout.
        const vfloat_ew slope(p.slope ? p.slope[j] : 0.0f), scale(p.scale ? p.scale[j] : 0.0f), shift(p.shift ? p.shift[j] : 0.0f);
        auto apply = [&](vfloat_ew v) {
            switch (a) {
                case Act::relu: return max(v, zero);
                case Act::prelu: return max(v, zero) + slope * min(v, zero);
                case Act::sigmoid: return one / (one + exp(-v));
                default: {  // Dice
                    const vfloat_ew q = one / (one + exp(-fma(scale, v, shift)));
                    return v * fma(slope, one - q, q);
                }
            }
        };
        int c = 0;
        for (; c + W <= cols; c += W) apply(vfloat_ew::load(x + c)).store(x + c);
        if (c < cols) {  // tail through a padded copy
            float t[W] = {};
            std::copy(x + c, x + cols, t);
            apply(vfloat_ew::load(t)).store(t);
            std::copy(t, t + (cols - c), x + c);
        }
    }
}

/// Max-subtracted softmax of x[0..n) in place, vectorised (exp from xsimd, ~1 ulp).
inline void softmax(float* x, int n) {
    constexpr int W = vfloat_ew::size;
    float m = x[0];
    for (int j = 1; j < n; ++j) m = x[j] > m ? x[j] : m;
    const vfloat_ew vm(m);
    vfloat_ew acc(0.0f);
    int j = 0;
    for (; j + W <= n; j += W) {
        const vfloat_ew e = exp(vfloat_ew::load(x + j) - vm);
        e.store(x + j);
        acc = acc + e;
    }
    float s = hsum(acc);
    for (; j < n; ++j) s += (x[j] = std::exp(x[j] - m));
    const float inv = 1.0f / s;
    const vfloat_ew vi(inv);
    for (j = 0; j + W <= n; j += W) (vfloat_ew::load(x + j) * vi).store(x + j);
    for (; j < n; ++j) x[j] *= inv;
}

/// Softmax of x[0..n) in place with the exact operation order of a lane-wise softmax over feature-major
/// scores (xsimd exp on every element, the sum accumulated in index order, one reciprocal): the
/// target attention computes one candidate alone and many candidates per SIMD lane bit-identically.
inline void softmax_ordered(float* x, int n) {
    constexpr int W = vfloat_ew::size;
    float m = x[0];
    for (int j = 1; j < n; ++j) m = x[j] > m ? x[j] : m;
    const vfloat_ew vm(m);
    int j = 0;
    for (; j + W <= n; j += W) exp(vfloat_ew::load(x + j) - vm).store(x + j);
    if (j < n) {
        float t[W] = {};
        std::copy(x + j, x + n, t);
        exp(vfloat_ew::load(t) - vm).store(t);
        std::copy(t, t + (n - j), x + j);
    }
    float s = 0;
    for (j = 0; j < n; ++j) s += x[j];
    const float inv = 1.0f / s;
    for (j = 0; j < n; ++j) x[j] *= inv;
}

/// out[r] = b + Σ_k X[r][k]·w[k] as one fused multiply-add chain in k order per row: the rounding
/// of gemm_tn with a single output row (the lane layout), for one candidate's rows.
inline void project_rows_ordered(const float* X, int rows, int n, int ld, const float* w, float b, float* out) {
    for (int r = 0; r < rows; ++r) {
        const float* x = X + static_cast<std::ptrdiff_t>(r) * ld;
        float acc = b;
        for (int k = 0; k < n; ++k) acc = fma_lane(w[k], x[k], acc);
        out[r] = acc;
    }
}

/// out[r] = X[r]·w + b for `rows` rows of width n (the final one-unit Linear of an MLP).
inline void project_rows(const float* X, int rows, int n, int ld, const float* w, float b, float* out) {
    constexpr int W = vfloat_ew::size;
    for (int r = 0; r < rows; ++r) {
        const float* x = X + static_cast<std::ptrdiff_t>(r) * ld;
        vfloat_ew acc0(0.0f), acc1(0.0f);
        int k = 0;
        for (; k + 2 * W <= n; k += 2 * W) {
            acc0 = fma(vfloat_ew::load(x + k), vfloat_ew::load(w + k), acc0);
            acc1 = fma(vfloat_ew::load(x + k + W), vfloat_ew::load(w + k + W), acc1);
        }
        for (; k + W <= n; k += W) acc0 = fma(vfloat_ew::load(x + k), vfloat_ew::load(w + k), acc0);
        float s = hsum(acc0 + acc1);
        for (; k < n; ++k) s += x[k] * w[k];
        out[r] = s + b;
    }
}

}  // namespace dmin::kernels
