// Every FuxiCTR case (../shared/fuxictr-cases, copied to tests/data/fuxictr) exported with dmin-export
// must reproduce FuxiCTR's own predictions within 1e-5, runtime-sized and compile-time-sized.
#include "catch.hpp"

#include "test_util.hpp"

namespace {

template <class Net>
void check_case(const std::string& name) {
    const std::string file = dmin_test::work_dir() + "/fuxictr/" + name + ".safetensors";
    const auto net = dmin::load<Net>(file, dmin::LoadOptions{true});
    const auto inputs = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + name + "/inputs.json");
    const auto expected = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + name + "/expected.json");
    const auto samples = dmin::samples_from_json(net, inputs);
    const auto& y = expected.at("y_pred");
    REQUIRE(samples.size() == y.size());
    REQUIRE(samples.size() == 256);
    dmin::Scorer<Net> scorer(net);
    double worst = 0;
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const double want = y[i].get<double>();
        const float slow = scorer.predict(samples[i].view());
        float fast = 0;
        scorer.score(scorer.candidate_from(samples[i].view()), &fast);
        INFO(name << " sample " << i << " want " << want << " reference path " << slow << " fast path " << fast);
        REQUIRE(std::fabs(slow - want) <= 1e-5);
        REQUIRE(std::fabs(fast - want) <= 1e-5);
        worst = std::max({worst, std::fabs(slow - want), std::fabs(fast - want)});
    }
    WARN(name << ": max |p - FuxiCTR| = " << worst);
}

}  // namespace

TEST_CASE("FuxiCTR cases, runtime-sized model", "[fuxictr]") {
    for (const char* c : {"tiny_seq_trained", "heads2_dice_bn", "heads4_prelu", "sum_pooling"}) {
        SECTION(c) { check_case<dmin::Model<>>(c); }
    }
}

TEST_CASE("FuxiCTR cases, compile-time-sized model", "[fuxictr]") {
    using dmin::Units;
    check_case<dmin::Model<dmin::Shape<8, 5, 2, 8, Units<80, 40>, Units<64, 32>, 128>>>("tiny_seq_trained");
    check_case<dmin::Model<dmin::Shape<8, 5, 2, 8, Units<80, 40>, Units<64, 32>, 128>>>("heads2_dice_bn");
    check_case<dmin::Model<dmin::Shape<12, 5, 4, 8, Units<64, 32, 16>, Units<48, 24>, 216>>>("heads4_prelu");
    check_case<dmin::Model<dmin::Shape<8, 5, 2, 4, Units<80, 40>, Units<64, 32>, 144>>>("sum_pooling");
}

TEST_CASE("a compile-time shape that does not fit reports every mismatch at once", "[fuxictr][errors]") {
    const std::string file = dmin_test::work_dir() + "/fuxictr/heads4_prelu.safetensors";
    try {
        (void)dmin::load<dmin::Model<dmin::Shape<8, 6, 2, 8, dmin::Units<64, 32>, dmin::Units<48, 24, 12>, 100>>>(file);
        FAIL("expected dmin::Error");
    } catch (const dmin::Error& e) {
        const std::string msg = e.what();
        CHECK_THAT(msg, Catch::Contains("D (model dim) of branch 0: shape type has 8, file has 12"));
        CHECK_THAT(msg, Catch::Contains("L (max_len) of branch 0: shape type has 6, file has 5"));
        CHECK_THAT(msg, Catch::Contains("H (num_heads) of branch 0: shape type has 2, file has 4"));
        CHECK_THAT(msg, Catch::Contains("attention MLP widths: shape type has Units<64, 32>, file has Units<64, 32, 16>"));
        CHECK_THAT(msg, Catch::Contains("DNN widths: shape type has Units<48, 24, 12>, file has Units<48, 24>"));
        CHECK_THAT(msg, Catch::Contains("X (DNN input width): shape type has 100, file has 216"));
        CHECK_THAT(msg, Catch::Contains("(use dmin::Shape<12, 5, 4, 8, dmin::Units<64, 32, 16>, dmin::Units<48, 24>, 216> or dmin::dynamic_shape)"));
    }
}
