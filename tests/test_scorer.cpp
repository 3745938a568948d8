// Scorer behaviour: fast path = reference path over many candidates and blocks, zero heap allocation
// in set_user/score, explanations, candidate errors, zero and very many candidates.
#include "catch.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <new>
#include <random>

#include "alloc_hooks.hpp"
#include "test_util.hpp"

namespace {

using dmin_test::AllocationCounter;

/// Random valid requests for any model: one user, n candidates, fixed seed.
struct Request {
    dmin::Sample user;
    std::vector<std::int64_t> ids;
    std::vector<float> values;
    std::size_t n, ni, nv;

    Request(const dmin::Model<>& m, std::size_t count, unsigned seed, double fill = 0.7) : user(m), n(count) {
        std::mt19937 rng(seed);
        const auto& s = m.spec();
        auto id = [&](const dmin::FeatureSpec& f) { return std::uniform_int_distribution<std::int64_t>(0, f.vocab_size - 1)(rng); };
        std::uniform_real_distribution<float> val(-2, 2);
        for (const auto& f : s.features) {
            if (f.role == dmin::Role::candidate) continue;
            if (f.type == dmin::FeatureType::numeric) user.set_value(f.name, val(rng));
            else if (f.type == dmin::FeatureType::categorical) user.set(f.name, id(f));
            else {
                std::vector<std::int64_t> seq(static_cast<std::size_t>(fill * f.max_len));
                for (auto& x : seq) x = std::max<std::int64_t>(1, id(f));
                user.set(f.name, seq);
            }
        }
        ni = static_cast<std::size_t>(std::max(1, m.num_candidate_ids()));
        nv = static_cast<std::size_t>(std::max(1, m.num_candidate_values()));
        ids.assign(n * ni, 0);
        values.assign(n * nv, 0);
        for (std::size_t c = 0; c < n; ++c)
            for (std::size_t f = 0; f < s.features.size(); ++f) {
                const auto& x = s.features[f];
                if (x.role != dmin::Role::candidate) continue;
                const auto& sl = m.slot(static_cast<int>(f));
                if (x.type == dmin::FeatureType::numeric) values[c * nv + static_cast<std::size_t>(sl.cand_offset)] = val(rng);
                else ids[c * ni + static_cast<std::size_t>(sl.cand_offset)] = id(x);
            }
    }
    dmin::Candidates candidates() const { return {n, ids.data(), ni, values.data(), nv}; }
};

dmin::Model<> random_model(const std::string& name, dmin::Precision precision = dmin::Precision::float32) {
    dmin::LoadOptions o;
    o.precision = precision;
    return dmin::load(dmin_test::work_dir() + "/random/" + name + ".safetensors", o);
}

#ifdef DMIN_TEST_SANITIZED
// The reference path is the slow oracle, and instrumented at -O1 it took most of the sanitizer run. There
// it checks the last 9 candidates: of 38, the end of a full lane group and the one-at-a-time tail; of 77,
// a partly filled lane group. The fast path still scores every candidate; the main build checks them all.
constexpr std::size_t kReferenceCandidates = 9;
#else
constexpr std::size_t kReferenceCandidates = std::numeric_limits<std::size_t>::max();
#endif

}  // namespace

TEST_CASE("fast path equals the reference path for many candidates, across blocks", "[scorer]") {
    // Every random configuration, in float32 and in bf16 (whose fast path keeps the bf16 bound to the
    // float32 reference path). 77 = 2 full blocks of 32 + a tail of 13: full and partly filled lane
    // groups (interests_lanes); 38 = 32 + a tail of 6 scored one candidate at a time.
    const auto idx = dmin_test::read_json(dmin_test::work_dir() + "/random/index.json");
    for (const auto& name : idx.at("configs").get<std::vector<std::string>>())
      for (auto precision : {dmin::Precision::float32, dmin::Precision::bf16}) {
        SECTION(name + " " + dmin::precision_name(precision)) {
            const auto model = random_model(name, precision);
            const bool bf16 = precision == dmin::Precision::bf16;
            dmin::Scorer<dmin::Model<>> sc(model);
            for (std::size_t n : {77u, 38u})
                for (double fill : {0.0, 0.5, 1.0}) {
                    const Request req(model, n, 3, fill);
                    sc.set_user(req.user.view());
                    std::vector<float> fast(req.n), slow(req.n);
                    sc.score(req.candidates(), fast.data());
                    const std::size_t from = req.n - std::min(req.n, kReferenceCandidates);
                    const dmin::Candidates checked{req.n - from, req.ids.data() + from * req.ni, req.ni,
                                                   req.values.data() + from * req.nv, req.nv};
                    sc.score_reference(checked, slow.data() + from);
                    for (std::size_t c = from; c < req.n; ++c) {
                        INFO(name << " n " << n << " fill " << fill << " candidate " << c << " " << dmin::precision_name(precision));
                        if (bf16) REQUIRE(dmin_test::bf16_random_close(fast[c], slow[c], model.spec().regression()));
                        else REQUIRE(dmin_test::close(fast[c], slow[c]));
                    }
                    // A candidate's score does not depend on its batch: scored alone (one at a time) it is
                    // bit-identical to its score inside a lane group.
                    for (std::size_t c : {std::size_t{0}, std::size_t{20}, n - 1}) {
                        const dmin::Candidates one{1, req.ids.data() + c * req.ni, req.ni, req.values.data() + c * req.nv, req.nv};
                        float alone = -1;
                        sc.score(one, &alone);
                        INFO(name << " n " << n << " fill " << fill << " candidate " << c << " alone");
                        REQUIRE(alone == fast[c]);
                    }
                }
        }
    }
}

TEST_CASE("set_user and score allocate nothing after construction", "[scorer][alloc]") {
    for (const char* name : {"tiny_seq_e8_h2_l5", "two_branches", "numeric_context", "l100_d32_h4"})
      for (auto precision : {dmin::Precision::float32, dmin::Precision::bf16}) {
        const auto model = random_model(name, precision);
        const Request req(model, 300, 5);
        dmin::Scorer<dmin::Model<>> sc(model);
        std::vector<float> out(req.n);
        long n = 0;
        {
            AllocationCounter counter;
            for (int rep = 0; rep < 3; ++rep) {
                sc.set_user(req.user.view());
                sc.score(req.candidates(), out.data());
            }
            n = counter.count();
        }
        INFO(name << " " << dmin::precision_name(precision));
        CHECK(n == 0);
    }
    // The counter itself works: a vector allocation is seen.
    AllocationCounter counter;
    void* raw = ::operator new(40);  // an explicit call: unlike a new-expression, it cannot be elided
    CHECK(counter.count() >= 1);
    ::operator delete(raw);
}

TEST_CASE("explain: weights per head sum to one, contributions reproduce the logit change", "[scorer][explain]") {
    const auto model = random_model("two_branches");
    const Request req(model, 20, 9);
    dmin::Scorer<dmin::Model<>> sc(model);
    sc.set_user(req.user.view());
    std::vector<float> p(req.n);
    sc.score(req.candidates(), p.data());
    for (std::size_t c : {0ul, 7ul, 19ul}) {
        const auto e = sc.explain(req.candidates(), c);
        CHECK(dmin_test::close(e.probability, p[c]));
        REQUIRE(e.heads.size() == model.spec().branches.size() * static_cast<std::size_t>(model.spec().num_heads));
        for (const auto& h : e.heads) {
            double s = 0;
            for (float w : h.weights) s += w;
            CHECK(s == Approx(1.0).margin(1e-5));
            CHECK(std::isfinite(h.contribution));
        }
        CHECK(e.top_head() < e.heads.size());
    }
    CHECK_THROWS_WITH(sc.explain(req.candidates(), 20), Catch::Contains("out of range"));
}

TEST_CASE("zero candidates, 100k candidates, bad candidate rows", "[scorer][requests]") {
    const auto model = random_model("numeric_context");
    dmin::Scorer<dmin::Model<>> sc(model);
    SECTION("score before set_user is an error") {
        const Request req(model, 1, 1);
        float p = 0;
        CHECK_THROWS_WITH(sc.score(req.candidates(), &p), Catch::Contains("set_user"));
    }
    const Request req(model, 100000, 11);
    sc.set_user(req.user.view());
    SECTION("zero candidates writes nothing") {
        float sentinel = -1;
        sc.score(dmin::Candidates{0, req.ids.data(), req.ni, req.values.data(), req.nv}, &sentinel);
        CHECK(sentinel == -1);
    }
    SECTION("100k candidates in one call") {
        std::vector<float> out(req.n, -1.0f);
        sc.score(req.candidates(), out.data());
        for (float p : out) REQUIRE((p > 0 && p < 1));
        float first = 0;  // same as scoring the candidate alone
        sc.score(dmin::Candidates{1, req.ids.data() + 99999 * req.ni, req.ni, req.values.data() + 99999 * req.nv, req.nv}, &first);
        CHECK(first == out[99999]);
    }
    SECTION("out-of-range, negative ids and NaN values in a candidate row name the candidate and feature") {
        Request bad = req;
        const int item = model.spec().feature_index("item_id");
        const auto off = static_cast<std::size_t>(model.slot(item).cand_offset);
        bad.ids[5 * bad.ni + off] = 60;  // vocab 60
        std::vector<float> out(bad.n);
        CHECK_THROWS_WITH(sc.score(bad.candidates(), out.data()), Catch::Contains("candidate 5") && Catch::Contains("item_id") &&
                                                                     Catch::Contains("out of range [0, 60)"));
        bad.ids[5 * bad.ni + off] = -1;
        CHECK_THROWS_WITH(sc.score(bad.candidates(), out.data()), Catch::Contains("id -1"));
        bad.ids[5 * bad.ni + off] = 1;
        const int price = model.spec().feature_index("price");
        bad.values[3 * bad.nv + static_cast<std::size_t>(model.slot(price).cand_offset)] = std::nanf("");
        CHECK_THROWS_WITH(sc.score(bad.candidates(), out.data()), Catch::Contains("candidate 3") && Catch::Contains("price") &&
                                                                     Catch::Contains("not finite"));
    }
}
