// dmin/layers/self_attention.hpp — multi-head scaled dot-product self-attention over one behaviour sequence,
// and the behaviour refiner built on it (nn.MultiheadAttention, residual, LayerNorm, FFN). Each interest head
// of the extractor (interest_heads.hpp) runs one head of the same attention.
#pragma once

#include "dmin/kernels/isa.hpp"
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "dmin/kernels/gemm.hpp"
#include "dmin/kernels/rowops.hpp"
#include "dmin/nn/mlp.hpp"
#include "dmin/nn/mlp_block.hpp"
#include "dmin/nn/ops.hpp"
#include "dmin/shape.hpp"

namespace dmin::layers {
DMIN_ISA_NAMESPACE_BEGIN

/// L rounded up to whole vectors (Dynamic stays Dynamic): BranchDims::Lq at compile time.
constexpr int Lq_of(int L) {
    constexpr int W = kernels::vfloat::size;
    return L == Dynamic ? Dynamic : (L + W - 1) / W * W;
}

/// The runtime sizes of one branch (a compile-time shape fixes some of them: dim_or<S::X>).
struct BranchDims {
    int L = 0, D = 0, H = 0, hd = 0, P = 0, A1 = 0;
    /// L rounded up to whole vectors: the row length of the attention logits and of Q^T.
    constexpr int Lq() const { return Lq_of(L); }
};

/// How an attention block treats blocked (future or padding, off-diagonal) logits.
enum class Mask {
    refiner_additive,  ///< FuxiCTR's float mask under torch <= 1.13 / >= 2.1: +1.0, stays in the softmax
    refiner_strict,    ///< torch 2.0.x eval fast path: excluded
    replace            ///< extractor: replaced by exactly -1e9
};

/// Self-attention of one sequence: Q, K, V side by side in `qkv` ([L, 3D], heads as contiguous slices).
template <class S>
class SelfAttention {
public:
    struct Workspace {
        float *qkv, *logits, *qt;
        float* pad;  ///< [L]: 1 at padding positions, 0 elsewhere (the masks: kernels::softmax_columns)
        float* inv;  ///< [Lq]: 1 / Σ of each query's unnormalised attention weights
        template <class A>
        constexpr void carve(A& a, const BranchDims& d) {
            const auto L = static_cast<std::size_t>(d.L), D = static_cast<std::size_t>(d.D), Lq = static_cast<std::size_t>(d.Lq());
            qkv = a.take(L * 3 * D);
            logits = a.take(L * Lq);
            qt = a.take(D * Lq);
            pad = a.take(L);
            inv = a.take(Lq);
        }
    };

    /// Q^T of ws.qkv's query columns into ws.qt ([D, Lq]; columns L..Lq zero): every head's Q_h^T at once.
    static void transpose_q(const BranchDims& d, Workspace& ws) {
        kernels::transpose_padded<S::L, S::D>(ws.qkv, 3 * dim_or<S::D>(d.D), dim_or<S::L>(d.L), dim_or<S::D>(d.D), ws.qt, d.Lq());
    }

    /// One head: out[l, 0..hd) = softmax_j(mask(q_l·k_j / sqrt(hd))) · V. Allowed: j <= l and (j == l or j
    /// not padding). The logits are computed transposed, S^T = K_h·Q_h^T ([key, query]), so that the softmax
    /// over keys runs down the columns, one query per lane (kernels::softmax_columns), and P·V is gemm_tn on
    /// S^T. Causal heads compute only the blocks of S^T on or above the diagonal blocks and, per block of
    /// queries, P·V over the keys up to its last query (the omitted terms are exact zeros). Q_h^T and S^T
    /// have rows of Lq (whole vectors) and the product and the softmax run over all Lq columns (queries
    /// past L: zero columns of Q_h^T, never read), so that every store is a whole vector: masked stores
    /// are not forwarded to the loads that follow them.
    static void head(const BranchDims& d, Workspace& ws, int h, Mask mask, float* out, int ldo) {
        const int L = dim_or<S::L>(d.L), Lq = dim_or<Lq_of(S::L)>(d.Lq()), D = dim_or<S::D>(d.D), hd = dim_or<S::hd>(d.hd);
        const float* qt = ws.qt + static_cast<std::ptrdiff_t>(h) * hd * Lq;
        const bool causal = mask != Mask::refiner_additive;  // keys after the query are never allowed
        const float* kh = ws.qkv + D + h * hd;
        const float* vh = ws.qkv + 2 * D + h * hd;
        constexpr int W = kernels::vfloat::size;  // softmax_columns' query block
        if (causal)  // key block [k0, k0 + W) is read by the query blocks from k0 on only
            for (int k0 = 0; k0 < L; k0 += W)
                kernels::gemm(std::min(W, L - k0), Lq - k0, hd, kh + static_cast<std::ptrdiff_t>(k0) * 3 * D, 3 * D, qt + k0, Lq,
                              ws.logits + static_cast<std::ptrdiff_t>(k0) * Lq + k0, Lq);
        else
            kernels::gemm<S::L, Lq_of(S::L), S::hd>(L, Lq, hd, kh, 3 * D, qt, Lq, ws.logits, Lq);
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        // Refiner (additive): blocked logits stay in the softmax, raised by 1. Excluded (−inf) or replaced
        // by −1e9: either way a blocked position's weight is exactly 0 (the diagonal is always allowed, and
        // e^(−1e9 − max) is +0 in float as e^−inf is), while the largest allowed logit is above about
        // −1e9 + 100. The weights stay unnormalised; P·V's row for query q is scaled by 1/Σe (ws.inv).
        if (!causal) {
            kernels::softmax_columns<S::L, Lq_of(S::L)>(ws.logits, L, Lq, Lq, scale, ws.pad, kernels::Blocked::plus_one, false, ws.inv);
            kernels::gemm_tn<S::L, S::hd, S::L>(L, hd, L, ws.logits, Lq, vh, 3 * D, out, ldo, ws.inv, kernels::Init::row_scale);
            return;
        }
        kernels::softmax_columns<S::L, Lq_of(S::L)>(ws.logits, L, Lq, Lq, scale, ws.pad, kernels::Blocked::excluded, true, ws.inv);
        for (int q0 = 0; q0 < L; q0 += W)  // query block [q0, q0 + W): weights of the keys before q0 + W only
            kernels::gemm_tn(std::min(W, L - q0), hd, std::min(L, q0 + W), ws.logits + q0, Lq, vh, 3 * D,
                             out + static_cast<std::ptrdiff_t>(q0) * ldo, ldo, ws.inv + q0, kernels::Init::row_scale);
    }
};

/// Scratch of an attention block's tail: the heads' output o, the post-attention rows s ([L, D] each)
/// and the FFN's hidden rows ([L, 2D]).
struct BlockWorkspace {
    float *o, *s, *hid;
    template <class A>
    constexpr void carve(A& a, const BranchDims& d) {
        const auto L = static_cast<std::size_t>(d.L), D = static_cast<std::size_t>(d.D);
        o = a.take(L * D);
        s = a.take(L * D);
        hid = a.take(L * 2 * D);
    }
};

/// An attention block's tail on L rows of width D: x = LayerNorm(residual + proj(o)) (o: the heads'
/// output, rows ldo apart), then out = FFN(x) + x with the FFN's ReLU fused into its first product.
/// ProjIn: proj's input width when fixed (D for the refiner's out_proj, hd for an interest head's W_o).
template <class S, int ProjIn>
void block_tail(const nn::Linear& proj, int ldo, const float* residual, const float* gamma, const float* beta, const nn::Linear& ffn1,
                const nn::Linear& ffn2, int L, int D, BlockWorkspace& ws, float* out) {
    proj.forward<S::L, ProjIn, S::D>(L, ws.o, ldo, ws.s, D);
    kernels::residual_layer_norm_rows<S::L, S::D>(ws.s, D, residual, D, L, D, gamma, beta);
    ffn1.forward<S::L, S::D, S::FFN>(L, ws.s, D, ws.hid, 2 * D, kernels::Epilogue::relu);
    ffn2.forward<S::L, S::FFN, S::D>(L, ws.hid, 2 * D, out, D);
    nn::add_rows<S::D>(out, D, ws.s, D, L, D);
}

/// The behaviour refiner's weights (all Linear transposed).
struct RefinerWeights {
    nn::Linear in_proj, out_proj, ffn1, ffn2;
    const float* ln_gamma = nullptr;  ///< null when layer_norm is off
    const float* ln_beta = nullptr;
};

/// Behaviour refiner: nn.MultiheadAttention with FuxiCTR's float mask, residual + LayerNorm, FFN + residual.
template <class S>
class BehaviorRefiner {
public:
    static std::string prefix(std::size_t branch) { return "behavior_refiner." + std::to_string(branch); }

    static void expect(const ModelSpec& s, std::size_t branch, std::vector<ExpectedTensor>& out) {
        const auto p = prefix(branch);
        const int D = s.branches[branch].D;
        out.push_back({p + ".attention.in_proj_weight", {3 * D, D}});
        out.push_back({p + ".attention.in_proj_bias", {3 * D}});
        out.push_back({p + ".attention.out_proj.weight", {D, D}});
        out.push_back({p + ".attention.out_proj.bias", {D}});
        out.push_back({p + ".ffn.0.weight", {2 * D, D}});
        out.push_back({p + ".ffn.0.bias", {2 * D}});
        out.push_back({p + ".ffn.2.weight", {D, 2 * D}});
        out.push_back({p + ".ffn.2.bias", {D}});
        if (s.layer_norm) {
            out.push_back({p + ".layer_norm.weight", {D}});
            out.push_back({p + ".layer_norm.bias", {D}});
        }
    }

    static RefinerWeights prepare(const ModelSpec& s, std::size_t branch, const nn::TensorSource& w) {
        const auto p = prefix(branch);
        const int D = s.branches[branch].D;
        RefinerWeights r;
        r.in_proj = w.linear(p + ".attention.in_proj_weight", p + ".attention.in_proj_bias", D, 3 * D);
        r.out_proj = w.linear(p + ".attention.out_proj.weight", p + ".attention.out_proj.bias", D, D);
        r.ffn1 = w.linear(p + ".ffn.0.weight", p + ".ffn.0.bias", D, 2 * D);
        r.ffn2 = w.linear(p + ".ffn.2.weight", p + ".ffn.2.bias", 2 * D, D);
        if (s.layer_norm) {
            r.ln_gamma = w.get(p + ".layer_norm.weight");
            r.ln_beta = w.get(p + ".layer_norm.bias");
        }
        return r;
    }

    using Workspace = BlockWorkspace;

    /// r = refiner(s0) ([L, D] each). The attention workspace's pad must describe the sequence.
    static void forward(const RefinerWeights& w, const BranchDims& d, Mask mask, const float* s0, float* r,
                        typename SelfAttention<S>::Workspace& att, Workspace& ws) {
        const int L = dim_or<S::L>(d.L), D = dim_or<S::D>(d.D), H = dim_or<S::H>(d.H), hd = dim_or<S::hd>(d.hd);
        w.in_proj.forward<S::L, S::D, S::QKV>(L, s0, D, att.qkv, 3 * D);
        SelfAttention<S>::transpose_q(d, att);
        for (int h = 0; h < H; ++h) SelfAttention<S>::head(d, att, h, mask, ws.o + h * hd, D);
        block_tail<S, S::D>(w.out_proj, D, s0, w.ln_gamma, w.ln_beta, w.ffn1, w.ffn2, L, D, ws, r);
    }
};

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::layers
