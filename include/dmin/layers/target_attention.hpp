// dmin/layers/target_attention.hpp — the target-aware attention unit of one interest head: a candidate's
// target embedding attends over z_h through an MLP on [q, z, q−z, q⊙z]; the interest is Σ_l softmax · z_l.
// Holds the load-time rewrite that factorises it, the per-user terms, and three per-candidate paths:
// FuxiCTR's form (the oracle), one candidate, and 16 candidates in SIMD lanes.
#pragma once

#include "dmin/kernels/isa.hpp"
#include <algorithm>
#include <string>
#include <vector>

#include "dmin/kernels/bf16.hpp"
#include "dmin/kernels/gemm.hpp"
#include "dmin/kernels/rowops.hpp"
#include "dmin/layers/self_attention.hpp"
#include "dmin/nn/mlp_block.hpp"
#include "dmin/nn/ops.hpp"
#include "dmin/nn/views.hpp"

namespace dmin::layers {
DMIN_ISA_NAMESPACE_BEGIN

/// One head's target attention. The attention MLP's first layer is rewritten at load from
/// [Wa; Wb; Wc; Wd]^T (acting on [q, z, q−z, q⊙z]) to [Wa+Wc; Wb−Wc; Wd; Wc]^T: fed [q, z, q⊙z, 0] it is
/// FuxiCTR's layer up to the rounding of the sums (q·Wa + z·Wb + (q−z)·Wc = q·(Wa+Wc) + z·(Wb−Wc)), and
/// the factorisation (DESIGN §2) reads its blocks in place: a1(l, c) = u_c·(Wa+Wc)^T + (u_c ⊙ z_l)·Wd^T + g_l.
struct TargetAttentionWeights {
    const float* pos_emb = nullptr;  ///< [L, P] or null
    nn::Linear w_proj;               ///< [(D+P) → D]; transposed rows 0..D-1 act on t, D.. on pos_emb
    nn::Mlp attn;                    ///< over [q, z, q⊙z, 0] (4D wide) → … → 1, first layer rewritten
    const float* k = nullptr;        ///< [L, D]  k_l = W_p·p_l + b_proj (0 without position embedding)
    const float* wac = nullptr;      ///< [D, A1] (W_a + W_c)^T
    const float* wbcd = nullptr;     ///< [2D, A1] [(W_b − W_c)^T; W_d^T]: the per-user terms are one product
    const float* wd = nullptr;       ///< [D, A1] W_d^T (rows D..2D of wbcd)
    const float* g0 = nullptr;       ///< [L, A1] k_l·(W_a + W_c)^T + b_1
    /// bf16 precision only (null otherwise): W_d^T as bf16 pairs along k, for the one-candidate rows
    /// ([Dp][A1]) and by unit for the lanes ([A1][Dp]), Dp = bf16_pairs(D). The other attention layers
    /// carry theirs in their nn::Linear (wp, wpa).
    const std::uint32_t* wd_p = nullptr;
    const std::uint32_t* wd_pa = nullptr;
};

/// The attention MLP's first layer, [Wa; Wb; Wc; Wd] → [Wa+Wc; Wb−Wc; Wd; Wc] in place (blocks of `blk`
/// floats; no second copy): see TargetAttentionWeights.
inline void rewrite_target_first_layer(float* w1, std::ptrdiff_t blk) {
    for (std::ptrdiff_t e = 0; e < blk; ++e) {
        const float wc = w1[2 * blk + e];
        w1[e] += wc;
        w1[blk + e] -= wc;
        w1[2 * blk + e] = w1[3 * blk + e];
        w1[3 * blk + e] = wc;
    }
}

/// bf16 precision: W_d^T in both pair layouts, and every later hidden layer's weights (load time).
inline void pack_target_attention_bf16(TargetAttentionWeights& t, int D, WordStore& store) {
    nn::Linear wd{D, t.attn.hidden[0].lin.out, t.wd, nullptr};
    nn::pack_bf16(wd, D, true, store);
    t.wd_p = wd.wp;
    t.wd_pa = wd.wpa;
    for (std::size_t k = 1; k < t.attn.hidden.size(); ++k) nn::pack_bf16(t.attn.hidden[k].lin, t.attn.hidden[k].lin.in, true, store);
}

/// Candidates whose attention runs together, one per SIMD lane (TargetAttention::lanes).
inline constexpr int kTargetLanes = 16;
/// Sequence positions per column chunk of the lane layout: the chunk's activations (A1 + A2 rows ×
/// kTargetChunk·kTargetLanes columns) stay in L1 between the MLP's layers. Five positions are five zmm
/// vectors, one 5 × 5 register tile wide (kernels::kFiveByFive), and L = 5, 50, 100 split without a
/// short chunk.
inline constexpr int kTargetChunk = 5;

/// Per-branch state of the target attention: the per-user terms of every head and the scratch of
/// the per-candidate paths.
struct TargetAttentionWorkspace {
    float *g, *zv, *zmean, *xu;  ///< per user: [H][L][A1], [H][L][D], [H][D]; xu: [L][2D] scratch
    const float* zp = nullptr;   ///< z's valid rows per head, packed: zv, or z itself when none is padding
    int nv = 0;                  ///< valid (non-padding) positions
    int* valid = nullptr;        ///< [L]: their indices, ascending
    float *t, *tu, *a0, *w, *interest;       ///< one candidate: [D], [D], [A1], [H][L], [H][D]
    float *q_in, *q, *feat;                  ///< the reference path: [L][D+P], [L][D], [L][4D]
    double* acc;                             ///< the reference path's double sums: [max(D, att_w)]
    float *tile_x, *tile_a, *tile_b, *tile_e;  ///< one candidate's MLP rows: [L][D], [L][att_w]², [L]
    float *lane_t, *lane_u, *lane_i, *lane_a0, *lane_e, *lane_x;  ///< lanes: [D|D|D|A1|L][lanes], [D][chunk]
    float* lane_h[2];                                             ///< lanes: [att_w][chunk] each
    std::uint32_t *tile_p, *lane_p;  ///< bf16 pairs of a product's input: [L][kpw], [kpw][chunk] (kpw: pairs of max(D, att_w))
    int att_w = 1;                                                ///< widest attention-MLP layer

    template <class A>
    constexpr void carve(A& a, const BranchDims& d, int widest) {
        const auto L = static_cast<std::size_t>(d.L), D = static_cast<std::size_t>(d.D), H = static_cast<std::size_t>(d.H);
        const auto A1 = static_cast<std::size_t>(d.A1), P = static_cast<std::size_t>(d.P);
        att_w = widest;
        const auto aw = static_cast<std::size_t>(widest), lanes = std::size_t{kTargetLanes}, chunk = std::size_t{kTargetChunk * kTargetLanes};
        g = a.take(H * L * A1); zv = a.take(H * L * D); zmean = a.take(H * D); xu = a.take(L * 2 * D);
        t = a.take(D); tu = a.take(D); a0 = a.take(A1); w = a.take(H * L); interest = a.take(H * D);
        q_in = a.take(L * (D + P)); q = a.take(L * D); feat = a.take(L * 4 * D);
        acc = a.template take_as<double>(2 * std::max(D, aw));  // room for max(D, aw) doubles
        tile_x = a.take(L * D); tile_a = a.take(L * aw); tile_b = a.take(L * aw); tile_e = a.take(L);
        lane_t = a.take(D * lanes); lane_u = a.take(D * lanes); lane_i = a.take(D * lanes); lane_a0 = a.take(A1 * lanes);
        lane_e = a.take(L * lanes); lane_x = a.take(D * chunk);
        lane_h[0] = a.take(aw * chunk); lane_h[1] = a.take(aw * chunk);
        const auto kpw = static_cast<std::size_t>(kernels::bf16_pairs(std::max(d.D, widest)));
        tile_p = a.template take_as<std::uint32_t>(L * kpw);
        lane_p = a.template take_as<std::uint32_t>(kpw * chunk);
        valid = a.template take_as<int>(L);
    }
};

template <class S>
class TargetAttention {
public:
    static constexpr int kLanes = kTargetLanes;
    static constexpr int kChunk = kTargetChunk;
    using Units = typename S::attention_units;
    static constexpr int kLast = nn::last_width<Units>();  ///< the one-unit head's input width, when fixed

    static std::string prefix(std::size_t branch, int h) {
        return "multi_interest_extractor." + std::to_string(branch) + ".target_attention." + std::to_string(h);
    }
    static nn::MlpConfig mlp_config(const ModelSpec& s, int D) {
        return {4 * D, s.attention_units, s.attention_acts, s.attention_dropout, false, false};
    }

    static void expect(const ModelSpec& s, std::size_t branch, int h, std::vector<ExpectedTensor>& out) {
        const auto p = prefix(branch, h);
        const int D = s.branches[branch].D, L = s.branches[branch].L, P = s.pos_emb_dim;
        if (s.use_pos_emb) {
            out.push_back({p + ".pos_emb", {L, P}});
            out.push_back({p + ".W_proj.weight", {D, D + P}});
            out.push_back({p + ".W_proj.bias", {D}});
        }
        nn::expect_mlp(out, p + ".attn_mlp", mlp_config(s, D));
    }

    /// Floats of load-time derived tensors (k, g0) one head needs, taken from `a`.
    template <class A>
    static void take_derived(A& a, const BranchDims& d, float** k, float** g0) {
        *k = a.take(static_cast<std::size_t>(d.L) * static_cast<std::size_t>(d.D));
        *g0 = a.take(static_cast<std::size_t>(d.L) * static_cast<std::size_t>(d.A1));
    }

    /// Reads head h's tensors, rewrites the first layer, and precomputes k and g0 into `derived`.
    /// With `bf16` (bf16 precision), the per-candidate products' weights are also packed into it.
    template <class A>
    static TargetAttentionWeights prepare(const ModelSpec& s, std::size_t branch, int h, const BranchDims& d,
                                          const nn::TensorSource& w, A& derived, WordStore* bf16 = nullptr) {
        const auto p = prefix(branch, h);
        const int D = d.D;
        TargetAttentionWeights t;
        if (s.use_pos_emb) {
            t.pos_emb = w.get(p + ".pos_emb");
            t.w_proj = w.linear(p + ".W_proj.weight", p + ".W_proj.bias", D + d.P, D);
        }
        t.attn = nn::build_mlp(w, p + ".attn_mlp", mlp_config(s, D));
        float *k, *g0;
        take_derived(derived, d, &k, &g0);
        t.k = k;
        t.g0 = g0;
        if (!t.attn.hidden.empty()) {
            const int A1 = d.A1;
            float* w1 = w.get(nn::mlp_key(p + ".attn_mlp", 0, "weight"));  // the storage attn.hidden[0] views
            rewrite_target_first_layer(w1, static_cast<std::ptrdiff_t>(D) * A1);
            t.wac = w1;
            t.wbcd = w1 + static_cast<std::ptrdiff_t>(D) * A1;
            t.wd = w1 + 2 * static_cast<std::ptrdiff_t>(D) * A1;
            if (t.pos_emb)  // k_l = p_l·Wp^T + b_proj
                kernels::gemm(d.L, D, d.P, t.pos_emb, d.P, t.w_proj.wt + static_cast<std::ptrdiff_t>(D) * D, D, k, D, t.w_proj.b,
                              kernels::Init::bias);
            kernels::gemm(d.L, A1, D, k, D, t.wac, A1, g0, A1, t.attn.hidden[0].lin.b, kernels::Init::bias);
            if (bf16) pack_target_attention_bf16(t, D, *bf16);
        }
        return t;
    }

    using Workspace = TargetAttentionWorkspace;

    /// The per-user terms of every head from z ([H][L][D]); `valid`/`nv` must describe the sequence.
    static void user_terms(const std::vector<TargetAttentionWeights>& heads, const BranchDims& d, const float* z, Workspace& ws) {
        const int L = dim_or<S::L>(d.L), D = dim_or<S::D>(d.D);
        ws.zp = ws.nv == L ? z : ws.zv;
        for (std::size_t h = 0; h < heads.size(); ++h) {
            const float* zh = z + static_cast<std::ptrdiff_t>(h) * L * D;
            if (ws.nv == 0) nn::mean_rows<S::D>(zh, L, D, ws.zmean + static_cast<std::ptrdiff_t>(h) * D);
            head_user_terms(heads[h], d, zh, static_cast<int>(h), ws);
        }
    }

    /// Head h's interest I ([D]) for the target embedding in ws.t, factorised (valid positions only, one
    /// A1×D product per position); its attention weights go to ws.w's row h.
    static void one(const TargetAttentionWeights& hw, const BranchDims& d, Workspace& ws, int h, float* I) {
        const int L = dim_or<S::L>(d.L), D = dim_or<S::D>(d.D), nv = ws.nv;
        float* w = ws.w + static_cast<std::ptrdiff_t>(h) * L;
        if (nv == 0) {  // all padding: every score is −1e9, softmax is uniform → mean of z
            std::copy(ws.zmean + static_cast<std::ptrdiff_t>(h) * D, ws.zmean + static_cast<std::ptrdiff_t>(h + 1) * D, I);
            std::fill(w, w + L, 1.0f / static_cast<float>(L));
            return;
        }
        const float* u = project_target(hw, d, ws);
        first_layer_rows(hw, d, ws, h, u);
        const float* cur = hidden_rows(hw, nv, ws);
        // Ordered projection and softmax: bit-identical to lanes(), so a candidate's score does not depend
        // on whether it was scored alone or in a group.
        hw.attn.template project_out_ordered<kLast>(nv, cur, ws.att_w, ws.tile_e);
        kernels::softmax_ordered(ws.tile_e, nv);
        std::fill(w, w + L, 0.0f);
        for (int v = 0; v < nv; ++v) w[ws.valid[static_cast<std::size_t>(v)]] = ws.tile_e[v];
        const float* zv = ws.zp + static_cast<std::ptrdiff_t>(h) * L * D;
        kernels::gemm<1, S::D, Dynamic>(1, D, nv, ws.tile_e, nv, zv, D, I, D);  // I = Σ_v e_v · z_v
    }

    /// Head h's interests for n candidates at once, feature-major with one candidate per SIMD lane: the
    /// target embeddings are in ws.lane_t ([D][kLanes]); activations are [units][position·kLanes + lane].
    /// Layer 1 is Wd·(u_c ⊙ z_v) on top of g_v + a0_c, the MLP runs on column chunks of kChunk positions
    /// that stay in L1, the softmax over positions is lane-wise, and I_c = Σ_v e_v,c z_v is one product.
    /// Writes I_c to x + c·ldx for c < n.
    static void lanes(const TargetAttentionWeights& hw, const BranchDims& d, Workspace& ws, int h, int n, float* x, int ldx) {
        const int L = dim_or<S::L>(d.L), D = dim_or<S::D>(d.D), A1 = dim_or<S::A1>(d.A1), nv = ws.nv;
        if (nv == 0) {  // all padding: the interest is the mean of z (see one())
            const float* zm = ws.zmean + static_cast<std::ptrdiff_t>(h) * D;
            for (int c = 0; c < n; ++c) std::copy(zm, zm + D, x + static_cast<std::ptrdiff_t>(c) * ldx);
            return;
        }
        const float* ut = ws.lane_t;  // u_c = W_t·t_c and a0_c = (Wa+Wc)·u_c for all lanes
        if (hw.pos_emb) {
            kernels::gemm_tn<S::D, kLanes, S::D>(D, kLanes, D, hw.w_proj.wt, D, ws.lane_t, kLanes, ws.lane_u, kLanes);
            ut = ws.lane_u;
        }
        kernels::gemm_tn<S::A1, kLanes, S::D>(A1, kLanes, D, hw.wac, A1, ut, kLanes, ws.lane_a0, kLanes);
        for (int p0 = 0; p0 < nv; p0 += kChunk) lane_chunk(hw, d, ws, h, p0, ut);
        const float* zv = ws.zp + static_cast<std::ptrdiff_t>(h) * L * D;
        kernels::softmax_lanes(ws.lane_e, nv, kLanes);
        kernels::gemm_tn<S::D, kLanes, Dynamic>(D, kLanes, nv, zv, D, ws.lane_e, kLanes, ws.lane_i, kLanes);  // I^T = Z^T·E
        kernels::transpose(ws.lane_i, kLanes, D, n, x, ldx);                          // row c: candidate c's interest
    }

    /// FuxiCTR's TargetAttention for the target embedding in ws.t, as Eigen expressions over views sized
    /// by the shape: q_l = W_proj[t; p_l] + b, the MLP over [q, z, q−z, q⊙z] for all L (in the rewritten
    /// form: q·(Wa+Wc) + z·(Wb−Wc) + (q⊙z)·Wd), −1e9 on padding (pad[l] = 1), softmax over L, weighted
    /// sum of z. The oracle of one() and lanes(), written for reading, not speed.
    static void reference(const TargetAttentionWeights& hw, const BranchDims& d, Workspace& ws, int h, const float* zh,
                          const float* pad, float* I) {
        const int L = dim_or<S::L>(d.L), D = dim_or<S::D>(d.D);
        constexpr int F = S::D == Dynamic ? Dynamic : 4 * S::D;  // the MLP's input [q, z, q⊙z, 0]
        const auto z = nn::view<S::L, S::D>(zh, L, D, D);
        const auto q = queries(hw, d, ws);
        auto feat = nn::view<S::L, F>(ws.feat, L, 4 * D, 4 * D);
        feat.leftCols(D) = q;
        feat.middleCols(D, D) = z;
        feat.middleCols(2 * D, D) = q.cwiseProduct(z);
        feat.rightCols(D).setZero();
        float* const bufs[2] = {ws.tile_a, ws.tile_b};
        float* w = ws.w + static_cast<std::ptrdiff_t>(h) * L;
        nn::mlp_reference_from<S::L, typename S::attention_units, 0, F>(hw.attn, feat, bufs, ws.att_w, w, ws.acc);
        auto e = nn::view<1, S::L>(w, 1, L, L);
        for (int l = 0; l < L; ++l)
            if (pad[l] != 0.0f) e(l) = -1e9f;
        const double top = *std::max_element(w, w + L);  // not maxCoeff(): GCC 12 -Wmaybe-uninitialized in its AVX-512 reduction
        const auto ex = (e.template cast<double>().array() - top).exp();
        e = (ex / ex.sum()).matrix().template cast<float>();
        nn::columns_reference<S::L, S::D>(e, zh, L, D, nullptr, nn::view<1, S::D>(I, 1, D, D), ws.acc);  // I = Σ_l e_l z_l
    }

private:
    /// g_l = g0_l + [z_l, k_l ⊙ z_l]·[Wb−Wc; Wd]^T for the valid positions (packed), as one product with
    /// K = 2D; the valid rows of z_h are packed into zv too (unless every position is valid: then zp is z
    /// itself, and g0 is copied in one piece).
    static void head_user_terms(const TargetAttentionWeights& hw, const BranchDims& d, const float* zh, int h, Workspace& ws) {
        const int L = dim_or<S::L>(d.L), D = dim_or<S::D>(d.D), A1 = dim_or<S::A1>(d.A1), nv = ws.nv;
        float* g = ws.g + static_cast<std::ptrdiff_t>(h) * L * A1;
        float* zv = ws.zv + static_cast<std::ptrdiff_t>(h) * L * D;
        if (nv == L) std::copy(hw.g0, hw.g0 + static_cast<std::ptrdiff_t>(L) * A1, g);
        for (int v = 0; v < nv; ++v) {
            const int l = ws.valid[static_cast<std::size_t>(v)];
            const float* zl = zh + static_cast<std::ptrdiff_t>(l) * D;
            const float* kl = hw.k + static_cast<std::ptrdiff_t>(l) * D;
            float* xv = ws.xu + static_cast<std::ptrdiff_t>(v) * 2 * D;
            for (int e = 0; e < D; ++e) {
                xv[e] = zl[e];
                xv[D + e] = kl[e] * zl[e];
            }
            if (nv < L) {
                std::copy(zl, zl + D, zv + static_cast<std::ptrdiff_t>(v) * D);
                std::copy(hw.g0 + static_cast<std::ptrdiff_t>(l) * A1, hw.g0 + static_cast<std::ptrdiff_t>(l + 1) * A1,
                          g + static_cast<std::ptrdiff_t>(v) * A1);
            }
        }
        constexpr int D2 = S::D == Dynamic ? Dynamic : 2 * S::D;  // [z_l; k_l ⊙ z_l]: xu's width
        if (nv > 0) kernels::gemm<Dynamic, S::A1, D2>(nv, A1, 2 * D, ws.xu, 2 * D, hw.wbcd, A1, g, A1, nullptr, kernels::Init::accumulate);
    }

    /// u = W_t·t (the target part of W_proj; t itself without position embeddings), a0 = u·(Wa+Wc)^T.
    static const float* project_target(const TargetAttentionWeights& hw, const BranchDims& d, Workspace& ws) {
        const int D = dim_or<S::D>(d.D), A1 = dim_or<S::A1>(d.A1);
        const float* u = ws.t;
        if (hw.pos_emb) {
            kernels::gemm<1, S::D, S::D>(1, D, D, ws.t, D, hw.w_proj.wt, D, ws.tu, D);
            u = ws.tu;
        }
        kernels::gemm<1, S::A1, S::D>(1, A1, D, u, D, hw.wac, A1, ws.a0, A1);
        return u;
    }

    /// The first attention layer's rows for the valid positions: act(g_v + a0 + (u ⊙ z_v)·Wd^T).
    static void first_layer_rows(const TargetAttentionWeights& hw, const BranchDims& d, Workspace& ws, int h, const float* u) {
        const int L = dim_or<S::L>(d.L), D = dim_or<S::D>(d.D), A1 = dim_or<S::A1>(d.A1), nv = ws.nv;
        const float* g = ws.g + static_cast<std::ptrdiff_t>(h) * L * A1;
        const float* zv = ws.zp + static_cast<std::ptrdiff_t>(h) * L * D;
        const float* __restrict a0 = ws.a0;
        for (int v = 0; v < nv; ++v) {
            const float* __restrict zl = zv + static_cast<std::ptrdiff_t>(v) * D;
            float* __restrict x = ws.tile_x + static_cast<std::ptrdiff_t>(v) * D;
            for (int e = 0; e < D; ++e) x[e] = u[e] * zl[e];
            float* __restrict a = ws.tile_a + static_cast<std::ptrdiff_t>(v) * ws.att_w;
            const float* __restrict gl = g + static_cast<std::ptrdiff_t>(v) * A1;
            for (int j = 0; j < A1; ++j) a[j] = gl[j] + a0[j];
        }
        const auto& h1 = hw.attn.hidden[0];
        if (hw.wd_p) {  // bf16: u ⊙ z_v enters the product rounded, the same pairs as lane_chunk's
            const int dp = kernels::bf16_pairs(D);
            kernels::pack_bf16_rows(ws.tile_x, nv, D, D, ws.tile_p, dp);
            kernels::gemm_bf16(nv, A1, dp, ws.tile_p, dp, hw.wd_p, A1, ws.tile_a, ws.att_w, nullptr, kernels::Init::accumulate,
                               h1.epilogue());
        } else
            kernels::gemm<Dynamic, S::A1, S::D>(nv, A1, D, ws.tile_x, D, hw.wd, A1, ws.tile_a, ws.att_w, nullptr, kernels::Init::accumulate, h1.epilogue());
        h1.finish(nv, ws.tile_a, ws.att_w);
    }

    /// The remaining hidden layers on rows, ping-pong between tile_b and tile_a; returns the last output.
    /// With the shape's attention widths fixed, each layer is a product of constant widths.
    static const float* hidden_rows(const TargetAttentionWeights& hw, int nv, Workspace& ws) {
        const float* cur = ws.tile_a;
        float* bufs[2] = {ws.tile_b, ws.tile_a};
        int which = 0;
        nn::for_each_hidden<Units, 1>(hw.attn.hidden.size(), [&](std::size_t k, auto in, auto out) {
            hw.attn.hidden[k].template forward<Dynamic, decltype(in)::value, decltype(out)::value>(nv, cur, ws.att_w, bufs[which], ws.att_w,
                                                                                                 ws.tile_p);
            cur = bufs[which];
            which ^= 1;
        });
        return cur;
    }

    /// One column chunk of lanes(): positions [p0, p0 + kChunk) of all lanes through the MLP into lane_e.
    static void lane_chunk(const TargetAttentionWeights& hw, const BranchDims& d, Workspace& ws, int h, int p0, const float* ut) {
        using kernels::vfloat;
        constexpr int W = vfloat::size;
        static_assert(kLanes % W == 0, "kLanes must be a whole number of vectors");
        constexpr int ld = kChunk * kLanes;
        const int L = dim_or<S::L>(d.L), D = dim_or<S::D>(d.D), A1 = dim_or<S::A1>(d.A1);
        const int np = std::min(kChunk, ws.nv - p0), cols = np * kLanes;
        const float* zv = ws.zp + static_cast<std::ptrdiff_t>(h) * L * D;
        for (int q = 0; q < np; ++q) {
            const float* zl = zv + static_cast<std::ptrdiff_t>(p0 + q) * D;
            for (int e = 0; e < D; ++e) {
                const vfloat ze(zl[e]);
                for (int w = 0; w < kLanes; w += W) (vfloat::load(ut + e * kLanes + w) * ze).store(ws.lane_x + e * ld + q * kLanes + w);
            }
        }
        // Layer 1 starts from a0_c + g_v inside the register tiles (h1[j][q·kLanes + c] = a0[j][c] + g[p0 + q][j]).
        const float* g = ws.g + static_cast<std::ptrdiff_t>(h) * L * A1;
        const kernels::OuterSum a0_g{ws.lane_a0, kLanes, g + static_cast<std::ptrdiff_t>(p0) * A1, A1, kLanes};
        const auto& mlp = hw.attn;
        const auto& first = mlp.hidden[0];
        float* h1 = ws.lane_h[0];
        if (hw.wd_pa) {  // bf16 (see first_layer_rows)
            const int dp = kernels::bf16_pairs(D);
            kernels::pack_bf16_units(ws.lane_x, D, cols, ld, ws.lane_p, ld);
            kernels::gemm_bf16(A1, cols, dp, hw.wd_pa, dp, ws.lane_p, ld, h1, ld, a0_g, first.epilogue());
        } else
            kernels::gemm_tn(A1, cols, D, hw.wd, A1, ws.lane_x, ld, h1, ld, a0_g, first.epilogue());
        first.finish_units(cols, h1, ld);
        const float* cur = h1;
        int which = 1;
        // Only the output widths are constants: with the column count runtime, a constant K would compile
        // every register tile for that K (kernels::detail::tile_used; benchmarks/RESULTS.md §6).
        nn::for_each_hidden<Units, 1>(mlp.hidden.size(), [&](std::size_t k, auto, auto out) {
            mlp.hidden[k].template forward_units<decltype(out)::value>(cols, cur, ld, ws.lane_h[which], ld, ws.lane_p);
            cur = ws.lane_h[which];
            which ^= 1;
        });
        kernels::gemm_tn(1, cols, mlp.head.in, mlp.head.wt, 1, cur, ld, ws.lane_e + p0 * kLanes, cols, mlp.head.b, kernels::Init::row_bias);
    }

    /// q_l = W_proj·[t; p_l] + b for every position (t alone without position embeddings), into ws.q.
    static nn::ConstView<S::L, S::D> queries(const TargetAttentionWeights& hw, const BranchDims& d, Workspace& ws) {
        const int L = dim_or<S::L>(d.L), D = dim_or<S::D>(d.D), P = dim_or<S::P>(d.P);
        constexpr int DP = S::D == Dynamic || S::P == Dynamic ? Dynamic : S::D + S::P;  // [t; p_l]
        auto q = nn::view<S::L, S::D>(ws.q, L, D, D);
        const auto t = nn::view<1, S::D>(ws.t, 1, D, D);
        if (!hw.pos_emb) {
            q.rowwise() = t;
        } else {
            auto q_in = nn::view<S::L, DP>(ws.q_in, L, D + P, D + P);
            q_in.leftCols(D).rowwise() = t;
            q_in.rightCols(P) = nn::view<S::L, S::P>(hw.pos_emb, L, P, P);
            nn::linear_reference<DP, S::D>(hw.w_proj, q_in, q, ws.acc);
        }
        return nn::view<S::L, S::D>(static_cast<const float*>(ws.q), L, D, D);
    }
};

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::layers
