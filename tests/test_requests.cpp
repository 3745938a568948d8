// Requests a user can send: every bad input yields a dmin::Error naming the feature (and sample), or
// follows the documented policy (padding, truncation, all-padding average).
#include "catch.hpp"

#include <limits>

#include "test_util.hpp"

using dmin::io::json;

namespace {
const dmin::Model<>& tiny() {
    static const auto m = dmin::load(dmin_test::work_dir() + "/fuxictr/tiny_seq_trained.safetensors");
    return m;
}
const dmin::Model<>& numeric() {
    static const auto m = dmin::load(dmin_test::work_dir() + "/random/numeric_context.safetensors");
    return m;
}
json base_sample() {
    return dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/tiny_seq_trained/inputs.json").at("samples").at(0);
}
float predict(const dmin::Model<>& m, const dmin::Sample& s) {
    dmin::Scorer<dmin::Model<>> sc(m);
    sc.set_user(s.view());
    float p = 0;
    sc.score(sc.candidate_from(s.view()), &p);
    return p;
}
}  // namespace

TEST_CASE("JSON samples: each bad input names the sample and the feature", "[requests][errors]") {
    const auto& m = tiny();
    auto expect = [&](json s, const std::vector<std::string>& parts) {
        json doc = {{"samples", json::array({base_sample(), s})}};
        try {
            (void)dmin::samples_from_json(m, doc);
            FAIL("expected dmin::Error for " << s.dump());
        } catch (const dmin::Error& e) {
            CHECK_THAT(e.what(), Catch::Contains("sample 1: "));
            for (const auto& p : parts) CHECK_THAT(e.what(), Catch::Contains(p));
        }
    };
    json s = base_sample();
    s["colour"] = 3;
    expect(s, {"unknown feature \"colour\""});
    s = base_sample();
    s.erase("pid");
    expect(s, {"pid", "missing"});
    s = base_sample();
    s["pid"] = 4;
    expect(s, {"pid", "id 4 out of range [0, 4)"});
    s = base_sample();
    s["pid"] = -1;
    expect(s, {"pid", "id -1 out of range"});
    s = base_sample();
    s["pid"] = 1.5;
    expect(s, {"pid", "expected an integer id"});
    s = base_sample();
    s["pid"] = "1";
    expect(s, {"pid", "expected an integer id"});
    s = base_sample();
    s["click_sequence"] = {1, 2, 3, 4, 5, 6};
    expect(s, {"click_sequence", "length 6 exceeds max_len 5"});
    s = base_sample();
    s["click_sequence"] = 7;
    expect(s, {"click_sequence", "expected a list of ids"});
    s = base_sample();
    s["click_sequence"] = {1, "x"};
    expect(s, {"click_sequence", "integer ids"});
    s = base_sample();
    s["click_sequence"] = {1, 96};
    expect(s, {"click_sequence", "id 96 out of range [0, 96)"});
    CHECK_THROWS_WITH(dmin::samples_from_json(m, json{{"rows", 1}}), Catch::Contains("expected {\"samples\""));
    CHECK_THROWS_WITH(dmin::samples_from_json(m, json{{"samples", {1}}}), Catch::Contains("sample 0: expected an object"));
}

TEST_CASE("sequence policy: padding, empty, truncation", "[requests]") {
    const auto& m = tiny();
    json s = base_sample();
    s["click_sequence"] = {5, 9};
    const auto short_seq = dmin::sample_from_json(m, s);
    s["click_sequence"] = {5, 9, 0, 0, 0};
    const auto padded = dmin::sample_from_json(m, s);
    CHECK(short_seq.ids() == padded.ids());
    CHECK(predict(m, short_seq) == predict(m, padded));

    s["click_sequence"] = json::array();
    const auto empty = dmin::sample_from_json(m, s);
    s["click_sequence"] = {0, 0, 0, 0, 0};
    const auto zeros = dmin::sample_from_json(m, s);
    CHECK(predict(m, empty) == predict(m, zeros));

    s["click_sequence"] = {1, 2, 3, 4, 5, 6, 7};
    const auto first = dmin::sample_from_json(m, s, dmin::OverlongPolicy::keep_first);
    const auto last = dmin::sample_from_json(m, s, dmin::OverlongPolicy::keep_last);
    s["click_sequence"] = {1, 2, 3, 4, 5};
    CHECK(first.ids() == dmin::sample_from_json(m, s).ids());
    s["click_sequence"] = {3, 4, 5, 6, 7};
    CHECK(last.ids() == dmin::sample_from_json(m, s).ids());
}

TEST_CASE("all-padding sequences average every position, as FuxiCTR does", "[requests]") {
    const auto& m = tiny();
    json s = base_sample();
    s["click_sequence"] = json::array();
    const auto smp = dmin::sample_from_json(m, s);
    dmin::Scorer<dmin::Model<>> sc(m);
    sc.set_user(smp.view());
    float fast = 0, slow = 0;
    sc.score(sc.candidate_from(smp.view()), &fast);
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 5; ++l) CHECK(sc.weights(0, h)[l] == Approx(0.2f));
    sc.score_reference(sc.candidate_from(smp.view()), &slow);
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 5; ++l) CHECK(sc.weights(0, h)[l] == Approx(0.2f));
    CHECK(dmin_test::close(fast, slow));
    CHECK(std::isfinite(fast));
}

TEST_CASE("numeric features: NaN and Inf are rejected on every path", "[requests][errors]") {
    const auto& m = numeric();
    dmin::Sample s(m);
    CHECK_THROWS_WITH(s.set_value("ctx_score", std::numeric_limits<double>::quiet_NaN()), Catch::Contains("ctx_score") && Catch::Contains("not finite"));
    CHECK_THROWS_WITH(s.set_value("ctx_score", std::numeric_limits<double>::infinity()), Catch::Contains("not finite"));
    CHECK_THROWS_WITH(s.set_value("userid", 1.0), Catch::Contains("userid"));
    // Fast path (raw SampleView): the scorer validates too.
    std::vector<std::int64_t> ids(static_cast<std::size_t>(m.num_ids()), 1);
    std::vector<float> values(static_cast<std::size_t>(m.num_values()), 0.5f);
    dmin::Scorer<dmin::Model<>> sc(m);
    REQUIRE_NOTHROW(sc.set_user({ids.data(), values.data()}));
    const int ctx = m.spec().feature_index("ctx_score");
    values[static_cast<std::size_t>(m.slot(ctx).offset)] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(sc.set_user({ids.data(), values.data()}), Catch::Contains("ctx_score") && Catch::Contains("not finite"));
    // After a failed set_user the scorer refuses to score rather than use a half-set user.
    float p = 0;
    CHECK_THROWS_WITH(sc.score(sc.candidate_from({ids.data(), values.data()}), &p), Catch::Contains("set_user"));
    values[static_cast<std::size_t>(m.slot(ctx).offset)] = 0.5f;
    const int user = m.spec().feature_index("userid");
    ids[static_cast<std::size_t>(m.slot(user).offset)] = 30;
    CHECK_THROWS_WITH(sc.set_user({ids.data(), values.data()}), Catch::Contains("userid") && Catch::Contains("out of range [0, 30)"));
}

TEST_CASE("convenience path by name", "[requests]") {
    const auto& m = tiny();
    dmin::Sample s(m);
    CHECK_THROWS_WITH(s.set("nope", 1), Catch::Contains("unknown feature \"nope\""));
    CHECK_THROWS_WITH(s.set("click_sequence", 1), Catch::Contains("expected a list of ids"));
    CHECK_THROWS_WITH(s.set("pid", std::vector<std::int64_t>{1}), Catch::Contains("expected a single value"));
    CHECK_THROWS_WITH(s.require_complete(), Catch::Contains("missing"));
}

TEST_CASE("CandidateBatch builds candidate rows by name and validates them", "[requests]") {
    const auto& m = numeric();
    dmin::CandidateBatch batch(m, 3);
    batch.set(0, "item_id", 7).set_value(0, "price", 1.5);
    batch.set(2, "item_id", 59);
    CHECK_THROWS_WITH(batch.set(1, "item_id", 60), Catch::Contains("candidate 1") && Catch::Contains("out of range [0, 60)"));
    CHECK_THROWS_WITH(batch.set(3, "item_id", 1), Catch::Contains("candidate 3 out of range"));
    CHECK_THROWS_WITH(batch.set(0, "userid", 1), Catch::Contains("not a candidate feature"));
    CHECK_THROWS_WITH(batch.set(0, "price", 1), Catch::Contains("is numeric"));
    CHECK_THROWS_WITH(batch.set_value(0, "price", std::nan("")), Catch::Contains("not finite"));
    CHECK_THROWS_WITH(batch.set_raw(0, "item_id", "x"), Catch::Contains("no vocabulary"));
    const auto v = batch.view();
    const int item = m.spec().feature_index("item_id"), price = m.spec().feature_index("price");
    CHECK(v.count == 3);
    CHECK(v.ids[2 * v.id_stride + static_cast<std::size_t>(m.slot(item).cand_offset)] == 59);
    CHECK(v.values[0 * v.value_stride + static_cast<std::size_t>(m.slot(price).cand_offset)] == 1.5f);
}

TEST_CASE("hostile requests found by fuzzing stay clear errors", "[requests][errors]") {
    const auto& m = numeric();
    // Deeply nested JSON is refused before the recursive parser sees it.
    std::string deep(30000, '[');
    CHECK_THROWS_WITH(dmin::io::parse_strict(deep, "input"), Catch::Contains("nesting deeper than"));
    // A finite but absurd numeric value overflows inside the model: an error, not a NaN score.
    dmin::Sample s(m);
    for (const auto& f : m.spec().features) {
        if (f.type == dmin::FeatureType::numeric) s.set_value(f.name, 0.5);
        else if (f.type == dmin::FeatureType::categorical) s.set(f.name, 1);
        else s.set(f.name, std::vector<std::int64_t>{1, 2});
    }
    s.set_value("price", 3e38);
    dmin::Scorer<dmin::Model<>> sc(m);
    sc.set_user(s.view());
    float p = 0;
    CHECK_THROWS_WITH(sc.score(sc.candidate_from(s.view()), &p), Catch::Contains("not finite"));
    // Null rows or too-small strides in a candidate view.
    CHECK_THROWS_WITH(sc.explain(dmin::Candidates{3, nullptr, 1, nullptr, 1}, 1), Catch::Contains("ids is null"));
    const auto one = sc.candidate_from(s.view());
    CHECK_THROWS_WITH(sc.score(dmin::Candidates{2, one.ids, 0, one.values, one.value_stride}, &p), Catch::Contains("id_stride"));
}
