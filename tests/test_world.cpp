// The shipped example model (examples/models, trained by python/world/train.py on the synthetic
// multi-interest world): the C++ fast path reproduces PyTorch's held-out predictions one by one, and
// the held-out AUC computed here equals the recorded one and shows the model learned something.
#include "catch.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "test_util.hpp"

#ifndef DMIN_EXAMPLES_DIR
#error "compile with -DDMIN_EXAMPLES_DIR=\"<repo>/examples\""
#endif

namespace {

std::string examples_dir() { return dmin_test::env_or("DMIN_EXAMPLES_DIR", DMIN_EXAMPLES_DIR); }

}  // namespace

TEST_CASE("world model: fast path matches PyTorch on every held-out sample, AUC as recorded", "[world]") {
    const std::string dir = examples_dir() + "/models";
    const auto model = dmin::load(dir + "/multi_interest_world.safetensors", dmin::LoadOptions{/*self_test=*/true});
    const auto& spec = model.spec();

    // The roles the example relies on: (item_id, cate_id) are candidate rows, hour is context.
    REQUIRE(spec.branches.size() == 1);
    for (const char* f : {"item_id", "cate_id"}) {
        INFO(f);
        REQUIRE(spec.feature_index(f) >= 0);
        CHECK(spec.features[static_cast<std::size_t>(spec.feature_index(f))].role == dmin::Role::candidate);
    }
    REQUIRE(spec.feature_index("hour") >= 0);
    CHECK(spec.features[static_cast<std::size_t>(spec.feature_index("hour"))].role == dmin::Role::context);

    const auto doc = dmin_test::read_json(dir + "/world_heldout.json");
    const auto samples = dmin::samples_from_json(model, doc);
    const auto& want = doc.at("predictions");
    const auto& labels_json = doc.at("labels");
    REQUIRE(samples.size() >= 500);
    REQUIRE(want.size() == samples.size());
    REQUIRE(labels_json.size() == samples.size());

    dmin::Scorer<dmin::Model<>> scorer(model);
    std::vector<double> got(samples.size());
    std::vector<int> labels(samples.size());
    std::size_t bad = 0, first_bad = 0;
    double max_diff = 0;
    for (std::size_t i = 0; i < samples.size(); ++i) {
        scorer.set_user(samples[i].view());
        float p = 0;
        scorer.score(scorer.candidate_from(samples[i].view()), &p);
        got[i] = p;
        labels[i] = labels_json[i].get<int>();
        const double w = want[i].get<double>();
        max_diff = std::max(max_diff, std::fabs(got[i] - w));
        if (!dmin_test::close(got[i], w) && bad++ == 0) first_bad = i;
    }
    INFO("samples " << samples.size() << ", max |p - p_torch| " << max_diff << ", " << bad << " beyond 1e-5 + 1e-5|p|"
                    << (bad ? ", first: sample " + std::to_string(first_bad) + " got " + std::to_string(got[first_bad]) +
                                  " want " + std::to_string(want[first_bad].get<double>())
                            : std::string()));
    CHECK(bad == 0);

    const double auc = dmin_test::roc_auc(labels, got);
    const double recorded = doc.at("auc").get<double>();
    INFO("AUC here " << auc << ", recorded " << recorded);
    CHECK(std::fabs(auc - recorded) <= 1e-4);
    CHECK(auc > 0.6);
}
