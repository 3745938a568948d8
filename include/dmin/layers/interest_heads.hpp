// dmin/layers/interest_heads.hpp — the multi-interest extractor: one causal self-attention head per interest
// over the refined sequence, then per head W_o, residual + LayerNorm, FFN + residual: z_h ([L, D]) per head.
#pragma once

#include "dmin/kernels/isa.hpp"
#include <string>
#include <vector>

#include "dmin/layers/self_attention.hpp"

namespace dmin::layers {
DMIN_ISA_NAMESPACE_BEGIN

/// Head h's tail after its attention output: W_o (hd → D, no bias), LayerNorm, FFN.
struct InterestHeadWeights {
    nn::Linear w_o, ffn1, ffn2;
    const float* ln_gamma = nullptr;  ///< null when layer_norm is off
    const float* ln_beta = nullptr;
};

struct InterestHeadsWeights {
    nn::Linear qkv;  ///< W_qkv (no bias), every head's Q, K, V at once
    std::vector<InterestHeadWeights> heads;
};

template <class S>
class InterestHeads {
public:
    static std::string prefix(std::size_t branch) { return "multi_interest_extractor." + std::to_string(branch); }

    static void expect(const ModelSpec& s, std::size_t branch, std::vector<ExpectedTensor>& out) {
        const auto p = prefix(branch);
        const int D = s.branches[branch].D, H = s.num_heads;
        out.push_back({p + ".W_qkv.weight", {3 * D, D}});
        for (int h = 0; h < H; ++h) {
            const auto hs = std::to_string(h);
            out.push_back({p + ".W_o." + hs + ".weight", {D, D / H}});
            if (s.layer_norm) {
                out.push_back({p + ".layer_norm." + hs + ".weight", {D}});
                out.push_back({p + ".layer_norm." + hs + ".bias", {D}});
            }
            out.push_back({p + ".ffn." + hs + ".0.weight", {2 * D, D}});
            out.push_back({p + ".ffn." + hs + ".0.bias", {2 * D}});
            out.push_back({p + ".ffn." + hs + ".2.weight", {D, 2 * D}});
            out.push_back({p + ".ffn." + hs + ".2.bias", {D}});
        }
    }

    static InterestHeadsWeights prepare(const ModelSpec& s, std::size_t branch, const nn::TensorSource& w) {
        const auto p = prefix(branch);
        const int D = s.branches[branch].D, H = s.num_heads;
        InterestHeadsWeights x;
        x.qkv = w.linear(p + ".W_qkv.weight", "", D, 3 * D);
        for (int h = 0; h < H; ++h) {
            const auto hs = std::to_string(h);
            InterestHeadWeights hw;
            hw.w_o = w.linear(p + ".W_o." + hs + ".weight", "", D / H, D);
            if (s.layer_norm) {
                hw.ln_gamma = w.get(p + ".layer_norm." + hs + ".weight");
                hw.ln_beta = w.get(p + ".layer_norm." + hs + ".bias");
            }
            hw.ffn1 = w.linear(p + ".ffn." + hs + ".0.weight", p + ".ffn." + hs + ".0.bias", D, 2 * D);
            hw.ffn2 = w.linear(p + ".ffn." + hs + ".2.weight", p + ".ffn." + hs + ".2.bias", 2 * D, D);
            x.heads.push_back(hw);
        }
        return x;
    }

    using Workspace = BlockWorkspace;

    /// z ([H][L][D]) from the refined sequence r ([L, D]). The attention workspace's pad must describe
    /// the sequence. Padding positions are masked by replacing their logits with −1e9, as FuxiCTR does.
    static void forward(const InterestHeadsWeights& w, const BranchDims& d, const float* r, float* z,
                        typename SelfAttention<S>::Workspace& att, Workspace& ws) {
        const int L = dim_or<S::L>(d.L), D = dim_or<S::D>(d.D), H = dim_or<S::H>(d.H), hd = dim_or<S::hd>(d.hd);
        w.qkv.forward<S::L, S::D, S::QKV>(L, r, D, att.qkv, 3 * D);
        SelfAttention<S>::transpose_q(d, att);
        for (int h = 0; h < H; ++h) {
            SelfAttention<S>::head(d, att, h, Mask::replace, ws.o, hd);
            const auto& hw = w.heads[static_cast<std::size_t>(h)];
            block_tail<S, S::hd>(hw.w_o, hd, r, hw.ln_gamma, hw.ln_beta, hw.ffn1, hw.ffn2, L, D, ws, z + static_cast<std::ptrdiff_t>(h) * L * D);
        }
    }
};

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::layers
