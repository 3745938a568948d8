// dmin/scorer.hpp — dmin::Scorer: per-thread request state that runs the layers in order: the user phase
// once per request, then candidates in blocks; it owns the scratch and never allocates while scoring.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "dmin/aligned.hpp"
#include "dmin/branch_state.hpp"
#include "dmin/candidates.hpp"
#include "dmin/dnn_state.hpp"
#include "dmin/error.hpp"
#include "dmin/model.hpp"

namespace dmin {

/// Request state for one thread. Construction sizes every buffer; set_user() and score() never
/// allocate. The model must outlive the scorer; many scorers may share one const model.
template <class M>
class Scorer {
    using S = typename M::shape;
    using Refiner = layers::BehaviorRefiner<S>;
    using Heads = layers::InterestHeads<S>;
    using Target = layers::TargetAttention<S>;
    using Dnn = layers::Dnn<S>;
    static constexpr int kLanes = Target::kLanes;
    /// Smallest group worth the lane layout; smaller groups (request tails, N < 8) run one candidate at
    /// a time (Target::one), where no lane is wasted.
    static constexpr int kMinLanes = 8;

public:
    explicit Scorer(const M& model);

    const M& model() const noexcept { return m_; }

    /// Floats carved from the scorer's one runtime-sized buffer: 0 for a fully fixed shape, whose scratch
    /// is all fixed-size (BranchState, DnnState).
    std::size_t arena_floats() const noexcept { return buf_.size(); }

    /// Runs every candidate-independent computation for one request: sequence embeddings, refiner,
    /// interest heads, the target attention's per-user terms, sum pooling and the request part of the
    /// first DNN layer. Reads user/context features and sequences from `sample` (candidate features
    /// ignored). Throws dmin::Error for ids outside [0, vocab) or non-finite numeric values.
    void set_user(const SampleView& sample);

    /// Writes out[c] = probability (or regression value) for every candidate, using the factorised
    /// target attention. Requires set_user(). Every row is validated first: on an invalid candidate
    /// feature it throws dmin::Error naming the candidate and feature, and writes nothing. A score that
    /// overflows (finite but absurd numeric inputs) also throws; `out` is then partly written.
    void score(const Candidates& cands, float* out);

    /// Same result as score() computed the way FuxiCTR does: the target attention on every position with
    /// its full 4D-wide first layer (Target::reference) and a full-width first DNN layer. The oracle for
    /// the fast path; slow.
    void score_reference(const Candidates& cands, float* out);

    /// Predicts one full sample (user and candidate features together) with the reference path.
    float predict(const SampleView& sample) {
        set_user(sample);
        float p = 0;
        score_reference(candidate_from(sample), &p);
        return p;
    }

    /// Candidate view on the candidate-role features of a full sample (copied into the scorer).
    Candidates candidate_from(const SampleView& sample) {
        layers::Embedding::candidate_row(m_.spec(), m_.embedding(), sample, one_ids_.data(), one_values_.data());
        return Candidates{1, one_ids_.data(), one_ids_.size(), one_values_.data(), one_values_.size()};
    }

    /// Per-head attention weights and contributions for candidate c (allocates; call for the top-k only).
    Explanation explain(const Candidates& cands, std::size_t c);

    // ---- intermediates (tests, explanations) -------------------------------------------------

    /// Refiner output of branch i after set_user: [L, D] row-major (the raw embedding if no refiner).
    const float* refined(std::size_t i) const { return st_[i].r; }
    /// Head h's sequence z_h of branch i after set_user: [L, D].
    const float* z(std::size_t i, int h) const { return st_[i].z + static_cast<std::ptrdiff_t>(h) * dims(i).L * dims(i).D; }
    /// Target-attention weights [L] of the last candidate processed one at a time (score_reference,
    /// explain, and score() of fewer than kMinLanes candidates).
    const float* weights(std::size_t i, int h) const { return st_[i].target.w + static_cast<std::ptrdiff_t>(h) * dims(i).L; }
    /// Interest I_h [D] of branch i for the last candidate processed one at a time (as weights()).
    const float* interest(std::size_t i, int h) const { return st_[i].target.interest + static_cast<std::ptrdiff_t>(h) * dims(i).D; }
    /// DNN input of the last score_reference() candidate, in FuxiCTR's concat order.
    std::vector<float> dnn_input() const {
        std::vector<float> out;
        for (const auto& pc : m_.dnn().pieces) out.insert(out.end(), dnn_ws_.xfull + pc.offset, dnn_ws_.xfull + pc.offset + pc.width);
        return out;
    }

private:
    const layers::BranchDims& dims(std::size_t i) const { return m_.branches()[i]; }

    template <class A>
    void carve(A& a) {
        for (std::size_t i = 0; i < st_.size(); ++i) {
            const auto& b = m_.branches()[i];
            carve_state(a, st_[i], b, scratch_detail::attention_widest(b));
        }
        carve_state(a, dnn_ws_, m_.dnn().dims());
    }

    /// A state's buffers, at the model's sizes: in its own fixed-size scratch when the shape fixes them
    /// (the model was checked against the shape at load, so they fit: Arena throws otherwise), else
    /// carved from `a`.
    template <class A, class State, class... Dims>
    static void carve_state(A& a, State& s, const Dims&... d) {
        if constexpr (State::owns_scratch) {
            Arena own(s.scratch(), State::kFloats);
            s.carve(own, d...);
        } else {
            s.carve(a, d...);
        }
    }

    /// Embedding → refiner → interest heads → the target attention's per-user terms, for one branch.
    void user_branch(std::size_t i) {
        const auto& spec = m_.spec();
        const auto& b = m_.branches()[i];
        auto& s = st_[i];
        const int L = dim_or<S::L>(b.L), D = dim_or<S::D>(b.D);
        layers::Embedding::gather_sequence(m_.embedding(), spec.branches[i], ids_.data(), L, s.s0);
        s.target.nv = layers::Embedding::valid_positions(m_.embedding(), spec.branches[i], ids_.data(), L, s.target.valid, s.att.pad);
        if (spec.sum_pooling) {
            std::fill(s.sp, s.sp + D, 0.0f);
            for (int l = 0; l < L; ++l) nn::add_rows<S::D>(s.sp, D, s.s0 + static_cast<std::ptrdiff_t>(l) * D, D, 1, D);
        }
        if (b.refiner) {
            const auto mask = spec.strict_refiner_mask ? layers::Mask::refiner_strict : layers::Mask::refiner_additive;
            Refiner::forward(b.ref, b, mask, s.s0, s.r, s.att, s.block);
        } else {
            std::copy(s.s0, s.s0 + static_cast<std::ptrdiff_t>(L) * D, s.r);
        }
        Heads::forward(b.interest, b, s.r, s.z, s.att, s.block);
        Target::user_terms(b.target, b, s.z, s.target);
    }

    /// Request-only DNN pieces (sum pools, user/context features) into x at their permuted offsets.
    void fill_request_pieces(float* x) const {
        for (const auto& pc : m_.dnn().pieces)
            if (pc.kind == layers::DnnPiece::sum_pool) {
                const float* sp = st_[static_cast<std::size_t>(pc.branch)].sp;
                std::copy(sp, sp + pc.width, x + pc.offset);
            }
        Dnn::request_fields(m_.dnn(), ids_.data(), values_.data(), x);
    }

    void candidate_features(const Candidates& cands, std::size_t c, float* x) const {
        Dnn::candidate_fields(m_.dnn(), cands.ids + c * cands.id_stride, cands.values ? cands.values + c * cands.value_stride : nullptr, x);
    }

    /// The target ⊙ sum-pool piece of branch i (when sum pooling is on).
    void target_x_sum_pool(std::size_t i, const float* t, float* x) const {
        if (m_.spec().sum_pooling) Dnn::target_x_sum_pool(m_.dnn(), i, t, st_[i].sp, dims(i).D, x);
    }

    /// Candidate pieces of the DNN input for candidate c into x (permuted offsets). `reference` selects
    /// FuxiCTR's form of the target attention instead of the factorised one.
    void candidate_input(const Candidates& cands, std::size_t c, float* x, bool reference) {
        const std::int64_t* cid = cands.ids + c * cands.id_stride;
        for (std::size_t i = 0; i < st_.size(); ++i) {
            auto& s = st_[i];
            const auto& b = m_.branches()[i];
            layers::Embedding::gather_target(m_.embedding(), i, cid, ids_.data(), s.target.t);
            for (int h = 0; h < b.H; ++h) {
                const auto& tw = b.target[static_cast<std::size_t>(h)];
                float* I = s.target.interest + static_cast<std::ptrdiff_t>(h) * b.D;
                if (reference) Target::reference(tw, b, s.target, h, z(i, h), s.att.pad, I);
                else Target::one(tw, b, s.target, h, I);
                kernels::copy_floats(I, b.D, x + interest_offset(i, h));
            }
            target_x_sum_pool(i, s.target.t, x);
        }
        candidate_features(cands, c, x);
    }

    /// Row c of a block's candidate inputs that starts at x.
    float* row(float* x, int c) const { return x + static_cast<std::ptrdiff_t>(c) * dnn_ws_.ldxc; }

    /// candidate_input for n (kMinLanes <= n <= kLanes) consecutive candidates from `first`, into rows of
    /// x (row()), with the target attention of all n run together (Target::lanes).
    void candidate_input_lanes(const Candidates& cands, std::size_t first, int n, float* x) {
        for (std::size_t i = 0; i < st_.size(); ++i) {
            auto& s = st_[i];
            const auto& b = m_.branches()[i];
            // Target embeddings candidate-major in lane_i, then feature-major (lane_t[d·kLanes + c]) for the lanes.
            layers::Embedding::gather_target_rows(m_.embedding(), i, cands, first, n, kLanes, ids_.data(), b.D, s.target.lane_i);
            for (int c = 0; c < n; ++c)
                target_x_sum_pool(i, s.target.lane_i + static_cast<std::ptrdiff_t>(c) * b.D, row(x, c));
            kernels::transpose(s.target.lane_i, b.D, kLanes, b.D, s.target.lane_t, kLanes);
            for (int h = 0; h < b.H; ++h) Target::lanes(b.target[static_cast<std::size_t>(h)], b, s.target, h, n, x + interest_offset(i, h), dnn_ws_.ldxc);
        }
        for (int c = 0; c < n; ++c) candidate_features(cands, first + static_cast<std::size_t>(c), row(x, c));
    }

    /// Checks every candidate row before any work, so a bad row leaves `out` untouched.
    void validate(const Candidates& cands, bool rows = true) const { layers::Embedding::check_candidates(m_.spec(), m_.embedding(), cands, rows); }

    float logit_of(const float* x) {
        float logit = 0;
        Dnn::template candidates<1>(m_.dnn(), 1, x, dnn_ws_.ldxc, dnn_ws_, &logit);
        return logit;
    }

    void require_user() const {
        if (!user_set_) detail::fail("Scorer: set_user() must be called before scoring");
    }

    float checked_output(float logit) const { return Dnn::output(logit, regression_); }

    int interest_offset(std::size_t branch, int head) const {
        return m_.dnn().interest_offset[branch * static_cast<std::size_t>(m_.spec().num_heads) + static_cast<std::size_t>(head)];
    }

    const M& m_;
    /// The scratch the Shape does not size, carved from one allocation made by the constructor (never
    /// while scoring): each branch's unless the Shape fixes its sizes (BranchState), and the DNN's unless
    /// it fixes X and the DNN widths (DnnState). Empty for a fully fixed shape. Fixed scratch lives on the
    /// heap (st_'s elements, DnnState's own allocation), not in Scorer itself, so a Scorer declared on a
    /// stack stays small.
    AlignedBuffer buf_;
    std::vector<BranchState<S>> st_;  ///< sized by the constructor before carving, never after: no element moves
    std::vector<std::int64_t> ids_;
    std::vector<float> values_;
    std::vector<std::int64_t> one_ids_;
    std::vector<float> one_values_;
    DnnState<S> dnn_ws_;
    const bool regression_ = m_.spec().regression();  ///< identity output instead of the sigmoid
    bool user_set_ = false;
};

// The entry points are defined outside the class, so they are not inline functions: a translation
// unit that declares Scorer<Model<>> extern (dmin/extern_templates.hpp) then only calls them, where
// the compiler would otherwise instantiate in-class members anyway to inline them.

template <class M>
Scorer<M>::Scorer(const M& model) : m_(model) {
    ids_.assign(static_cast<std::size_t>(model.num_ids()), 0);
    values_.assign(static_cast<std::size_t>(model.num_values()), 0.0f);
    one_ids_.assign(static_cast<std::size_t>(std::max(1, model.num_candidate_ids())), 0);
    one_values_.assign(static_cast<std::size_t>(std::max(1, model.num_candidate_values())), 0.0f);
    st_.resize(model.branches().size());
    Arena measure;  // two passes over the same layout: measure, then carve
    carve(measure);
    buf_ = AlignedBuffer(measure.used());
    Arena arena(buf_);
    carve(arena);
}

template <class M>
void Scorer<M>::set_user(const SampleView& sample) {
    user_set_ = false;  // a request that fails validation leaves no half-set user behind
    layers::Embedding::read_request(m_.spec(), m_.embedding(), sample, ids_.data(), values_.data());
    for (std::size_t i = 0; i < st_.size(); ++i) user_branch(i);
    fill_request_pieces(dnn_ws_.xfull);
    Dnn::request(m_.dnn(), dnn_ws_.xfull, dnn_ws_);
    user_set_ = true;
}

template <class M>
void Scorer<M>::score(const Candidates& cands, float* out) {
    require_user();
    validate(cands);
    for (std::size_t c0 = 0; c0 < cands.count; c0 += Dnn::kBlock) {
        const int nb = static_cast<int>(std::min<std::size_t>(Dnn::kBlock, cands.count - c0));
        for (int g = 0; g < nb; g += kLanes) {
            const int ng = std::min(kLanes, nb - g);
            const std::size_t first = c0 + static_cast<std::size_t>(g);
            float* x = row(dnn_ws_.xc, g);
            if (ng >= kMinLanes) candidate_input_lanes(cands, first, ng, x);
            else
                for (int c = 0; c < ng; ++c) candidate_input(cands, first + static_cast<std::size_t>(c), row(x, c), false);
        }
        Dnn::candidates(m_.dnn(), nb, dnn_ws_.xc, dnn_ws_.ldxc, dnn_ws_, dnn_ws_.logits);
        for (int c = 0; c < nb; ++c) out[c0 + static_cast<std::size_t>(c)] = checked_output(dnn_ws_.logits[c]);
    }
}

template <class M>
void Scorer<M>::score_reference(const Candidates& cands, float* out) {
    require_user();
    validate(cands);
    for (std::size_t c = 0; c < cands.count; ++c) {
        candidate_input(cands, c, dnn_ws_.xfull, true);
        fill_request_pieces(dnn_ws_.xfull);
        out[c] = checked_output(Dnn::reference(m_.dnn(), dnn_ws_));
    }
}

template <class M>
Explanation Scorer<M>::explain(const Candidates& cands, std::size_t c) {
    require_user();
    if (c >= cands.count) detail::fail("explain: candidate ", c, " out of range (", cands.count, " candidates)");
    validate(cands, false);
    validate(Candidates{1, cands.ids ? cands.ids + c * cands.id_stride : nullptr, cands.id_stride,
                        cands.values ? cands.values + c * cands.value_stride : nullptr, cands.value_stride});
    Explanation e;
    candidate_input(cands, c, dnn_ws_.xc, false);
    e.logit = logit_of(dnn_ws_.xc);
    e.probability = checked_output(e.logit);
    const auto& br = m_.branches();
    for (std::size_t i = 0; i < br.size(); ++i)
        for (int h = 0; h < br[i].H; ++h) {
            const float* w = weights(i, h);
            const int off = interest_offset(i, h);
            std::vector<float> saved(dnn_ws_.xc + off, dnn_ws_.xc + off + br[i].D);
            std::fill(dnn_ws_.xc + off, dnn_ws_.xc + off + br[i].D, 0.0f);
            const float without = logit_of(dnn_ws_.xc);
            std::copy(saved.begin(), saved.end(), dnn_ws_.xc + off);
            e.heads.push_back({static_cast<int>(i), h, std::vector<float>(w, w + br[i].L), e.logit - without});
        }
    return e;
}

}  // namespace dmin
