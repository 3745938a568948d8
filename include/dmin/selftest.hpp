// dmin/selftest.hpp — replays the reference input/output pair stored in a weights file.
#pragma once

#include <cmath>

#include "dmin/io/json.hpp"
#include "dmin/model.hpp"
#include "dmin/sample.hpp"
#include "dmin/scorer.hpp"

namespace dmin {

/// Result of replaying the stored reference pair.
struct SelfTestReport {
    std::size_t samples = 0;
    double max_abs_diff = 0;  ///< max |p_dmin − p_ref| over the fast and the reference path
    double tolerance = 0;
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
    r.samples = samples.size();
    Scorer<M> scorer(model);
    for (std::size_t i = 0; i < samples.size(); ++i) {
        if (!preds[i].is_number()) detail::fail("reference: predictions[", i, "] is a ", preds[i].type_name(), ", expected a number");
        const double want = preds[i].get<double>();
        const float slow = scorer.predict(samples[i].view());
        float fast = 0;
        scorer.score(scorer.candidate_from(samples[i].view()), &fast);
        for (double got : {static_cast<double>(slow), static_cast<double>(fast)}) {
            const double d = std::fabs(got - want);
            r.max_abs_diff = std::max(r.max_abs_diff, d);
            if (!(d <= r.tolerance + r.tolerance * std::fabs(want))) r.passed = false;
        }
    }
    return r;
}

template <class M>
double self_test(const M& model) {
    const auto r = replay_reference(model);
    if (!r.passed)
        detail::fail("self-test failed: max |dp| = ", r.max_abs_diff, " over ", r.samples, " reference samples exceeds tolerance ",
                     r.tolerance);
    return r.max_abs_diff;
}

}  // namespace dmin
