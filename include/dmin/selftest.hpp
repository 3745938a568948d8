// dmin/selftest.hpp — replays the reference input/output pair stored in a weights file.
#pragma once

#include <algorithm>
#include <cmath>

#include "dmin/io/json.hpp"
#include "dmin/model.hpp"
#include "dmin/sample.hpp"
#include "dmin/scorer.hpp"

namespace dmin {

/// Result of replaying the stored reference pair.
struct SelfTestReport {
    std::size_t samples = 0;
    double max_abs_diff = 0;       ///< max |p_dmin − p_ref| of the reference path (float32 in every precision)
    double fast_max_abs_diff = 0;  ///< the same for the fast path (score())
    double tolerance = 0;          ///< the reference path's: the file's, or with bf16 tables max(file's, kBf16SelfTestTolerance)
    double fast_tolerance = 0;     ///< the fast path's: in bf16 mode max(tolerance, kBf16SelfTestTolerance)
    bool passed = true;
};

template <class M>
SelfTestReport replay_reference(const M& model) {
    if (model.reference_json().empty()) detail::fail("self-test: the weights file carries no reference pair");
    const auto doc = io::parse_strict(model.reference_json(), "reference");
    const io::Fields f{doc, "reference"};
    const auto& preds = f.at("predictions");
    const auto samples = samples_from_json(model, doc);
    if (!preds.is_array() || preds.size() != samples.size())
        detail::fail("reference: ", samples.size(), " samples but predictions is ", preds.dump().substr(0, 80));
    SelfTestReport r;
    r.tolerance = f.number_or("tolerance", 1e-5);
    // The reference path is float32 in every precision; the fast path rounds to bf16 in bf16 mode. Tables
    // kept in bf16 (rounded from a float32 file's) feed both paths.
    if (model.bf16_tables()) r.tolerance = std::max(r.tolerance, kBf16SelfTestTolerance);
    r.fast_tolerance = model.precision() == Precision::bf16 ? std::max(r.tolerance, kBf16SelfTestTolerance) : r.tolerance;
    r.samples = samples.size();
    Scorer<M> scorer(model);
    for (std::size_t i = 0; i < samples.size(); ++i) {
        if (!preds[i].is_number()) detail::fail("reference: predictions[", i, "] is a ", preds[i].type_name(), ", expected a number");
        const double want = preds[i].get<double>();
        const float slow = scorer.predict(samples[i].view());
        float fast = 0;
        scorer.score(scorer.candidate_from(samples[i].view()), &fast);
        for (int path = 0; path < 2; ++path) {
            const double d = std::fabs((path ? fast : slow) - want), tol = path ? r.fast_tolerance : r.tolerance;
            (path ? r.fast_max_abs_diff : r.max_abs_diff) = std::max(path ? r.fast_max_abs_diff : r.max_abs_diff, d);
            if (!(d <= tol + tol * std::fabs(want))) r.passed = false;
        }
    }
    return r;
}

template <class M>
double self_test(const M& model) {
    const auto r = replay_reference(model);
    if (!r.passed)
        detail::fail("self-test failed: max |dp| = ", r.max_abs_diff, " (reference path), ", r.fast_max_abs_diff, " (fast path, ",
                     precision_name(model.precision()), ") over ", r.samples, " reference samples; tolerance ", r.tolerance,
                     r.fast_tolerance != r.tolerance ? " (fast path " + std::to_string(r.fast_tolerance) + ")" : std::string());
    return std::max(r.max_abs_diff, r.fast_max_abs_diff);
}

}  // namespace dmin
