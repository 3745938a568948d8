// The scorer targets' input format (fuzz_scorer, fuzz_isa): bytes decoded into one round of a request
// for a given model — a user (ids and values in the model's layout) and 0..300 candidates with odd
// strides, hostile ids and floats, sometimes null arrays — together with what a correct scorer must do
// with it (which parts are valid). Both targets read the same bytes the same way, so each one's corpus
// seeds the other (tools/fuzz-campaign, tests/reliability/fuzz_run.py).
//
// Templated on the model type: dmin::Model<> (fuzz_scorer) and dmin::dispatch::Model (fuzz_isa) offer
// the same spec(), slot() and num_*() accessors.
#pragma once

#include "fuzz_common.hpp"

#include <limits>

namespace dmin_fuzz {

/// An id for a feature of vocabulary v: mostly valid, sometimes hostile. Clears `valid` if out of range.
inline std::int64_t pick_id(Bytes& in, std::int64_t v, bool nonzero, bool& valid) {
    const std::uint8_t mode = in.u8();
    std::int64_t id;
    switch (mode % 16) {
        case 0: id = static_cast<std::int64_t>(in.u64()); break;
        case 1: id = -1; break;
        case 2: id = v; break;
        case 3: id = std::numeric_limits<std::int64_t>::min(); break;
        case 4: id = std::numeric_limits<std::int64_t>::max(); break;
        case 5: id = v - 1; break;
        default: id = static_cast<std::int64_t>(in.below(static_cast<std::uint64_t>(v))); break;
    }
    if (nonzero && id == 0 && v > 1 && mode % 16 > 5) id = 1;
    if (id < 0 || id >= v) valid = false;
    return id;
}

/// A float: mostly moderate, sometimes NaN/Inf/raw bits. Clears `valid` if not finite; tracks the
/// largest finite magnitude in `big`.
inline float pick_value(Bytes& in, bool& valid, float& big) {
    const std::uint8_t mode = in.u8();
    float x;
    switch (mode % 16) {
        case 0: x = in.raw_float(); break;
        case 1: x = std::numeric_limits<float>::quiet_NaN(); break;
        case 2: x = std::numeric_limits<float>::infinity(); break;
        case 3: x = -std::numeric_limits<float>::infinity(); break;
        case 4: x = std::numeric_limits<float>::denorm_min(); break;
        case 5: x = static_cast<float>(static_cast<std::int16_t>(in.u32() & 0xffff)) * 16.0f; break;  // |x| <= 5e5
        default: x = static_cast<float>(static_cast<std::int8_t>(in.u8())) / 32.0f; break;           // |x| <= 4
    }
    if (!std::isfinite(x)) valid = false;
    else big = std::max(big, std::fabs(x));
    return x;
}

/// One round of a scorer input: the request and the verdicts a correct scorer must reach on it.
struct ScorerRound {
    std::vector<std::int64_t> ids, cids;
    std::vector<float> values, cvals;
    bool user_valid = true;       ///< set_user must accept the user
    float big = 0;                ///< largest finite |value| anywhere in the request
    std::size_t n = 0, id_stride = 1, value_stride = 1;
    std::vector<bool> row_valid;  ///< per candidate: every id and value in range
    bool null_ids = false, null_values = false;
    bool null_needed = false;     ///< a null array the model needs (with n > 0): score must reject

    dmin::SampleView user() const { return {ids.data(), values.data()}; }
    dmin::Candidates candidates() const {
        return {n, null_ids ? nullptr : cids.data(), id_stride, null_values ? nullptr : cvals.data(), value_stride};
    }
    /// Whether score() must accept the request once set_user accepted the user.
    bool rows_valid() const {
        bool ok = !null_needed;
        for (std::size_t c = 0; c < n; ++c) ok = ok && row_valid[c];
        return ok;
    }
    /// Whether explain(c) must accept candidate c once set_user accepted the user.
    bool explainable(std::size_t c) const { return c < n && row_valid[c] && !null_needed; }
    /// A valid request may still overflow to a non-finite score when numeric values are huge; the
    /// scorer then throws "not finite" (after writing the blocks before the offending candidate).
    bool overflow_excuses(const std::string& msg) const { return big > 1e4f && msg.find("not finite") != std::string::npos; }
};

/// The user part: one value per feature that is not a candidate's, in the model's layout.
template <class M>
void decode_user(Bytes& in, const M& m, ScorerRound& r) {
    const auto& spec = m.spec();
    r.ids.assign(static_cast<std::size_t>(m.num_ids()), 0);
    r.values.assign(static_cast<std::size_t>(m.num_values()), 0.0f);
    for (std::size_t f = 0; f < spec.features.size(); ++f) {
        const auto& x = spec.features[f];
        const auto off = static_cast<std::size_t>(m.slot(static_cast<int>(f)).offset);
        bool ok = true;
        if (x.type == dmin::FeatureType::numeric) {
            r.values[off] = pick_value(in, ok, r.big);
        } else if (x.type == dmin::FeatureType::categorical) {
            r.ids[off] = pick_id(in, x.vocab_size, false, ok);
        } else {
            const auto L = static_cast<std::uint64_t>(x.max_len);
            const std::uint8_t fill_mode = in.u8() % 4;
            const std::uint64_t fill = fill_mode == 0 ? 0 : fill_mode == 1 ? L : in.below(L + 1);
            for (std::uint64_t k = 0; k < fill; ++k) {
                std::int64_t id;
                if (in.u8() % 8 == 0) id = pick_id(in, x.vocab_size, false, ok);  // incl. padding in the middle
                else if (x.vocab_size == 1) id = 0;
                else id = 1 + static_cast<std::int64_t>(in.below(static_cast<std::uint64_t>(x.vocab_size - 1)));
                r.ids[off + k] = id;
            }
        }
        if (x.role != dmin::Role::candidate) r.user_valid &= ok;  // the view's candidate features are ignored
    }
}

/// The candidates: count, strides, per-row features (moderate or hostile), null arrays.
template <class M>
void decode_candidates(Bytes& in, const M& m, ScorerRound& r) {
    const auto& spec = m.spec();
    const std::size_t ni = static_cast<std::size_t>(m.num_candidate_ids()), nv = static_cast<std::size_t>(m.num_candidate_values());
    r.n = in.u8() % 8 == 0 ? 0 : 1 + in.below(300);
    const std::size_t id_pad = in.below(3), value_pad = in.below(3);  // strides wider than a row, sometimes
    r.id_stride = std::max<std::size_t>(ni, 1) + id_pad;
    r.value_stride = std::max<std::size_t>(nv, 1) + value_pad;
    r.cids.assign(std::max<std::size_t>(r.n, 1) * r.id_stride, 0);
    r.cvals.assign(std::max<std::size_t>(r.n, 1) * r.value_stride, 0.0f);
    r.row_valid.assign(r.n, true);
    const bool hostile_rows = in.u8() % 4 == 0;
    for (std::size_t c = 0; c < r.n; ++c)
        for (std::size_t f = 0; f < spec.features.size(); ++f) {
            const auto& x = spec.features[f];
            if (x.role != dmin::Role::candidate) continue;
            const auto off = static_cast<std::size_t>(m.slot(static_cast<int>(f)).cand_offset);
            bool ok = true;
            if (x.type == dmin::FeatureType::numeric) {
                r.cvals[c * r.value_stride + off] = hostile_rows ? pick_value(in, ok, r.big)
                                                                 : static_cast<float>(static_cast<std::int8_t>(in.u8())) / 32.0f;
            } else {
                r.cids[c * r.id_stride + off] = hostile_rows ? pick_id(in, x.vocab_size, false, ok)
                                                             : static_cast<std::int64_t>(in.below(static_cast<std::uint64_t>(x.vocab_size)));
            }
            if (!ok) r.row_valid[c] = false;
        }
    const std::uint8_t null_mode = in.u8();
    r.null_ids = null_mode == 1;
    r.null_values = null_mode == 2;
    r.null_needed = r.n > 0 && ((r.null_ids && ni > 0) || (r.null_values && nv > 0));
}

template <class M>
ScorerRound decode_round(Bytes& in, const M& m) {
    ScorerRound r;
    decode_user(in, m, r);
    decode_candidates(in, m, r);
    return r;
}

}  // namespace dmin_fuzz
