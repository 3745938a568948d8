// dmin/candidates.hpp — the plain views a request is read through (SampleView, Candidates) and the
// Explanation of one candidate's score: what the scorer and the owning sample types share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dmin {

/// A sample in the fast path: ids (int64) and numeric values (float) in the model's layout
/// (Model::slot()). Sequences occupy exactly max_len ids, 0 = padding.
struct SampleView {
    const std::int64_t* ids = nullptr;
    const float* values = nullptr;
};

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

}  // namespace dmin
