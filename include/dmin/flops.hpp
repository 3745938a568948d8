// dmin/flops.hpp — floating-point operation counts of a request, for GFLOP/s figures and floors.
#pragma once

#include "dmin/model.hpp"

namespace dmin {

struct FlopCount {
    double user = 0;           ///< candidate-independent work, once per request
    double per_candidate = 0;  ///< factorised per-candidate work (what Scorer::score does)
};

/// Counts multiply-adds as 2 FLOPs. `valid` = non-padding positions per sequence (≤ L).
template <class M>
FlopCount count_flops(const M& model, int valid) {
    const auto& s = model.spec();
    FlopCount c;
    for (const auto& b : model.branches()) {
        const double L = b.L, D = b.D, H = b.H, hd = b.hd, A1 = b.A1;
        const double nv = valid < b.L ? valid : b.L;
        if (b.refiner) c.user += 2 * L * D * 3 * D + H * 4 * L * L * hd + 2 * L * D * D + 8 * L * D * D;
        c.user += 2 * L * D * 3 * D + H * (4 * L * L * hd + 2 * L * hd * D + 8 * L * D * D + 4 * nv * D * A1);
        double mlp = 0;
        const auto& units = s.attention_units;
        for (std::size_t k = 1; k < units.size(); ++k) mlp += 2.0 * units[k - 1] * units[k];
        mlp += 2.0 * units.back();
        c.per_candidate += H * (2 * D * D + 2 * D * A1 + nv * (2 * D * A1 + A1 + mlp) + 2 * nv * D);
    }
    const auto& dnn = model.dnn().mlp;
    const int cw = model.dnn().candidate_width;
    if (!dnn.hidden.empty()) {
        c.user += 2.0 * (s.dnn_input_dim - cw) * dnn.hidden[0].lin.out;
        c.per_candidate += 2.0 * cw * dnn.hidden[0].lin.out;
        for (std::size_t k = 1; k < dnn.hidden.size(); ++k) c.per_candidate += 2.0 * dnn.hidden[k].lin.in * dnn.hidden[k].lin.out;
    }
    c.per_candidate += 2.0 * dnn.head.in;
    return c;
}

}  // namespace dmin
