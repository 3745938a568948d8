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
    for (int r = 0; r < rows; ++r) {
        float* x = X + static_cast<std::ptrdiff_t>(r) * ld;
        int j = 0;
        for (; j + W <= width; j += W) {
            const vfloat_ew v = vfloat_ew::load(x + j);
            vfloat_ew y;
            switch (a) {
                case Act::relu: y = max(v, zero); break;
                case Act::prelu: y = max(v, zero) + vfloat_ew::load(p.slope + j) * min(v, zero); break;
                case Act::sigmoid: y = one / (one + exp(-v)); break;
                default: {  // Dice: q = sigmoid(scale·x + shift); y = x·(q + alpha·(1 − q))
                    const vfloat_ew q = one / (one + exp(-fma(vfloat_ew::load(p.scale + j), v, vfloat_ew::load(p.shift + j))));
                    y = v * fma(vfloat_ew::load(p.slope + j), one - q, q);
                    break;
                }
            }
            y.store(x + j);
        }
        if (j < width) {
            ActParams tail = p;
            if (tail.slope) tail.slope += j;
            if (tail.scale) tail.scale += j;
            if (tail.shift) tail.shift += j;
            apply_act(a, tail, x + j, width - j);
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
