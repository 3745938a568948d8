// Random but valid requests for any dmin model: what the examples use when they know nothing about
// the ids behind a weights file. A real service fills the same structures from its feature store.
#pragma once

#include <dmin/dmin.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace example {

/// Command-line count: a non-negative decimal integer, else std::invalid_argument naming the option.
inline std::size_t parse_count(const std::string& option, const std::string& text) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 12)
        throw std::invalid_argument("option " + option + ": expected a non-negative integer, found \"" + text + "\"");
    return static_cast<std::size_t>(std::stoull(text));
}

/// A random valid id of a categorical/sequence feature: 1 .. vocab-1 (0 is padding), avoiding the
/// OOV index when the vocabulary has other ids.
inline std::int64_t random_id(const dmin::FeatureSpec& f, std::mt19937& rng) {
    if (f.vocab_size <= 1) return 0;
    const bool skip_oov = f.oov_idx >= 1 && f.oov_idx < f.vocab_size && f.vocab_size > 2;
    auto id = std::uniform_int_distribution<std::int64_t>(1, f.vocab_size - (skip_oov ? 2 : 1))(rng);
    if (skip_oov && id >= f.oov_idx) ++id;  // map onto 1 .. vocab-1 without oov_idx
    return id;
}

/// Every user/context feature of the model set to a random valid value; each behaviour sequence
/// gets round(fill · max_len) random ids (the rest is padding). Candidate features are left unset.
template <class M>
dmin::Sample random_user(const M& model, std::mt19937& rng, double fill) {
    dmin::Sample user(model);
    for (const auto& f : model.spec().features) {
        if (f.role == dmin::Role::candidate) continue;
        if (f.type == dmin::FeatureType::numeric) {
            user.set_value(f.name, std::uniform_real_distribution<double>(0.0, 1.0)(rng));
        } else if (f.type == dmin::FeatureType::categorical) {
            user.set(f.name, random_id(f, rng));
        } else {
            const auto n = static_cast<std::size_t>(std::clamp(fill, 0.0, 1.0) * f.max_len + 0.5);
            std::vector<std::int64_t> seq(n);
            for (auto& id : seq) id = random_id(f, rng);
            user.set(f.name, seq);
        }
    }
    return user;
}

/// N candidate rows (the model's candidate-role features, Model::slot(f).cand_offset order) that own
/// their storage; view() is what Scorer::score takes.
struct CandidateRows {
    std::size_t count = 0, id_stride = 1, value_stride = 1;
    std::vector<std::int64_t> ids;
    std::vector<float> values;

    template <class M>
    CandidateRows(const M& model, std::size_t n)
        : count(n), id_stride(static_cast<std::size_t>(std::max(1, model.num_candidate_ids()))),
          value_stride(static_cast<std::size_t>(std::max(1, model.num_candidate_values()))),
          ids(n * id_stride, 0), values(n * value_stride, 0.0f) {}

    dmin::Candidates view() const { return slice(0, count); }
    /// Candidates from .. from+n-1 (a part of the request for one thread, say).
    dmin::Candidates slice(std::size_t from, std::size_t n) const {
        return dmin::Candidates{n, ids.data() + from * id_stride, id_stride, values.data() + from * value_stride, value_stride};
    }
    /// Where feature f of candidate c lives (f must be a candidate-role categorical feature).
    template <class M>
    std::int64_t& id(const M& model, std::size_t c, int f) {
        return ids[c * id_stride + static_cast<std::size_t>(model.slot(f).cand_offset)];
    }
};

/// N candidates with every candidate-role feature random (numeric: uniform in [0, 1)).
template <class M>
CandidateRows random_candidates(const M& model, std::size_t n, std::mt19937& rng) {
    CandidateRows rows(model, n);
    const auto& features = model.spec().features;
    for (std::size_t c = 0; c < n; ++c)
        for (std::size_t f = 0; f < features.size(); ++f) {
            const auto& x = features[f];
            if (x.role != dmin::Role::candidate) continue;
            const auto off = static_cast<std::size_t>(model.slot(static_cast<int>(f)).cand_offset);
            if (x.type == dmin::FeatureType::numeric)
                rows.values[c * rows.value_stride + off] = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
            else
                rows.ids[c * rows.id_stride + off] = random_id(x, rng);
        }
    return rows;
}

/// A whole random request from one seed: what the benchmarks and `dmin bench` time, the same run to run.
struct RandomRequest {
    dmin::Sample user;
    CandidateRows candidates;
};

template <class M>
RandomRequest random_request(const M& model, std::size_t n, double fill, std::uint32_t seed) {
    std::mt19937 rng(seed);
    dmin::Sample user = random_user(model, rng, fill);  // the user first: one sequence of draws per seed
    return RandomRequest{std::move(user), random_candidates(model, n, rng)};
}

}  // namespace example
