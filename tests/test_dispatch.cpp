// One binary, several instruction sets (dmin/dispatch.hpp): the choice of backend, its errors, and the
// scorer through every backend this CPU runs. CTest runs this program once per DMIN_ISA value
// (tests/CMakeLists.txt); its own code is compiled for the baseline, the backends by
// dmin_add_isa_backends.
#include "catch.hpp"

#include <dmin/dispatch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../examples/random_request.hpp"
#include "test_util.hpp"

namespace {

using dmin::dispatch::Backend;
using dmin::dispatch::BackendList;
using feature = dmin::dispatch::Feature;

unsigned this_cpu() { return dmin::dispatch::feature_bits(dmin::kernels::cpu_features()); }

/// The backend a plain dispatch::load must pick here: DMIN_ISA's, else the best this CPU runs.
std::string expected_backend() {
    if (const char* env = std::getenv("DMIN_ISA")) return env;
    return dmin::dispatch::choose(dmin::dispatch::linked_backends(), this_cpu(), "").name;
}

/// Names of the linked backends this CPU runs.
std::vector<std::string> runnable_backends() {
    std::vector<std::string> out;
    const auto list = dmin::dispatch::linked_backends();
    for (std::size_t i = 0; i < list.count; ++i)
        if ((list.items[i]->needs & this_cpu()) == list.items[i]->needs) out.push_back(list.items[i]->name);
    return out;
}

std::string fuxictr_model(const std::string& name) { return dmin_test::work_dir() + "/fuxictr/" + name + ".safetensors"; }

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

TEST_CASE("dispatch: load picks DMIN_ISA's backend, else the best this CPU runs", "[dispatch]") {
    const auto want = expected_backend();
    const auto runnable = runnable_backends();
    const bool runs = std::find(runnable.begin(), runnable.end(), want) != runnable.end();
    INFO("expected backend " << want << "; CPU: " << dmin::dispatch::feature_names(this_cpu()));
    if (!runs) {
        // DMIN_ISA names a set this CPU lacks (the avx512 run on an AVX2 machine): a clear error at load.
        REQUIRE_THROWS_WITH(dmin::dispatch::load(fuxictr_model("tiny_seq_trained")), Catch::Contains("this CPU lacks"));
        return;
    }
    const auto m = dmin::dispatch::load(fuxictr_model("tiny_seq_trained"));
    CHECK(std::string(m.isa()) == want);
    WARN("dispatch chose " << m.isa() << " (namespace " << m.backend().isa << ") of the linked backends on a CPU with "
                           << dmin::dispatch::feature_names(this_cpu()));
}

TEST_CASE("dispatch: choose() by rank, by name, and its errors", "[dispatch][errors]") {
    static constexpr Backend scalar{"scalar", "scalar_sse2", 0, 1, nullptr};
    static constexpr Backend avx2{"avx2", "avx2_fma", feature::avx2 | feature::fma, 2, nullptr};
    static constexpr Backend avx512{"avx512", "avx512bw", feature::avx2 | feature::fma | feature::avx512f | feature::avx512bw | feature::avx512vl, 3, nullptr};
    const Backend* const all[] = {&scalar, &avx2, &avx512};
    const BackendList list{all, 3};
    const unsigned zen2 = feature::avx2 | feature::fma;
    const unsigned skx = zen2 | feature::avx512f | feature::avx512bw | feature::avx512vl;

    CHECK(std::string(dmin::dispatch::choose(list, skx, "").name) == "avx512");
    CHECK(std::string(dmin::dispatch::choose(list, zen2, "").name) == "avx2");
    CHECK(std::string(dmin::dispatch::choose(list, 0, "").name) == "scalar");
    CHECK(std::string(dmin::dispatch::choose(list, skx, "avx2").name) == "avx2");
    CHECK(std::string(dmin::dispatch::choose(list, skx, "scalar").name) == "scalar");
    REQUIRE_THROWS_WITH(dmin::dispatch::choose(list, zen2, "avx512"),
                        Catch::Contains("avx512: this CPU lacks avx512f avx512bw avx512vl (it has: avx2 fma)"));
    REQUIRE_THROWS_WITH(dmin::dispatch::choose(list, skx, "avx9"),
                        Catch::Contains("avx9: not linked into this program (linked: scalar, avx2, avx512)"));
    const Backend* const wide[] = {&avx2, &avx512};
    REQUIRE_THROWS_WITH(dmin::dispatch::choose(BackendList{wide, 2}, 0, ""),
                        Catch::Contains("no instruction set linked into this program runs on this CPU (it has: none; linked: avx2, avx512)"));
}

TEST_CASE("dispatch: FuxiCTR cases on the chosen backend match FuxiCTR within 1e-5", "[dispatch][fuxictr]") {
    const auto runnable = runnable_backends();
    if (std::find(runnable.begin(), runnable.end(), expected_backend()) == runnable.end()) return;  // first test case
    for (const std::string name : {"tiny_seq_trained", "heads2_dice_bn", "heads4_prelu", "sum_pooling"}) {
        const auto m = dmin::dispatch::load(fuxictr_model(name));  // replays the stored pair on this backend
        const auto inputs = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + name + "/inputs.json");
        const auto y = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + name + "/expected.json").at("y_pred");
        const auto samples = dmin::samples_from_json(m, inputs);
        REQUIRE(samples.size() == y.size());
        dmin::dispatch::Scorer s(m);
        for (std::size_t i = 0; i < samples.size(); ++i) {
            s.set_user(samples[i].view());
            float fast = 0;
            s.score(s.candidate_from(samples[i].view()), &fast);
            const float slow = s.predict(samples[i].view());
            INFO(name << " on " << m.isa() << ", sample " << i);
            REQUIRE(std::fabs(fast - y[i].get<double>()) <= 1e-5);
            REQUIRE(std::fabs(slow - y[i].get<double>()) <= 1e-5);
        }
    }
}

TEST_CASE("dispatch: every backend this CPU runs, batch against one by one and against each other", "[dispatch][scorer]") {
    const auto runnable = runnable_backends();
    for (const std::string name : {"tiny_seq_trained", "heads4_prelu"}) {
        std::vector<std::vector<float>> by_backend;
        for (const auto& isa : runnable) {
            const auto m = dmin::dispatch::load(fuxictr_model(name), {}, isa);
            REQUIRE(std::string(m.isa()) == isa);
            const auto req = example::random_request(m, 53, 0.7, 7);  // > 3 lane groups of 16, and a ragged tail
            const std::size_t n = req.candidates.count;
            dmin::dispatch::Scorer s(m);
            s.set_user(req.user.view());
            std::vector<float> batch(n), one(n);
            s.score(req.candidates.view(), batch.data());
            for (std::size_t c = 0; c < n; ++c) s.score(req.candidates.slice(c, 1), &one[c]);
            for (std::size_t c = 0; c < n; ++c) {
                INFO(name << " on " << isa << ", candidate " << c << ": batch " << batch[c] << ", alone " << one[c]);
                REQUIRE(same_bits(batch[c], one[c]));  // a score does not depend on its batch
            }
            by_backend.push_back(batch);
        }
        double worst = 0;
        for (std::size_t k = 1; k < by_backend.size(); ++k)
            for (std::size_t c = 0; c < by_backend[k].size(); ++c)
                worst = std::max(worst, static_cast<double>(std::fabs(by_backend[k][c] - by_backend[0][c])));
        CHECK(worst <= 1e-5);  // different operation orders (lane counts, tiles), same function
        WARN(name << ": max |p(backend) - p(" << runnable.front() << ")| over " << runnable.size() << " backends = " << worst);
    }
}

TEST_CASE("dispatch: explain and the stored reference pair on the chosen backend", "[dispatch][explain]") {
    const auto runnable = runnable_backends();
    if (std::find(runnable.begin(), runnable.end(), expected_backend()) == runnable.end()) return;  // first test case
    const auto m = dmin::dispatch::load(fuxictr_model("heads2_dice_bn"), dmin::LoadOptions{false});
    const auto r = dmin::dispatch::replay_reference(m);
    CHECK(r.passed);
    CHECK(r.samples > 0);
    const auto req = example::random_request(m, 3, 0.7, 11);
    dmin::dispatch::Scorer s(m);
    s.set_user(req.user.view());
    std::vector<float> p(3);
    s.score(req.candidates.view(), p.data());
    const auto why = s.explain(req.candidates.view(), 2);
    CHECK(std::fabs(why.probability - p[2]) <= 1e-6);
    REQUIRE(!why.heads.empty());
    double sum = 0;
    for (float w : why.heads[0].weights) sum += w;
    CHECK(std::fabs(sum - 1) <= 1e-5);
}

TEST_CASE("dispatch: bf16 precision on every backend this CPU runs stays within its bound of FuxiCTR", "[dispatch][bf16]") {
    // avx512_bf16 multiplies on vdpbf16ps; the other backends widen the same bf16 pairs in registers.
    const std::string name = "heads4_prelu";
    const auto inputs = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + name + "/inputs.json");
    const auto y = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/" + name + "/expected.json").at("y_pred");
    dmin::LoadOptions bf16;
    bf16.precision = dmin::Precision::bf16;
    for (const auto& isa : runnable_backends()) {
        const auto m = dmin::dispatch::load(fuxictr_model(name), bf16, isa);
        REQUIRE(m.precision() == dmin::Precision::bf16);
        const auto samples = dmin::samples_from_json(m, inputs);
        dmin::dispatch::Scorer s(m);
        double worst = 0, sum = 0;
        for (std::size_t i = 0; i < samples.size(); ++i) {
            s.set_user(samples[i].view());
            float p = 0;
            s.score(s.candidate_from(samples[i].view()), &p);
            const double d = std::fabs(p - y[i].get<double>());
            worst = std::max(worst, d);
            sum += d;
        }
        INFO(name << " in bf16 on " << isa << ": max |dp| " << worst << ", mean " << sum / static_cast<double>(samples.size()));
        CHECK(worst <= 2e-3);
        CHECK(sum / static_cast<double>(samples.size()) <= 2e-4);
    }
}
