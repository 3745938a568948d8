// dmin/scorer.hpp — dmin::Scorer: per-thread request state; user phase once, candidates in blocks, no allocation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "dmin/aligned.hpp"
#include "dmin/error.hpp"
#include "dmin/kernels/gemm.hpp"
#include "dmin/kernels/rowops.hpp"
#include "dmin/model.hpp"
#include "dmin/nn/ops.hpp"

namespace dmin {

/// N candidates in the fast path. Row c holds the candidate-role features in spec order:
/// categorical ids at ids[c·id_stride + Model::slot(f).cand_offset], numeric values at
/// values[c·value_stride + Model::slot(f).cand_offset].
struct Candidates {
    std::size_t count = 0;
    const std::int64_t* ids = nullptr;
    std::size_t id_stride = 0;
    const float* values = nullptr;
    std::size_t value_stride = 0;
};

/// Per-head explanation of one candidate's score.
struct HeadExplanation {
    int branch = 0, head = 0;
    std::vector<float> weights;  ///< target-attention weight per sequence position (sums to 1)
    float contribution = 0;      ///< logit(full) − logit(with this head's interest set to 0)
};

struct Explanation {
    float probability = 0;
    float logit = 0;
    std::vector<HeadExplanation> heads;
    /// Index into `heads` of the head with the largest contribution.
    std::size_t top_head() const {
        std::size_t best = 0;
        for (std::size_t i = 1; i < heads.size(); ++i)
            if (heads[i].contribution > heads[best].contribution) best = i;
        return best;
    }
};

/// Request state for one thread. Construction sizes every buffer; set_user() and score() never
/// allocate. The model must outlive the scorer; many scorers may share one const model.
template <class M>
class Scorer {
    using S = typename M::shape;

public:
    /// Candidates scored per DNN block.
    static constexpr int kBlock = 32;
    /// Candidates whose target attention runs together, one per SIMD lane (interests_lanes).
    static constexpr int kLanes = 16;
    /// Smallest group worth the lane layout; smaller groups (request tails, N < 8) run one candidate
    /// at a time (interest_fast), where no lane is wasted.
    static constexpr int kMinLanes = 8;
    /// Sequence positions per column chunk of the lane layout: the chunk's layer activations
    /// (A1 + A2 rows × kChunk·kLanes columns) stay in L1 between the attention MLP's layers. Five
    /// positions are five zmm vectors, one 5 × 5 register tile wide (kernels::kFiveByFive), and
    /// L = 5, 50, 100 split without a short last chunk.
    static constexpr int kChunk = 5;

    explicit Scorer(const M& model) : m_(model) {
        const auto& spec = model.spec();
        const auto& br = model.branches();
        ids_.assign(static_cast<std::size_t>(model.num_ids()), 0);
        values_.assign(static_cast<std::size_t>(model.num_values()), 0.0f);
        valid_.resize(br.size());
        for (std::size_t i = 0; i < br.size(); ++i) valid_[i].resize(static_cast<std::size_t>(br[i].L));
        nvalid_.assign(br.size(), 0);
        int att_w = 1;
        for (const auto& b : br)
            for (const auto& h : b.heads) att_w = std::max(att_w, h.attn.max_width());
        att_w_ = att_w;
        dnn_w_ = std::max(model.dnn().max_width(), spec.dnn_input_dim);
        for (std::size_t f = 0; f < spec.features.size(); ++f) {
            const auto& x = spec.features[f];
            if (x.role != Role::candidate) continue;
            cand_checks_.push_back({static_cast<int>(f), model.slot(static_cast<int>(f)).cand_offset, x.type == FeatureType::numeric, x.vocab_size});
        }
        for (const auto& pc : model.dnn_pieces()) {
            if (!pc.per_candidate || pc.kind != DnnPiece::feature) continue;
            const auto& x = spec.features[static_cast<std::size_t>(pc.feature_index)];
            cand_pieces_.push_back({model.table(pc.feature_index), model.slot(pc.feature_index).cand_offset, pc.width, pc.offset,
                                    x.type == FeatureType::numeric});
        }
        target_pieces_.resize(br.size());
        for (std::size_t i = 0; i < br.size(); ++i) {
            const auto& target = spec.branches[i].target;
            for (std::size_t k = 0; k < target.size(); ++k) {
                const auto& sl = model.slot(target[k]);
                target_pieces_[i].push_back({model.table(target[k]), sl.cand_offset, sl.offset, static_cast<int>(k) * spec.embedding_dim});
            }
        }
        for (std::size_t i = 0; i < br.size(); ++i) {
            for (int h = 0; h < br[i].H; ++h) interest_off_.push_back(piece_offset(DnnPiece::interest, static_cast<int>(i), h));
            tsp_off_.push_back(piece_offset(DnnPiece::target_x_sum_pool, static_cast<int>(i), 0));
        }
        // Two passes over the same layout: measure, then carve.
        Arena measure;
        carve(measure);
        buf_ = AlignedBuffer(measure.used());
        Arena arena(buf_);
        carve(arena);
    }

    const M& model() const noexcept { return m_; }

    // ---- user phase -------------------------------------------------------------------------

    /// Runs every candidate-independent computation for one request: sequence embeddings, refiner,
    /// interest heads, the per-position terms g_l, sum pooling and the request part of the first DNN
    /// layer. Reads user/context features and sequences from `sample` (candidate features ignored).
    /// Throws dmin::Error for ids outside [0, vocab) or non-finite numeric values.
    void set_user(const SampleView& sample) {
        const auto& spec = m_.spec();
        user_set_ = false;  // a request that fails validation leaves no half-set user behind
        for (std::size_t f = 0; f < spec.features.size(); ++f) {
            const auto& x = spec.features[f];
            if (x.role == Role::candidate) continue;
            const auto& sl = m_.slot(static_cast<int>(f));
            if (x.type == FeatureType::numeric) {
                const float v = sample.values[sl.offset];
                if (!std::isfinite(v)) detail::fail("feature ", x.name, ": numeric value ", v, " is not finite");
                values_[static_cast<std::size_t>(sl.offset)] = v;
            } else {
                const int n = x.type == FeatureType::sequence ? x.max_len : 1;
                for (int k = 0; k < n; ++k) {
                    const auto id = sample.ids[sl.offset + k];
                    check_id(x, id);
                    ids_[static_cast<std::size_t>(sl.offset + k)] = id;
                }
            }
        }
        const auto& br = m_.branches();
        for (std::size_t i = 0; i < br.size(); ++i) user_branch(i);
        // Request part of the first DNN layer: bias + request-only pieces.
        const nn::Linear& first = first_dnn();
        float* xu = xfull_;  // scratch: request pieces at their permuted offsets
        fill_request_pieces(xu);
        const int cw = m_.dnn_candidate_width();
        first.product(1, xu + cw, first.in, cw, first.in, hu_, first.out, first.b, kernels::Init::bias);
        user_set_ = true;
    }

    // ---- candidate phase --------------------------------------------------------------------

    /// Writes out[c] = probability (or regression value) for every candidate, using the factorised
    /// target attention. Requires set_user(). Every row is validated first: on an invalid candidate
    /// feature it throws dmin::Error naming the candidate and feature, and writes nothing. A score that
    /// overflows (finite but absurd numeric inputs) also throws; `out` is then partly written.
    void score(const Candidates& cands, float* out) {
        require_user();
        validate(cands);
        for (std::size_t c0 = 0; c0 < cands.count; c0 += kBlock) {
            const int nb = static_cast<int>(std::min<std::size_t>(kBlock, cands.count - c0));
            for (int g = 0; g < nb; g += kLanes) {
                const int ng = std::min(kLanes, nb - g);
                const std::size_t first = c0 + static_cast<std::size_t>(g);
                if (ng >= kMinLanes) candidate_input_lanes(cands, first, ng, xc_ + static_cast<std::ptrdiff_t>(g) * ldxc_);
                else
                    for (int c = 0; c < ng; ++c)
                        candidate_input(cands, first + static_cast<std::size_t>(c), xc_ + static_cast<std::ptrdiff_t>(g + c) * ldxc_, false);
            }
            dnn_block(nb, out + c0);
        }
    }

    /// Same result as score() computed the way FuxiCTR does: the attention MLP on every position with
    /// its full 4D-wide first layer (HeadWeights::attn explains the load-time form of its weights) and a
    /// full-width first DNN layer. The oracle for the fast path; slow.
    void score_reference(const Candidates& cands, float* out) {
        require_user();
        validate(cands);
        const nn::Linear& first = first_dnn();
        for (std::size_t c = 0; c < cands.count; ++c) {
            candidate_input(cands, c, xfull_, true);
            fill_request_pieces(xfull_);
            const auto ep = m_.dnn().hidden.empty() ? kernels::Epilogue::none : m_.dnn().hidden[0].epilogue();
            first.forward(1, xfull_, first.in, y0_, dnn_w_, ep);
            out[c] = checked_output(dnn_tail(1, y0_)[0]);
        }
    }

    /// Predicts one full sample (user and candidate features together) with the reference path.
    float predict(const SampleView& sample) {
        set_user(sample);
        Candidates one = candidate_from(sample);
        float p = 0;
        score_reference(one, &p);
        return p;
    }

    /// Candidate view on the candidate-role features of a full sample (copied into the scorer).
    Candidates candidate_from(const SampleView& sample) {
        const auto& spec = m_.spec();
        for (std::size_t f = 0; f < spec.features.size(); ++f) {
            const auto& x = spec.features[f];
            if (x.role != Role::candidate) continue;
            const auto& sl = m_.slot(static_cast<int>(f));
            if (x.type == FeatureType::numeric) one_values_[static_cast<std::size_t>(sl.cand_offset)] = sample.values[sl.offset];
            else one_ids_[static_cast<std::size_t>(sl.cand_offset)] = sample.ids[sl.offset];
        }
        return Candidates{1, one_ids_.data(), one_ids_.size(), one_values_.data(), one_values_.size()};
    }

    /// Per-head attention weights and contributions for candidate c (allocates; call for the top-k only).
    Explanation explain(const Candidates& cands, std::size_t c) {
        require_user();
        if (c >= cands.count) detail::fail("explain: candidate ", c, " out of range (", cands.count, " candidates)");
        validate(cands, false);
        validate(Candidates{1, cands.ids ? cands.ids + c * cands.id_stride : nullptr, cands.id_stride,
                            cands.values ? cands.values + c * cands.value_stride : nullptr, cands.value_stride});
        Explanation e;
        candidate_input(cands, c, xc_, false);
        float logit = 0;
        dnn_logits(1, xc_, &logit);
        e.logit = logit;
        e.probability = checked_output(logit);
        const auto& br = m_.branches();
        for (std::size_t i = 0; i < br.size(); ++i)
            for (int h = 0; h < br[i].H; ++h) {
                HeadExplanation he;
                he.branch = static_cast<int>(i);
                he.head = h;
                const float* w = weights(i, h);
                he.weights.assign(w, w + br[i].L);
                const int off = interest_offset(i, h);
                std::vector<float> saved(xc_ + off, xc_ + off + br[i].D);
                std::fill(xc_ + off, xc_ + off + br[i].D, 0.0f);
                float without = 0;
                dnn_logits(1, xc_, &without);
                std::copy(saved.begin(), saved.end(), xc_ + off);
                he.contribution = logit - without;
                e.heads.push_back(std::move(he));
            }
        return e;
    }

    // ---- intermediates (tests, explanations) -------------------------------------------------

    /// Refiner output of branch i after set_user: [L, D] row-major (the raw embedding if no refiner).
    const float* refined(std::size_t i) const { return st_[i].r; }
    /// Head h's sequence z_h of branch i after set_user: [L, D].
    const float* z(std::size_t i, int h) const { return st_[i].z + static_cast<std::ptrdiff_t>(h) * st_[i].L * st_[i].D; }
    /// Target-attention weights [L] of the last candidate processed one at a time (score_reference,
    /// explain, and score() of fewer than kMinLanes candidates).
    const float* weights(std::size_t i, int h) const { return st_[i].w + static_cast<std::ptrdiff_t>(h) * st_[i].L; }
    /// Interest I_h [D] of branch i for the last candidate processed one at a time (as weights()).
    const float* interest(std::size_t i, int h) const { return st_[i].interest + static_cast<std::ptrdiff_t>(h) * st_[i].D; }
    /// DNN input of the last score_reference() candidate, in FuxiCTR's concat order.
    std::vector<float> dnn_input() const {
        std::vector<float> out;
        for (const auto& pc : m_.dnn_pieces()) out.insert(out.end(), xfull_ + pc.offset, xfull_ + pc.offset + pc.width);
        return out;
    }

private:
    struct BranchState {
        int L = 0, D = 0, H = 0, hd = 0, A1 = 0;
        int Lq = 0;  ///< L rounded up to whole vectors: the row length of logits and qt (see attention_head)
        float *s0, *qkv, *logits, *qt, *o, *s, *hid, *r, *u, *z, *zv, *g, *zmean, *sp, *t, *tu, *a0, *w, *interest;
        float* zp = nullptr;  ///< z's valid rows per head, packed ([H][L][D], nvalid rows used): zv, or z when none is padding
        float *q_in, *q, *feat;
        float* pad;  ///< [L]: 1 at padding positions, 0 elsewhere (the attention masks: kernels::softmax_columns)
        float* inv;  ///< [Lq]: 1 / Σ of each query's unnormalised attention weights (attention_head)
    };

    template <class A>
    void carve(A& a) {
        const auto& spec = m_.spec();
        const auto& br = m_.branches();
        st_.resize(br.size());
        int maxL = 1, maxD = 1, maxA1 = 1;
        for (std::size_t i = 0; i < br.size(); ++i) {
            const auto& b = br[i];
            auto& s = st_[i];
            const auto L = static_cast<std::size_t>(b.L), D = static_cast<std::size_t>(b.D), H = static_cast<std::size_t>(b.H);
            s.L = b.L; s.D = b.D; s.H = b.H; s.hd = b.hd; s.A1 = b.A1;
            constexpr int W = kernels::vfloat::size;
            s.Lq = (b.L + W - 1) / W * W;
            const auto Lq = static_cast<std::size_t>(s.Lq);
            s.s0 = a.take(L * D); s.qkv = a.take(L * 3 * D); s.logits = a.take(L * Lq);
            s.qt = a.take(D * Lq); s.o = a.take(L * D); s.s = a.take(L * D); s.hid = a.take(L * 2 * D);
            s.r = a.take(L * D); s.u = a.take(L * D); s.z = a.take(H * L * D); s.zv = a.take(H * L * D);
            s.g = a.take(H * L * static_cast<std::size_t>(b.A1)); s.zmean = a.take(H * D); s.sp = a.take(D);
            s.t = a.take(D); s.tu = a.take(D); s.a0 = a.take(static_cast<std::size_t>(b.A1));
            s.w = a.take(H * L); s.interest = a.take(H * D);
            s.q_in = a.take(L * (D + static_cast<std::size_t>(b.P))); s.q = a.take(L * D); s.feat = a.take(L * 4 * D);
            s.pad = a.take(L);
            s.inv = a.take(Lq);
            maxL = std::max(maxL, b.L); maxD = std::max(maxD, b.D); maxA1 = std::max(maxA1, b.A1);
        }
        const auto rows = static_cast<std::size_t>(maxL);
        tile_x_ = a.take(rows * static_cast<std::size_t>(maxD));
        tile_a_ = a.take(rows * static_cast<std::size_t>(att_w_));
        tile_b_ = a.take(rows * static_cast<std::size_t>(att_w_));
        tile_e_ = a.take(rows);
        ldxc_ = std::max(1, m_.dnn_candidate_width());
        xc_ = a.take(static_cast<std::size_t>(kBlock) * static_cast<std::size_t>(ldxc_));
        xfull_ = a.take(static_cast<std::size_t>(std::max(1, spec.dnn_input_dim)));
        hu_ = a.take(static_cast<std::size_t>(first_dnn().out));
        y0_ = a.take(static_cast<std::size_t>(kBlock) * static_cast<std::size_t>(dnn_w_));
        y1_ = a.take(static_cast<std::size_t>(kBlock) * static_cast<std::size_t>(dnn_w_));
        logits_ = a.take(kBlock);
        const auto lanes = static_cast<std::size_t>(kLanes), chunk_cols = static_cast<std::size_t>(kChunk * kLanes);
        lane_t_ = a.take(static_cast<std::size_t>(maxD) * lanes);
        lane_u_ = a.take(static_cast<std::size_t>(maxD) * lanes);
        lane_i_ = a.take(static_cast<std::size_t>(maxD) * lanes);
        lane_a0_ = a.take(static_cast<std::size_t>(maxA1) * lanes);
        lane_e_ = a.take(rows * lanes);
        lane_x_ = a.take(static_cast<std::size_t>(maxD) * chunk_cols);
        lane_h_[0] = a.take(static_cast<std::size_t>(att_w_) * chunk_cols);
        lane_h_[1] = a.take(static_cast<std::size_t>(att_w_) * chunk_cols);
        if (one_ids_.empty()) {
            one_ids_.assign(static_cast<std::size_t>(std::max(1, m_.num_candidate_ids())), 0);
            one_values_.assign(static_cast<std::size_t>(std::max(1, m_.num_candidate_values())), 0.0f);
        }
    }

    const nn::Linear& first_dnn() const { return m_.dnn().hidden.empty() ? m_.dnn().head : m_.dnn().hidden[0].lin; }

    void require_user() const {
        if (!user_set_) detail::fail("Scorer: set_user() must be called before scoring");
    }

    static void check_id(const FeatureSpec& x, std::int64_t id) {
        if (id < 0 || id >= x.vocab_size)
            detail::fail("feature ", x.name, ": id ", id, " out of range [0, ", x.vocab_size, ")");
    }

    float output(float logit) const { return regression_ ? logit : 1.0f / (1.0f + std::exp(-logit)); }
    /// Never return a wrong score silently: finite inputs can still overflow (e.g. a numeric value of 1e38).
    float checked_output(float logit) const {
        if (!std::isfinite(logit))
            detail::fail("candidate score is not finite (logit ", logit, "): a numeric feature value is too large for this model");
        return output(logit);
    }

    int interest_offset(std::size_t branch, int head) const {
        return interest_off_[branch * static_cast<std::size_t>(m_.branches()[0].H) + static_cast<std::size_t>(head)];
    }

    int piece_offset(DnnPiece::Kind k, int branch, int head) const {
        for (const auto& pc : m_.dnn_pieces())
            if (pc.kind == k && pc.branch == branch && pc.head == head) return pc.offset;
        return -1;
    }

    /// How an attention block treats blocked (future or padding, off-diagonal) logits.
    enum class Mask {
        refiner_additive,  ///< FuxiCTR's float mask under torch <= 1.13 / >= 2.1: +1.0, stays in the softmax
        refiner_strict,    ///< torch 2.0.x eval fast path: excluded
        replace            ///< extractor: replaced by exactly -1e9
    };

    /// Q^T of s.qkv's query columns into s.qt ([D, Lq]; columns L..Lq zero): every head's Q_h^T at once,
    /// before attention_head.
    void transpose_q(BranchState& s) { kernels::transpose_padded(s.qkv, 3 * s.D, s.L, s.D, s.qt, s.Lq); }

    /// One head of scaled dot-product self-attention on s.qkv ([L, 3D], heads as contiguous slices):
    /// out[l, 0..hd) = softmax_j(mask(q_l·k_j / sqrt(hd))) · V. Allowed: j <= l and (j == l or j not padding).
    /// The logits are computed transposed, S^T = K_h·Q_h^T ([key, query]), so that the softmax over keys
    /// runs down the columns, one query per lane (kernels::softmax_columns), and P·V is gemm_tn on S^T.
    /// Causal heads compute only the blocks of S^T on or above the diagonal blocks and, per block of
    /// queries, P·V over the keys up to its last query (the omitted terms are exact zeros).
    /// Q_h^T and S^T have rows of Lq = L rounded up to whole vectors, and the product and the softmax run
    /// over all Lq columns (queries past L: zero columns of Q_h^T, never read): every store is a whole
    /// vector. With partial vectors (masked loads and stores, most likely loads waiting on masked stores,
    /// which are not forwarded) the softmax of a small-shape request (L = 5) took 18% of it.
    void attention_head(BranchState& s, int h, Mask mask, float* out, int ldo) {
        const int L = s.L, Lq = s.Lq, D = s.D, hd = s.hd;
        const float* qt = s.qt + static_cast<std::ptrdiff_t>(h) * hd * Lq;  // Q_h^T (transpose_q)
        const bool causal = mask != Mask::refiner_additive;  // keys after the query are never allowed
        const float* kh = s.qkv + D + h * hd;
        const float* vh = s.qkv + 2 * D + h * hd;
        constexpr int W = kernels::vfloat::size;  // softmax_columns' query block
        if (causal)  // key block [k0, k0 + W) is read by the query blocks from k0 on only
            for (int k0 = 0; k0 < L; k0 += W)
                kernels::gemm(std::min(W, L - k0), Lq - k0, hd, kh + static_cast<std::ptrdiff_t>(k0) * 3 * D, 3 * D, qt + k0, Lq,
                              s.logits + static_cast<std::ptrdiff_t>(k0) * Lq + k0, Lq);
        else
            kernels::gemm(L, Lq, hd, kh, 3 * D, qt, Lq, s.logits, Lq);
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        // Refiner (additive): blocked logits stay in the softmax, raised by 1. Excluded (−inf) or replaced
        // by −1e9: either way a blocked position's weight is exactly 0 (the diagonal is always allowed, and
        // e^(−1e9 − max) is +0 in float as e^−inf is); keys after the query are never allowed. For the −1e9
        // replacement this holds while the largest allowed logit is above about −1e9 + 100, i.e. for any
        // model whose logits are not themselves of order 1e9.
        // The weights stay unnormalised (e = exp(y − max)); P·V's row for query q is scaled by 1/Σe (s.inv).
        if (!causal) {
            kernels::softmax_columns(s.logits, L, Lq, Lq, scale, s.pad, kernels::Blocked::plus_one, false, s.inv);
            kernels::gemm_tn(L, hd, L, s.logits, Lq, vh, 3 * D, out, ldo, s.inv, kernels::Init::row_scale);
            return;
        }
        kernels::softmax_columns(s.logits, L, Lq, Lq, scale, s.pad, kernels::Blocked::excluded, true, s.inv);
        for (int q0 = 0; q0 < L; q0 += W)  // query block [q0, q0 + W): weights of the keys before q0 + W only
            kernels::gemm_tn(std::min(W, L - q0), hd, std::min(L, q0 + W), s.logits + q0, Lq, vh, 3 * D,
                             out + static_cast<std::ptrdiff_t>(q0) * ldo, ldo, s.inv + q0, kernels::Init::row_scale);
    }

    // Refiner → extractor → z_h, g_l for one branch.
    void user_branch(std::size_t i) {
        const auto& spec = m_.spec();
        const auto& bs = spec.branches[i];
        const auto& b = m_.branches()[i];
        auto& s = st_[i];
        const int L = dim_or<S::L>(b.L), D = dim_or<S::D>(b.D), H = dim_or<S::H>(b.H), hd = dim_or<S::hd>(b.hd);
        // Sequence embedding: concat of the group's tables along features; padding from field 0.
        const int E = spec.embedding_dim;
        for (std::size_t k = 0; k < bs.sequence.size(); ++k) {
            const int f = bs.sequence[k];
            const float* tab = m_.table(f);
            const int off = m_.slot(f).offset;
            for (int l = 0; l < L; ++l) {
                const auto id = ids_[static_cast<std::size_t>(off + l)];
                std::copy(tab + id * E, tab + (id + 1) * E, s.s0 + static_cast<std::ptrdiff_t>(l) * D + static_cast<std::ptrdiff_t>(k) * E);
            }
        }
        auto& valid = valid_[i];
        int nv = 0;
        {
            const int off = m_.slot(bs.sequence[0]).offset;
            for (int l = 0; l < L; ++l) {
                const bool pad = ids_[static_cast<std::size_t>(off + l)] == 0;
                s.pad[l] = pad ? 1.0f : 0.0f;
                if (!pad) valid[static_cast<std::size_t>(nv++)] = l;
            }
        }
        nvalid_[i] = nv;
        s.zp = nv == L ? s.z : s.zv;
        if (spec.sum_pooling) {
            std::fill(s.sp, s.sp + D, 0.0f);
            for (int l = 0; l < L; ++l) nn::add_rows<S::D>(s.sp, D, s.s0 + static_cast<std::ptrdiff_t>(l) * D, D, 1, D);
        }

        // Behavior refiner (nn.MultiheadAttention with FuxiCTR's float mask: +1 on blocked logits).
        const float* r = s.s0;
        if (b.refiner) {
            b.ref.in_proj.forward(L, s.s0, D, s.qkv, 3 * D);
            transpose_q(s);
            const Mask mask = spec.strict_refiner_mask ? Mask::refiner_strict : Mask::refiner_additive;
            for (int h = 0; h < H; ++h) attention_head(s, h, mask, s.o + h * hd, D);
            b.ref.out_proj.forward(L, s.o, D, s.s, D);
            kernels::residual_layer_norm_rows(s.s, D, s.s0, D, L, D, b.ref.ln_gamma, b.ref.ln_beta);
            b.ref.ffn1.forward(L, s.s, D, s.hid, 2 * D, kernels::Epilogue::relu);  // ReLU fused into the GEMM
            b.ref.ffn2.forward(L, s.hid, 2 * D, s.r, D);
            nn::add_rows<S::D>(s.r, D, s.s, D, L, D);
            r = s.r;
        } else {
            std::copy(s.s0, s.s0 + static_cast<std::ptrdiff_t>(L) * D, s.r);
        }

        // Multi-interest extractor: per head masked self-attention (−1e9 replacement), W_o, residual, LN, FFN.
        b.qkv.forward(L, r, D, s.qkv, 3 * D);
        transpose_q(s);
        for (int h = 0; h < H; ++h) {
            attention_head(s, h, Mask::replace, s.o, hd);
            const auto& hw = b.heads[static_cast<std::size_t>(h)];
            float* zh = s.z + static_cast<std::ptrdiff_t>(h) * L * D;
            hw.w_o.forward(L, s.o, hd, s.u, D);
            kernels::residual_layer_norm_rows(s.u, D, r, D, L, D, hw.ln_gamma, hw.ln_beta);
            hw.ffn1.forward(L, s.u, D, s.hid, 2 * D, kernels::Epilogue::relu);  // ReLU fused into the GEMM
            hw.ffn2.forward(L, s.hid, 2 * D, zh, D);
            nn::add_rows<S::D>(zh, D, s.u, D, L, D);

            // Per-user terms of the factorised target attention.
            if (nv == 0) {  // all padding: the candidates' interest is the mean of z (interest_fast)
                float* zm = s.zmean + static_cast<std::ptrdiff_t>(h) * D;
                std::fill(zm, zm + D, 0.0f);
                for (int l = 0; l < L; ++l) nn::add_rows<S::D>(zm, D, zh + static_cast<std::ptrdiff_t>(l) * D, D, 1, D);
                for (int d = 0; d < D; ++d) zm[d] /= static_cast<float>(L);
            }
            const int A1 = b.A1;
            float* g = s.g + static_cast<std::ptrdiff_t>(h) * L * A1;
            // g_l = g0_l + [z_l, k_l ⊙ z_l]·[Wb−Wc; Wd]^T, valid positions only (packed), as one product with
            // K = 2D; the z rows of the valid positions are also packed into zv for the candidate phase
            // (unless every position is valid: then s.zp is z itself, and g0 is copied in one piece).
            float* zv = s.zv + static_cast<std::ptrdiff_t>(h) * L * D;
            float* x = s.hid;  // [nv, 2D]; free after the FFN
            if (nv == L) std::copy(hw.g0, hw.g0 + static_cast<std::ptrdiff_t>(L) * A1, g);
            for (int v = 0; v < nv; ++v) {
                const int l = valid[static_cast<std::size_t>(v)];
                const float* zl = zh + static_cast<std::ptrdiff_t>(l) * D;
                const float* kl = hw.k + static_cast<std::ptrdiff_t>(l) * D;
                float* xv = x + static_cast<std::ptrdiff_t>(v) * 2 * D;
                for (int d = 0; d < D; ++d) {
                    xv[d] = zl[d];
                    xv[D + d] = kl[d] * zl[d];
                }
                if (nv < L) {
                    std::copy(zl, zl + D, zv + static_cast<std::ptrdiff_t>(v) * D);
                    std::copy(hw.g0 + static_cast<std::ptrdiff_t>(l) * A1, hw.g0 + static_cast<std::ptrdiff_t>(l + 1) * A1,
                              g + static_cast<std::ptrdiff_t>(v) * A1);
                }
            }
            if (nv > 0) kernels::gemm(nv, A1, 2 * D, x, 2 * D, hw.wbcd, A1, g, A1, nullptr, kernels::Init::accumulate);
        }
    }

    /// Request-only DNN pieces (sum pools, user/context features) into x at their permuted offsets.
    void fill_request_pieces(float* x) const {
        const auto& spec = m_.spec();
        for (const auto& pc : m_.dnn_pieces()) {
            if (pc.per_candidate) continue;
            if (pc.kind == DnnPiece::sum_pool) {
                std::copy(st_[static_cast<std::size_t>(pc.branch)].sp, st_[static_cast<std::size_t>(pc.branch)].sp + pc.width, x + pc.offset);
            } else if (pc.kind == DnnPiece::feature) {
                const auto& f = spec.features[static_cast<std::size_t>(pc.feature_index)];
                const float* tab = m_.table(pc.feature_index);
                const auto& sl = m_.slot(pc.feature_index);
                if (f.type == FeatureType::numeric) {
                    const float v = values_[static_cast<std::size_t>(sl.offset)];
                    for (int d = 0; d < pc.width; ++d) x[pc.offset + d] = v * tab[d];
                } else {
                    const auto id = ids_[static_cast<std::size_t>(sl.offset)];
                    std::copy(tab + id * pc.width, tab + (id + 1) * pc.width, x + pc.offset);
                }
            }
        }
    }

    /// Checks every candidate row before any work, so a bad row leaves `out` untouched.
    void validate(const Candidates& cands, bool rows = true) const {
        const auto& spec = m_.spec();
        if (cands.count > 0 && m_.num_candidate_ids() > 0 && !cands.ids) detail::fail("candidates: ids is null");
        if (cands.count > 0 && m_.num_candidate_values() > 0 && !cands.values) detail::fail("candidates: values is null");
        if (cands.count > 0 && cands.id_stride < static_cast<std::size_t>(m_.num_candidate_ids()))
            detail::fail("candidates: id_stride ", cands.id_stride, " is smaller than the ", m_.num_candidate_ids(), " ids of a row");
        if (cands.count > 0 && cands.value_stride < static_cast<std::size_t>(m_.num_candidate_values()))
            detail::fail("candidates: value_stride ", cands.value_stride, " is smaller than the ", m_.num_candidate_values(),
                         " values of a row");
        if (!rows) return;
        for (std::size_t c = 0; c < cands.count; ++c)
            for (const auto& ck : cand_checks_) {
                const auto off = static_cast<std::size_t>(ck.offset);
                if (ck.numeric) {
                    const float v = cands.values[c * cands.value_stride + off];
                    if (!std::isfinite(v))
                        detail::fail("candidate ", c, ", feature ", spec.features[static_cast<std::size_t>(ck.feature)].name, ": numeric value ", v,
                                     " is not finite");
                } else {
                    const auto id = cands.ids[c * cands.id_stride + off];
                    if (id < 0 || id >= ck.vocab)
                        detail::fail("candidate ", c, ", feature ", spec.features[static_cast<std::size_t>(ck.feature)].name, ": id ", id,
                                     " out of range [0, ", ck.vocab, ")");
                }
            }
    }

    /// Candidate pieces of the DNN input for candidate c into x (permuted offsets, width dnn_candidate_width).
    /// `reference` selects the FuxiCTR-form target attention instead of the factorised one.
    void candidate_input(const Candidates& cands, std::size_t c, float* x, bool reference) {
        const std::int64_t* cid = cands.ids + c * cands.id_stride;
        for (std::size_t i = 0; i < st_.size(); ++i) {
            auto& s = st_[i];
            gather_target(i, cid, s.t);
            for (int h = 0; h < s.H; ++h) {
                float* I = s.interest + static_cast<std::ptrdiff_t>(h) * s.D;
                if (reference) interest_reference(i, h, I);
                else interest_fast(i, h, I);
                kernels::copy_floats(I, s.D, x + interest_offset(i, h));
            }
            target_x_sum_pool(i, s.t, x);
        }
        candidate_features(cands, c, x);
    }

    /// candidate_input for n (kMinLanes <= n <= kLanes) consecutive candidates from `first`, rows of x
    /// ldxc_ apart, with the target attention of all n run together (interests_lanes).
    void candidate_input_lanes(const Candidates& cands, std::size_t first, int n, float* x) {
        for (std::size_t i = 0; i < st_.size(); ++i) {
            auto& s = st_[i];
            // Target embeddings feature-major: lane_t_[d·kLanes + c]. Unused lanes repeat the last candidate.
            for (int c = 0; c < kLanes; ++c) {  // candidate-major [kLanes][D] in lane_i_, then transposed
                const std::size_t cand = first + static_cast<std::size_t>(std::min(c, n - 1));
                float* t = lane_i_ + static_cast<std::ptrdiff_t>(c) * s.D;
                gather_target(i, cands.ids + cand * cands.id_stride, t);
                if (c < n) target_x_sum_pool(i, t, x + static_cast<std::ptrdiff_t>(c) * ldxc_);
            }
            kernels::transpose(lane_i_, s.D, kLanes, s.D, lane_t_, kLanes);
            for (int h = 0; h < s.H; ++h) interests_lanes(i, h, n, x + interest_offset(i, h));
        }
        for (int c = 0; c < n; ++c) candidate_features(cands, first + static_cast<std::size_t>(c), x + static_cast<std::ptrdiff_t>(c) * ldxc_);
    }

    /// Branch i's target embedding t (D floats: the target fields' embeddings, concatenated) for one candidate row.
    void gather_target(std::size_t i, const std::int64_t* cid, float* t) const {
        const int E = m_.spec().embedding_dim;
        for (const auto& tp : target_pieces_[i]) {
            // A target declared as a request feature has no slot in candidate rows: the request's id.
            const auto id = tp.cand_offset >= 0 ? cid[tp.cand_offset] : ids_[static_cast<std::size_t>(tp.request_offset)];
            kernels::copy_floats(tp.table + id * E, E, t + tp.dst);
        }
    }

    /// The target ⊙ sum-pool piece of branch i (when sum pooling is on).
    void target_x_sum_pool(std::size_t i, const float* t, float* x) const {
        if (!m_.spec().sum_pooling) return;
        const auto& s = st_[i];
        float* tsp = x + tsp_off_[i];
        for (int d = 0; d < s.D; ++d) tsp[d] = t[d] * s.sp[d];
    }

    /// Candidate-role feature pieces (embeddings, numeric values times their embedding) of candidate c.
    void candidate_features(const Candidates& cands, std::size_t c, float* x) const {
        const std::int64_t* cid = cands.ids + c * cands.id_stride;
        const float* cval = cands.values ? cands.values + c * cands.value_stride : nullptr;
        for (const auto& cp : cand_pieces_) {
            if (cp.numeric) {
                const float v = cval[cp.cand_offset];
                for (int d = 0; d < cp.width; ++d) x[cp.offset + d] = v * cp.table[d];
            } else {
                const auto id = cid[cp.cand_offset];
                kernels::copy_floats(cp.table + id * cp.width, cp.width, x + cp.offset);
            }
        }
    }

    /// FuxiCTR's TargetAttention: q_l = W_proj[t; p_l] + b, MLP over [q, z, q−z, q⊙z] for all L,
    /// −1e9 on padding, softmax over L, weighted sum of z.
    void interest_reference(std::size_t i, int h, float* I) {
        auto& s = st_[i];
        const auto& b = m_.branches()[i];
        const auto& hw = b.heads[static_cast<std::size_t>(h)];
        const int L = s.L, D = s.D, P = b.P;
        const float* zh = z(i, h);
        if (hw.pos_emb) {
            for (int l = 0; l < L; ++l) {
                float* row = s.q_in + static_cast<std::ptrdiff_t>(l) * (D + P);
                std::copy(s.t, s.t + D, row);
                std::copy(hw.pos_emb + static_cast<std::ptrdiff_t>(l) * P, hw.pos_emb + static_cast<std::ptrdiff_t>(l + 1) * P, row + D);
            }
            hw.w_proj.forward(L, s.q_in, D + P, s.q, D);
        } else {
            for (int l = 0; l < L; ++l) std::copy(s.t, s.t + D, s.q + static_cast<std::ptrdiff_t>(l) * D);
        }
        for (int l = 0; l < L; ++l) {
            const float* q = s.q + static_cast<std::ptrdiff_t>(l) * D;
            const float* zl = zh + static_cast<std::ptrdiff_t>(l) * D;
            float* f = s.feat + static_cast<std::ptrdiff_t>(l) * 4 * D;
            // FuxiCTR's [q, z, q−z, q⊙z] against [Wa; Wb; Wc; Wd] is fed as [q, z, q⊙z, 0] against the load-time
            // weights [Wa+Wc; Wb−Wc; Wd; Wc] (HeadWeights::attn): q·Wa + z·Wb + (q−z)·Wc + (q⊙z)·Wd.
            for (int d = 0; d < D; ++d) {
                f[d] = q[d];
                f[D + d] = zl[d];
                f[2 * D + d] = q[d] * zl[d];
                f[3 * D + d] = 0.0f;
            }
        }
        float* w = s.w + static_cast<std::ptrdiff_t>(h) * L;
        hw.attn.forward_from(0, L, s.feat, 4 * D, tile_a_, tile_b_, att_w_, w);
        const int off = m_.slot(m_.spec().branches[i].sequence[0]).offset;
        for (int l = 0; l < L; ++l)
            if (ids_[static_cast<std::size_t>(off + l)] == 0) w[l] = -1e9f;
        kernels::softmax(w, L);
        std::fill(I, I + D, 0.0f);
        for (int l = 0; l < L; ++l)
            for (int d = 0; d < D; ++d) I[d] += w[l] * zh[static_cast<std::ptrdiff_t>(l) * D + d];
    }

    /// Factorised target attention (DESIGN §2): only valid positions, one A1×D product per position.
    void interest_fast(std::size_t i, int h, float* I) {
        auto& s = st_[i];
        const auto& b = m_.branches()[i];
        const auto& hw = b.heads[static_cast<std::size_t>(h)];
        const int L = s.L, D = s.D, A1 = b.A1, nv = nvalid_[i];
        float* w = s.w + static_cast<std::ptrdiff_t>(h) * L;
        if (nv == 0) {  // all padding: every score is −1e9, softmax is uniform → mean of z
            std::copy(s.zmean + static_cast<std::ptrdiff_t>(h) * D, s.zmean + static_cast<std::ptrdiff_t>(h + 1) * D, I);
            std::fill(w, w + L, 1.0f / static_cast<float>(L));
            return;
        }
        // u = W_t·t (the target part of W_proj), a0 = u·(Wa+Wc)^T.
        const float* u = s.t;
        if (hw.pos_emb) {
            kernels::gemm(1, D, D, s.t, D, hw.w_proj.wt, D, s.tu, D);
            u = s.tu;
        }
        kernels::gemm(1, A1, D, u, D, hw.wac, A1, s.a0, A1);
        const float* g = s.g + static_cast<std::ptrdiff_t>(h) * L * A1;
        const auto& valid = valid_[i];
        const float* zv = s.zp + static_cast<std::ptrdiff_t>(h) * L * D;  // valid rows of z_h, packed
        const float* __restrict a0 = s.a0;
        for (int v = 0; v < nv; ++v) {
            const float* __restrict zl = zv + static_cast<std::ptrdiff_t>(v) * D;
            float* __restrict x = tile_x_ + static_cast<std::ptrdiff_t>(v) * D;
            for (int d = 0; d < D; ++d) x[d] = u[d] * zl[d];
            float* __restrict a = tile_a_ + static_cast<std::ptrdiff_t>(v) * att_w_;
            const float* __restrict gl = g + static_cast<std::ptrdiff_t>(v) * A1;
            for (int j = 0; j < A1; ++j) a[j] = gl[j] + a0[j];
        }
        const auto& h1 = hw.attn.hidden[0];
        kernels::gemm(nv, A1, D, tile_x_, D, hw.wd, A1, tile_a_, att_w_, nullptr, kernels::Init::accumulate, h1.epilogue());
        h1.finish(nv, tile_a_, att_w_);
        // Remaining layers: ping-pong between tile_b_ and tile_x_-sized buffers.
        const float* cur = tile_a_;
        float* bufs[2] = {tile_b_, tile_a_};
        int which = 0;
        for (std::size_t k = 1; k < hw.attn.hidden.size(); ++k) {
            float* dst = bufs[which];
            hw.attn.hidden[k].forward(nv, cur, att_w_, dst, att_w_);
            cur = dst;
            which ^= 1;
        }
        // Ordered projection and softmax: bit-identical to interests_lanes, so a candidate's score does not
        // depend on whether it was scored alone or in a group.
        hw.attn.project_out_ordered(nv, cur, att_w_, tile_e_);
        kernels::softmax_ordered(tile_e_, nv);
        std::fill(w, w + L, 0.0f);
        for (int v = 0; v < nv; ++v) w[valid[static_cast<std::size_t>(v)]] = tile_e_[v];
        kernels::gemm(1, D, nv, tile_e_, nv, zv, D, I, D);  // I = Σ_v e_v · z_v
    }

    /// The factorised target attention of head h for n candidates at once, feature-major with one
    /// candidate per SIMD lane: activations are [units][position·kLanes + lane], so every vector holds
    /// one position of kLanes candidates. Layer 1 is Wd·(u_c ⊙ z_v) on top of g_v + a0_c, the MLP runs
    /// on column chunks of kChunk positions that stay in L1, the softmax over positions is lane-wise,
    /// and I_c = Σ_v e_v,c z_v is one product. Writes I_c to x + c·ldxc_ for c < n.
    void interests_lanes(std::size_t i, int h, int n, float* x) {
        using kernels::vfloat;
        constexpr int W = vfloat::size;
        static_assert(kLanes % W == 0, "kLanes must be a whole number of vectors");
        auto& s = st_[i];
        const auto& b = m_.branches()[i];
        const auto& hw = b.heads[static_cast<std::size_t>(h)];
        const int L = s.L, D = s.D, A1 = b.A1, nv = nvalid_[i];
        if (nv == 0) {  // all padding: the interest is the mean of z (see interest_fast)
            const float* zm = s.zmean + static_cast<std::ptrdiff_t>(h) * D;
            for (int c = 0; c < n; ++c) std::copy(zm, zm + D, x + static_cast<std::ptrdiff_t>(c) * ldxc_);
            return;
        }
        // u_c = W_t·t_c and a0_c = (Wa+Wc)·u_c for all lanes: [D][kLanes] and [A1][kLanes].
        const float* ut = lane_t_;
        if (hw.pos_emb) {
            kernels::gemm_tn(D, kLanes, D, hw.w_proj.wt, D, lane_t_, kLanes, lane_u_, kLanes);
            ut = lane_u_;
        }
        kernels::gemm_tn(A1, kLanes, D, hw.wac, A1, ut, kLanes, lane_a0_, kLanes);
        const float* g = s.g + static_cast<std::ptrdiff_t>(h) * L * A1;
        const float* zv = s.zp + static_cast<std::ptrdiff_t>(h) * L * D;
        const auto& mlp = hw.attn;
        constexpr int ld = kChunk * kLanes;
        for (int p0 = 0; p0 < nv; p0 += kChunk) {
            const int np = std::min(kChunk, nv - p0), cols = np * kLanes;
            float* h1 = lane_h_[0];
            for (int q = 0; q < np; ++q) {
                const float* zl = zv + static_cast<std::ptrdiff_t>(p0 + q) * D;
                for (int d = 0; d < D; ++d) {
                    const vfloat zd(zl[d]);
                    for (int w = 0; w < kLanes; w += W)
                        (vfloat::load(ut + d * kLanes + w) * zd).store(lane_x_ + d * ld + q * kLanes + w);
                }
            }
            // Layer 1 starts from a0_c + g_v inside the register tiles (h1[j][q·kLanes + c] = a0[j][c] + g[p0 + q][j]).
            const kernels::OuterSum a0_g{lane_a0_, kLanes, g + static_cast<std::ptrdiff_t>(p0) * A1, A1, kLanes};
            const auto& first = mlp.hidden[0];
            kernels::gemm_tn(A1, cols, D, hw.wd, A1, lane_x_, ld, h1, ld, a0_g, first.epilogue());
            first.finish_units(cols, h1, ld);
            const float* cur = h1;
            int which = 1;
            for (std::size_t k = 1; k < mlp.hidden.size(); ++k) {
                mlp.hidden[k].forward_units(cols, cur, ld, lane_h_[which], ld);
                cur = lane_h_[which];
                which ^= 1;
            }
            kernels::gemm_tn(1, cols, mlp.head.in, mlp.head.wt, 1, cur, ld, lane_e_ + p0 * kLanes, cols, mlp.head.b,
                             kernels::Init::row_bias);
        }
        kernels::softmax_lanes(lane_e_, nv, kLanes);
        kernels::gemm_tn(D, kLanes, nv, zv, D, lane_e_, kLanes, lane_i_, kLanes);  // I^T = Z^T·E
        kernels::transpose(lane_i_, kLanes, D, n, x, ldxc_);  // row c of x: candidate c's interest
    }

    /// logits[c] for nb candidate rows of xc (candidate pieces only) on top of the request part hu_.
    void dnn_logits(int nb, const float* xc, float* logits) {
        const nn::Linear& first = first_dnn();
        const int cw = m_.dnn_candidate_width();
        const auto& dnn = m_.dnn();
        const auto ep = dnn.hidden.empty() ? kernels::Epilogue::none : dnn.hidden[0].epilogue();
        if (cw > 0) {  // the request part hu_ (bias included) is every row's initial value
            first.product(nb, xc, ldxc_, 0, cw, y0_, dnn_w_, hu_, kernels::Init::bias, ep);
        } else {
            for (int c = 0; c < nb; ++c) std::copy(hu_, hu_ + first.out, y0_ + static_cast<std::ptrdiff_t>(c) * dnn_w_);
            if (ep == kernels::Epilogue::relu)
                for (int c = 0; c < nb * dnn_w_; ++c) y0_[c] = std::max(y0_[c], 0.0f);
        }
        const float* r = dnn_tail(nb, y0_);
        std::copy(r, r + nb, logits);
    }

    void dnn_block(int nb, float* out) {
        dnn_logits(nb, xc_, logits_);
        for (int c = 0; c < nb; ++c) out[c] = checked_output(logits_[c]);
    }

    /// Activation of the first layer (its pre-activation, or its ReLU output when fused, is in y) and
    /// the rest of the DNN; returns logits (nb).
    const float* dnn_tail(int nb, float* y) {
        const auto& dnn = m_.dnn();
        if (dnn.hidden.empty()) {
            for (int c = 0; c < nb; ++c) logits_[c] = y[static_cast<std::ptrdiff_t>(c) * dnn_w_];
            return logits_;
        }
        dnn.hidden[0].finish(nb, y, dnn_w_);
        const float* cur = y;
        float* bufs[2] = {y1_, y0_};
        int which = 0;
        for (std::size_t k = 1; k < dnn.hidden.size(); ++k) {
            float* dst = bufs[which] == cur ? bufs[which ^ 1] : bufs[which];
            dnn.hidden[k].forward(nb, cur, dnn_w_, dst, dnn_w_);
            cur = dst;
            which ^= 1;
        }
        dnn.project_out(nb, cur, dnn_w_, logits_);
        return logits_;
    }

    const M& m_;
    AlignedBuffer buf_;
    std::vector<BranchState> st_;
    std::vector<std::int64_t> ids_;
    std::vector<float> values_;
    std::vector<std::vector<int>> valid_;
    std::vector<int> nvalid_;
    std::vector<int> interest_off_, tsp_off_;  ///< DNN-input offsets of the candidate pieces
    /// A candidate-role feature as validate() checks it: its index, slot in a candidate row, kind and vocabulary.
    struct CandCheck {
        int feature, offset;
        bool numeric;
        std::int64_t vocab;
    };
    std::vector<CandCheck> cand_checks_;
    /// A candidate-role feature's DNN piece, resolved once: table, slot in a candidate row, width, DNN-input offset.
    struct CandPiece {
        const float* table;
        int cand_offset, width, offset;
        bool numeric;
    };
    std::vector<CandPiece> cand_pieces_;
    /// Per branch, the target fields: table, slot in a candidate row (−1: a request feature, at
    /// request_offset of the request's ids) and offset in the target embedding t.
    struct TargetPiece {
        const float* table;
        int cand_offset, request_offset, dst;
    };
    std::vector<std::vector<TargetPiece>> target_pieces_;
    const bool regression_ = m_.spec().regression();  ///< identity output instead of the sigmoid
    std::vector<std::int64_t> one_ids_;
    std::vector<float> one_values_;
    int att_w_ = 1, dnn_w_ = 1, ldxc_ = 1;
    float *tile_x_ = nullptr, *tile_a_ = nullptr, *tile_b_ = nullptr, *tile_e_ = nullptr;
    float *lane_t_ = nullptr, *lane_u_ = nullptr, *lane_i_ = nullptr, *lane_a0_ = nullptr, *lane_e_ = nullptr, *lane_x_ = nullptr;
    float* lane_h_[2] = {nullptr, nullptr};
    float *xc_ = nullptr, *xfull_ = nullptr, *hu_ = nullptr, *y0_ = nullptr, *y1_ = nullptr, *logits_ = nullptr;
    bool user_set_ = false;
};

}  // namespace dmin
