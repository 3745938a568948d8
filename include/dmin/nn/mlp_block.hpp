// dmin/nn/mlp_block.hpp — load-time form of FuxiCTR's Linear and MLP_Block: state_dict names, transposition,
// BatchNorm and Dice folding. Used while a model loads; nothing here runs per request.
#pragma once

#include "dmin/kernels/isa.hpp"
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dmin/error.hpp"
#include "dmin/nn/mlp.hpp"

namespace dmin {

/// One tensor a spec requires: its FuxiCTR state_dict name and shape.
struct ExpectedTensor {
    std::string name;
    std::vector<std::int64_t> shape;
};

namespace nn {
DMIN_ISA_NAMESPACE_BEGIN

/// The file's tensors by name, writable while the model is being built (each layer's prepare() rewrites
/// its own: transposition, folding, packing). Layers keep const views of them.
class TensorSource {
public:
    explicit TensorSource(std::map<std::string, float*> t) : t_(std::move(t)) {}
    float* get(const std::string& name) const { return t_.at(name); }
    /// A Linear from PyTorch weight [out, in] (+ bias), transposed in place to [in, out].
    Linear linear(const std::string& w, const std::string& b, int in, int out) const {
        float* wt = get(w);
        transpose_in_place(wt, out, in);
        return Linear{in, out, wt, b.empty() ? nullptr : get(b)};
    }

private:
    /// Row-major [rows, cols] into [cols, rows].
    static void transpose_in_place(float* p, int rows, int cols) {
        std::vector<float> tmp(p, p + static_cast<std::ptrdiff_t>(rows) * cols);
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < cols; ++c)
                p[static_cast<std::ptrdiff_t>(c) * rows + r] = tmp[static_cast<std::size_t>(r) * static_cast<std::size_t>(cols) + static_cast<std::size_t>(c)];
    }
    std::map<std::string, float*> t_;
};

inline std::string mlp_key(const std::string& prefix, int index, const char* leaf) {
    return prefix + ".mlp." + std::to_string(index) + "." + leaf;
}

/// What an MLP_Block is built from (spec fields of one MLP).
struct MlpConfig {
    int in = 0;
    std::vector<int> units;
    std::vector<Act> acts;
    double dropout = 0;
    bool bn = false, bn_once = false;
};

/// Layer indices of a FuxiCTR MLP_Block (weights_format.md §3, "MLP rule").
struct MlpLayout {
    int input_bn = -1;  ///< bn_only_once BatchNorm index or -1
    struct H { int linear, bn, act; };
    std::vector<H> hidden;
    int out_linear = 0;
};

inline MlpLayout mlp_layout(const MlpConfig& c) {
    MlpLayout l;
    int n = 0;
    if (c.bn && c.bn_once) l.input_bn = n++;
    for (std::size_t k = 0; k < c.units.size(); ++k) {
        MlpLayout::H h{n++, -1, -1};
        if (c.bn && !c.bn_once) h.bn = n++;
        if (c.acts[k] != Act::none) h.act = n++;
        if (c.dropout > 0) ++n;
        l.hidden.push_back(h);
    }
    l.out_linear = n;
    return l;
}

/// The tensors of an MLP_Block with one output unit under `prefix`.
inline void expect_mlp(std::vector<ExpectedTensor>& out, const std::string& prefix, const MlpConfig& c) {
    const auto lay = mlp_layout(c);
    auto bn_keys = [&](int idx, int w) {
        for (const char* leaf : {"weight", "bias", "running_mean", "running_var"}) out.push_back({mlp_key(prefix, idx, leaf), {w}});
    };
    if (lay.input_bn >= 0) bn_keys(lay.input_bn, c.in);
    int prev = c.in;
    for (std::size_t k = 0; k < c.units.size(); ++k) {
        const int u = c.units[k];
        out.push_back({mlp_key(prefix, lay.hidden[k].linear, "weight"), {u, prev}});
        out.push_back({mlp_key(prefix, lay.hidden[k].linear, "bias"), {u}});
        if (lay.hidden[k].bn >= 0) bn_keys(lay.hidden[k].bn, u);
        if (c.acts[k] == Act::prelu) out.push_back({mlp_key(prefix, lay.hidden[k].act, "weight"), {u}});
        if (c.acts[k] == Act::dice)
            for (const char* leaf : {"alpha", "bn.running_mean", "bn.running_var"})
                out.push_back({mlp_key(prefix, lay.hidden[k].act, leaf), {u}});
        prev = u;
    }
    out.push_back({mlp_key(prefix, lay.out_linear, "weight"), {1, prev}});
    out.push_back({mlp_key(prefix, lay.out_linear, "bias"), {1}});
}

namespace mlp_detail {

/// Running variances must be >= 0: a negative one would turn the folded weights into NaN.
inline void check_variance(const std::string& name, const float* var, int n) {
    for (int j = 0; j < n; ++j)
        if (!(var[j] >= 0.0f)) dmin::detail::fail("tensor ", name, ": running variance ", var[j], " at index ", j, " is negative");
}

/// An eval-mode BatchNorm1d's statistics: s = γ/sqrt(var + eps), and its tensors.
struct BatchNormTensors {
    const float *gamma, *beta, *mean, *var;
    BatchNormTensors(const TensorSource& w, const std::string& prefix, int idx, int n)
        : gamma(w.get(mlp_key(prefix, idx, "weight"))), beta(w.get(mlp_key(prefix, idx, "bias"))),
          mean(w.get(mlp_key(prefix, idx, "running_mean"))), var(w.get(mlp_key(prefix, idx, "running_var"))) {
        check_variance(mlp_key(prefix, idx, "running_var"), var, n);
    }
    double scale(int j, double eps) const { return gamma[j] / std::sqrt(static_cast<double>(var[j]) + eps); }
};

/// Folds an eval-mode BatchNorm1d that follows a Linear into it: W'^T[:, j] = W^T[:, j]·s_j, b' = (b − μ)·s + β.
inline void fold_bn_after(const Linear& lin, float* wt, float* b, const BatchNormTensors& bn, double eps) {
    for (int j = 0; j < lin.out; ++j) {
        const double s = bn.scale(j, eps);
        for (int k = 0; k < lin.in; ++k) wt[static_cast<std::ptrdiff_t>(k) * lin.out + j] *= static_cast<float>(s);
        b[j] = static_cast<float>((b[j] - bn.mean[j]) * s + bn.beta[j]);
    }
}

/// Folds an eval-mode BatchNorm1d on the input of a Linear (bn_only_once): x' = x·s + t.
inline void fold_bn_before(const Linear& lin, float* wt, float* b, const BatchNormTensors& bn, double eps) {
    std::vector<double> bias(b, b + lin.out);
    for (int k = 0; k < lin.in; ++k) {
        const double s = bn.scale(k, eps);
        const double t = bn.beta[k] - bn.mean[k] * s;
        float* row = wt + static_cast<std::ptrdiff_t>(k) * lin.out;
        for (int j = 0; j < lin.out; ++j) {
            bias[static_cast<std::size_t>(j)] += t * row[j];
            row[j] = static_cast<float>(row[j] * s);
        }
    }
    for (int j = 0; j < lin.out; ++j) b[j] = static_cast<float>(bias[static_cast<std::size_t>(j)]);
}

/// Dice's p = sigmoid((x − μ)/sqrt(var + 1e-9)) as sigmoid(scale·x + shift), stored over μ and var.
inline ActParams dice_params(const TensorSource& w, const std::string& prefix, int idx, int n) {
    float* mu = w.get(mlp_key(prefix, idx, "bn.running_mean"));
    float* var = w.get(mlp_key(prefix, idx, "bn.running_var"));
    check_variance(mlp_key(prefix, idx, "bn.running_var"), var, n);
    for (int j = 0; j < n; ++j) {
        const double scale = 1.0 / std::sqrt(static_cast<double>(var[j]) + 1e-9);
        var[j] = static_cast<float>(scale);
        mu[j] = static_cast<float>(-mu[j] * scale);
    }
    return ActParams{w.get(mlp_key(prefix, idx, "alpha")), var, mu};
}

inline Hidden build_hidden(const TensorSource& w, const std::string& prefix, const MlpLayout& lay, const MlpConfig& c,
                           std::size_t k, int in) {
    Hidden h;
    const int idx = lay.hidden[k].linear;
    const std::string wk = mlp_key(prefix, idx, "weight"), bk = mlp_key(prefix, idx, "bias");
    h.lin = w.linear(wk, bk, in, c.units[k]);
    if (k == 0 && lay.input_bn >= 0) fold_bn_before(h.lin, w.get(wk), w.get(bk), BatchNormTensors(w, prefix, lay.input_bn, in), 1e-5);
    if (lay.hidden[k].bn >= 0)
        fold_bn_after(h.lin, w.get(wk), w.get(bk), BatchNormTensors(w, prefix, lay.hidden[k].bn, c.units[k]), 1e-5);
    h.act = c.acts[k];
    if (h.act == Act::prelu) h.params.slope = w.get(mlp_key(prefix, lay.hidden[k].act, "weight"));
    if (h.act == Act::dice) h.params = dice_params(w, prefix, lay.hidden[k].act, c.units[k]);
    return h;
}

}  // namespace mlp_detail

/// The MLP_Block under `prefix` in its load-time form (transposed, BatchNorm folded, Dice precomputed).
inline Mlp build_mlp(const TensorSource& w, const std::string& prefix, const MlpConfig& c) {
    const auto lay = mlp_layout(c);
    Mlp m;
    int prev = c.in;
    for (std::size_t k = 0; k < c.units.size(); ++k) {
        m.hidden.push_back(mlp_detail::build_hidden(w, prefix, lay, c, k, prev));
        prev = c.units[k];
    }
    m.head = w.linear(mlp_key(prefix, lay.out_linear, "weight"), mlp_key(prefix, lay.out_linear, "bias"), prev, 1);
    return m;
}

DMIN_ISA_NAMESPACE_END
}  // namespace nn
}  // namespace dmin
