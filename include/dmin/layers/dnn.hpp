// dmin/layers/dnn.hpp — the prediction MLP over the concatenated interests and features: its input order
// (candidate pieces first), BatchNorm folded into the Linears, DNN weights in column panels, and the split
// of the first layer into a part computed once per request and a part per candidate.
#pragma once

#include "dmin/kernels/isa.hpp"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "dmin/layers/embedding.hpp"
#include "dmin/nn/mlp.hpp"
#include "dmin/nn/mlp_block.hpp"
#include "dmin/nn/views.hpp"
#include "dmin/shape.hpp"

namespace dmin::layers {
DMIN_ISA_NAMESPACE_BEGIN

/// Column-panel width of the DNN's layers (nn::Linear::panel): four zmm vectors, the register tile of a
/// 32-candidate block (and two tiles of ymm vectors).
inline constexpr int kDnnPanel = 64;

/// One DNN input piece in FuxiCTR concat order, and where it goes in dmin's permuted input
/// (candidate-dependent pieces first, then request-only pieces).
struct DnnPiece {
    enum Kind { interest, sum_pool, target_x_sum_pool, feature } kind = feature;
    int branch = 0, head = 0, feature_index = 0;
    int width = 0;
    bool per_candidate = false;
    int offset = 0;  ///< in the permuted DNN input
};

/// A feature piece of the DNN input resolved at load: its table, its slot in a candidate row or in the
/// request (FeatureSlot), its width and offset in the permuted input.
struct DnnField {
    Table table;
    int slot, width, offset;
    bool numeric;
};

/// The sizes the DNN's scratch depends on: from its weights (DnnWeights::dims), or, for a compile-time
/// shape that fixes them, from the shape (dmin/dnn_state.hpp).
struct DnnDims {
    int in = 1;               ///< the input width (dnn_input_dim)
    int first_out = 1;        ///< the first layer's output width (1: no hidden layers, the head is first)
    int widest = 1;           ///< the widest input or output of any layer, the input included
    int candidate_width = 0;  ///< the permuted input's candidate part (at most `in`)
};

struct DnnWeights {
    nn::Mlp mlp;                     ///< first layer's input rows permuted like `pieces`
    std::vector<DnnPiece> pieces;    ///< FuxiCTR order
    int candidate_width = 0;         ///< the permuted input's candidate part: [0, candidate_width)
    std::vector<int> interest_offset;          ///< [branch·H + head]
    std::vector<int> target_x_sum_pool_offset;  ///< [branch] (−1 without sum pooling)
    std::vector<DnnField> candidate_fields, request_fields;
    const nn::Linear& first() const { return mlp.hidden.empty() ? mlp.head : mlp.hidden[0].lin; }
    DnnDims dims() const { return {first().in, first().out, std::max(mlp.max_width(), first().in), candidate_width}; }
};

/// The DNN's scratch: the request part, one full input row (the reference path), a block's candidate
/// input rows and its layer outputs.
struct DnnWorkspace {
    static constexpr int kBlock = 32;  ///< candidates per block (Dnn::kBlock)
    float *hu, *xfull, *y0, *y1, *logits;
    float* xc;          ///< a block's candidate part of the input: [kBlock][ldxc]
    double* acc;        ///< the reference path's double sums: [ld]
    std::uint32_t* xp;  ///< bf16 pairs of a block's layer input: [kBlock][bf16_pairs(ld)]
    int ld = 1;    ///< row length of y0, y1
    int ldxc = 1;  ///< row length of xc
    template <class A>
    constexpr void carve(A& a, const DnnDims& d) {
        ld = d.widest;
        ldxc = std::max(1, d.candidate_width);
        const auto block = static_cast<std::size_t>(kBlock);
        hu = a.take(static_cast<std::size_t>(d.first_out));
        xfull = a.take(static_cast<std::size_t>(std::max(1, d.in)));
        y0 = a.take(block * static_cast<std::size_t>(ld));
        y1 = a.take(block * static_cast<std::size_t>(ld));
        logits = a.take(block);
        xc = a.take(block * static_cast<std::size_t>(ldxc));
        acc = a.template take_as<double>(2 * static_cast<std::size_t>(ld));  // 64-byte aligned, room for ld doubles
        xp = a.template take_as<std::uint32_t>(block * static_cast<std::size_t>(kernels::bf16_pairs(ld)));
    }
};

/// The prediction MLP's forward passes. S: the model's shape. Where it fixes the DNN's hidden widths
/// (S::dnn_units), every layer's output width, and every input width but the first layer's (which the
/// model file's features decide), reach the products as constants.
template <class S = dynamic_shape>
class Dnn {
    using Units = typename S::dnn_units;
    static constexpr int kFirst = Units::first;            ///< the first layer's width, when fixed
    static constexpr int kLast = nn::last_width<Units>();  ///< the one-unit head's input width, when fixed

public:
    /// Candidates per block of the candidate part (the row tile of the DNN's products).
    static constexpr int kBlock = DnnWorkspace::kBlock;

    static nn::MlpConfig mlp_config(const ModelSpec& s) {
        return {s.dnn_input_dim, s.dnn_units, s.dnn_acts, s.net_dropout, s.batch_norm, s.bn_only_once};
    }
    static void expect(const ModelSpec& s, std::vector<ExpectedTensor>& out) { nn::expect_mlp(out, "dnn", mlp_config(s)); }

    /// With `bf16` (bf16 precision), the hidden layers' weights are also packed into it for the candidate
    /// blocks (the first layer's candidate rows only: its request part stays float32, once per request).
    static DnnWeights prepare(const ModelSpec& s, const nn::TensorSource& w, const EmbeddingWeights& emb, WordStore* bf16 = nullptr) {
        DnnWeights d;
        d.pieces = pieces(s);
        d.candidate_width = assign_offsets(d.pieces);
        d.mlp = nn::build_mlp(w, "dnn", mlp_config(s));
        const auto lay = nn::mlp_layout(mlp_config(s));
        const int first_idx = lay.hidden.empty() ? lay.out_linear : lay.hidden[0].linear;
        permute_first_layer(d.first(), w.get(nn::mlp_key("dnn", first_idx, "weight")), d.pieces);
        for (std::size_t k = 0; k < d.mlp.hidden.size(); ++k)
            nn::pack_panels(d.mlp.hidden[k].lin, w.get(nn::mlp_key("dnn", lay.hidden[k].linear, "weight")), kDnnPanel);
        if (bf16)
            for (std::size_t k = 0; k < d.mlp.hidden.size(); ++k) {
                auto& lin = d.mlp.hidden[k].lin;
                nn::pack_bf16(lin, k == 0 ? d.candidate_width : lin.in, false, *bf16);
            }
        resolve_offsets(s, emb, d);
        return d;
    }

    using Workspace = DnnWorkspace;

    /// The request's feature pieces (embeddings, numeric values times their embedding) into x, from the
    /// request's ids and values (FeatureSlot::offset layout).
    static void request_fields(const DnnWeights& w, const std::int64_t* ids, const float* values, float* x) {
        for (const auto& f : w.request_fields) fill(f, ids, values, x);
    }
    /// One candidate row's feature pieces into x (cid, cval: the row's ids and values, or null).
    static void candidate_fields(const DnnWeights& w, const std::int64_t* cid, const float* cval, float* x) {
        for (const auto& f : w.candidate_fields) fill(f, cid, cval, x);
    }

    /// Branch i's target ⊙ sum-pool piece (sum pooling on) from the target embedding t and the sum pool sp.
    static void target_x_sum_pool(const DnnWeights& w, std::size_t i, const float* t, const float* sp, int D, float* x) {
        float* out = x + w.target_x_sum_pool_offset[i];
        for (int d = 0; d < D; ++d) out[d] = t[d] * sp[d];
    }

    /// The request part of the first layer, hu = bias + (request pieces of x)·W^T, once per request.
    static void request(const DnnWeights& w, const float* x, Workspace& ws) {
        const nn::Linear& first = w.first();
        const int cw = w.candidate_width;
        first.template product<1, Dynamic, kFirst, kDnnPanel>(1, x + cw, first.in, cw, first.in, ws.hu, first.out, first.b, kernels::Init::bias);
    }

    /// logits[c] for nb candidate rows of xc (candidate pieces only, rows ldx apart) on top of hu. Rows: nb
    /// when fixed at compile time (the one-candidate path).
    template <int Rows = Dynamic>
    static void candidates(const DnnWeights& w, int nb, const float* xc, int ldx, Workspace& ws, float* logits) {
        const nn::Linear& first = w.first();
        const auto ep = w.mlp.hidden.empty() ? kernels::Epilogue::none : w.mlp.hidden[0].epilogue();
        if (w.candidate_width > 0 && first.wp) {  // bf16: the candidate part enters as pairs
            const int kp = kernels::bf16_pairs(w.candidate_width);
            kernels::pack_bf16_rows(xc, nb, w.candidate_width, ldx, ws.xp, kp);
            first.product_bf16(nb, ws.xp, kp, ws.y0, ws.ld, ws.hu, kernels::Init::bias, ep);
        } else if (w.candidate_width > 0) {  // the request part hu (bias included) is every row's initial value
            first.template product<Rows, Dynamic, kFirst, kDnnPanel>(nb, xc, ldx, 0, w.candidate_width, ws.y0, ws.ld, ws.hu, kernels::Init::bias, ep);
        } else {
            for (int c = 0; c < nb; ++c) std::copy(ws.hu, ws.hu + first.out, ws.y0 + static_cast<std::ptrdiff_t>(c) * ws.ld);
            if (ep == kernels::Epilogue::relu)
                for (int c = 0; c < nb * ws.ld; ++c) ws.y0[c] = std::max(ws.y0[c], 0.0f);
        }
        const float* r = tail<Rows>(w, nb, ws, ws.xp);
        std::copy(r, r + nb, logits);
    }

    /// The whole DNN on one full permuted input row (ws.xfull), the first layer at full width, as Eigen
    /// expressions over views sized by the shape's DNN widths (S::dnn_units): the oracle of the
    /// request/candidate split.
    static float reference(const DnnWeights& w, Workspace& ws) {
        const int in = w.first().in;
        float* const bufs[2] = {ws.y0, ws.y1};
        float logit = 0;
        nn::mlp_reference_from<1, Units, 0, Dynamic>(w.mlp, nn::view<1, Dynamic>(ws.xfull, 1, in, in), bufs, ws.ld, &logit, ws.acc);
        return logit;
    }

    /// The model's output for one logit: the probability (binary task) or the logit itself (regression).
    /// Never a wrong score silently: finite inputs can still overflow (a numeric value of 1e38, say).
    static float output(float logit, bool regression) {
        if (!std::isfinite(logit))
            detail::fail("candidate score is not finite (logit ", logit, "): a numeric feature value is too large for this model");
        return regression ? logit : 1.0f / (1.0f + std::exp(-logit));
    }

private:
    static void fill(const DnnField& f, const std::int64_t* ids, const float* values, float* x) {
        if (f.numeric) Embedding::field(f.table, true, 0, values[f.slot], f.width, x + f.offset);
        else Embedding::field(f.table, false, ids[f.slot], 0.0f, f.width, x + f.offset);
    }

    /// Activation of the first layer (its pre-activation, or its fused ReLU output, is in y0) and the
    /// rest of the DNN; returns the logits (nb). `xp`: bf16 scratch (bf16 precision), or null for float32.
    template <int Rows>
    static const float* tail(const DnnWeights& w, int nb, Workspace& ws, std::uint32_t* xp) {
        if (w.mlp.hidden.empty()) {
            for (int c = 0; c < nb; ++c) ws.logits[c] = ws.y0[static_cast<std::ptrdiff_t>(c) * ws.ld];
            return ws.logits;
        }
        w.mlp.hidden[0].finish(nb, ws.y0, ws.ld);
        const float* cur = ws.y0;
        float* bufs[2] = {ws.y1, ws.y0};
        int which = 0;
        nn::for_each_hidden<Units, 1>(w.mlp.hidden.size(), [&](std::size_t k, auto in, auto out) {
            float* dst = bufs[which] == cur ? bufs[which ^ 1] : bufs[which];
            w.mlp.hidden[k].template forward<Rows, decltype(in)::value, decltype(out)::value, kDnnPanel>(nb, cur, ws.ld, dst, ws.ld, xp);
            cur = dst;
            which ^= 1;
        });
        w.mlp.template project_out<kLast>(nb, cur, ws.ld, ws.logits);
        return ws.logits;
    }

    /// The input pieces in FuxiCTR's concat order: per branch the H interests (and the sum pool and the
    /// target ⊙ sum pool), then every non-sequence feature that feeds the DNN.
    static std::vector<DnnPiece> pieces(const ModelSpec& s) {
        std::vector<DnnPiece> out;
        for (std::size_t i = 0; i < s.branches.size(); ++i) {
            const int D = s.branches[i].D;
            for (int h = 0; h < s.num_heads; ++h) out.push_back({DnnPiece::interest, static_cast<int>(i), h, 0, D, true, 0});
            if (s.sum_pooling) {
                out.push_back({DnnPiece::sum_pool, static_cast<int>(i), 0, 0, D, false, 0});
                out.push_back({DnnPiece::target_x_sum_pool, static_cast<int>(i), 0, 0, D, true, 0});
            }
        }
        for (std::size_t f = 0; f < s.features.size(); ++f) {
            const auto& x = s.features[f];
            if (x.type == FeatureType::sequence || !x.in_dnn) continue;
            out.push_back({DnnPiece::feature, 0, 0, static_cast<int>(f), x.dim, x.role == Role::candidate, 0});
        }
        return out;
    }

    /// Offsets in the permuted input, candidate pieces first; returns the candidate part's width.
    static int assign_offsets(std::vector<DnnPiece>& pieces) {
        int off = 0, cand_width = 0;
        for (int pass = 0; pass < 2; ++pass)
            for (auto& pc : pieces)
                if (pc.per_candidate == (pass == 0)) {
                    pc.offset = off;
                    off += pc.width;
                    if (pass == 0) cand_width = off;
                }
        return cand_width;
    }

    /// Permutes the rows of the first layer's W^T ([in, out], writable `wt`) the way the input is.
    static void permute_first_layer(const nn::Linear& first, float* wt, const std::vector<DnnPiece>& pieces) {
        std::vector<float> tmp(wt, wt + static_cast<std::ptrdiff_t>(first.in) * first.out);
        int src = 0;
        for (const auto& pc : pieces) {
            std::copy(tmp.begin() + static_cast<std::ptrdiff_t>(src) * first.out, tmp.begin() + static_cast<std::ptrdiff_t>(src + pc.width) * first.out,
                      wt + static_cast<std::ptrdiff_t>(pc.offset) * first.out);
            src += pc.width;
        }
    }

    static int piece_offset(const std::vector<DnnPiece>& pieces, DnnPiece::Kind k, int branch, int head) {
        for (const auto& pc : pieces)
            if (pc.kind == k && pc.branch == branch && pc.head == head) return pc.offset;
        return -1;
    }

    /// Where the scorer writes each piece: interests, target ⊙ sum pool, and the feature pieces.
    static void resolve_offsets(const ModelSpec& s, const EmbeddingWeights& emb, DnnWeights& d) {
        for (std::size_t i = 0; i < s.branches.size(); ++i) {
            for (int h = 0; h < s.num_heads; ++h) d.interest_offset.push_back(piece_offset(d.pieces, DnnPiece::interest, static_cast<int>(i), h));
            d.target_x_sum_pool_offset.push_back(piece_offset(d.pieces, DnnPiece::target_x_sum_pool, static_cast<int>(i), 0));
        }
        for (const auto& pc : d.pieces) {
            if (pc.kind != DnnPiece::feature) continue;
            const auto f = static_cast<std::size_t>(pc.feature_index);
            const bool numeric = s.features[f].type == FeatureType::numeric;
            const int slot = pc.per_candidate ? emb.slots[f].cand_offset : emb.slots[f].offset;
            (pc.per_candidate ? d.candidate_fields : d.request_fields).push_back({emb.tables[f], slot, pc.width, pc.offset, numeric});
        }
    }
};

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::layers
