// Many threads, one const model: 8 threads each with its own Scorer score random requests against a
// shared dmin::Model<> for a bounded time; every result must be bit-identical to the single-threaded
// score of the same request computed beforehand. Also run under ThreadSanitizer (tests/reliability.cmake).
// DMIN_CONCURRENCY_SECONDS overrides the time per model (default 2).
#include "catch.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include "test_util.hpp"

namespace {

/// One request in the fast-path layout: user ids/values, n candidate rows, and its expected output.
struct Req {
    std::vector<std::int64_t> ids;
    std::vector<float> values;
    std::vector<std::int64_t> cids;
    std::vector<float> cvals;
    std::size_t n = 0, ni = 1, nv = 1;
    std::vector<float> expected;
    float expected_explain = 0;  ///< explain() probability of candidate explain_at
    std::size_t explain_at = 0;

    dmin::SampleView view() const { return {ids.data(), values.data()}; }
    dmin::Candidates candidates() const { return {n, cids.data(), ni, cvals.data(), nv}; }
};

/// Random valid requests: varied users, sequence fills from empty to full (padding at the end, or
/// anywhere), 1..300 candidates.
Req random_request(const dmin::Model<>& m, std::mt19937_64& rng, int k) {
    const auto& s = m.spec();
    Req r;
    r.ids.assign(static_cast<std::size_t>(m.num_ids()), 0);
    r.values.assign(static_cast<std::size_t>(m.num_values()), 0.0f);
    auto id = [&](std::int64_t vocab) { return std::uniform_int_distribution<std::int64_t>(0, vocab - 1)(rng); };
    std::uniform_real_distribution<float> val(-3, 3);
    for (std::size_t f = 0; f < s.features.size(); ++f) {
        const auto& x = s.features[f];
        const auto off = static_cast<std::size_t>(m.slot(static_cast<int>(f)).offset);
        if (x.type == dmin::FeatureType::numeric) r.values[off] = val(rng);
        else if (x.type == dmin::FeatureType::categorical) r.ids[off] = id(x.vocab_size);
        else {
            const int L = x.max_len;
            const int fill = k % 4 == 0 ? 0 : k % 4 == 1 ? L : std::uniform_int_distribution<int>(0, L)(rng);
            const bool holes = k % 5 == 0;  // padding ids in the middle of the sequence too
            for (int l = 0; l < fill; ++l)
                r.ids[off + static_cast<std::size_t>(l)] = holes && l % 3 == 1 ? 0 : std::max<std::int64_t>(1, id(x.vocab_size));
        }
    }
    r.ni = static_cast<std::size_t>(std::max(1, m.num_candidate_ids()));
    r.nv = static_cast<std::size_t>(std::max(1, m.num_candidate_values()));
    r.n = k % 7 == 0 ? 1 : k % 7 == 1 ? 300 : std::uniform_int_distribution<std::size_t>(1, 300)(rng);
    r.cids.assign(r.n * r.ni, 0);
    r.cvals.assign(r.n * r.nv, 0.0f);
    for (std::size_t c = 0; c < r.n; ++c)
        for (std::size_t f = 0; f < s.features.size(); ++f) {
            const auto& x = s.features[f];
            if (x.role != dmin::Role::candidate) continue;
            const auto off = static_cast<std::size_t>(m.slot(static_cast<int>(f)).cand_offset);
            if (x.type == dmin::FeatureType::numeric) r.cvals[c * r.nv + off] = val(rng);
            else r.cids[c * r.ni + off] = id(x.vocab_size);
        }
    r.explain_at = std::uniform_int_distribution<std::size_t>(0, r.n - 1)(rng);
    return r;
}

double seconds_per_model() {
    const char* env = std::getenv("DMIN_CONCURRENCY_SECONDS");
    return env ? std::atof(env) : 2.0;
}

void hammer(const dmin::Model<>& model, unsigned seed) {
    constexpr int kThreads = 8, kRequests = 48;
    std::mt19937_64 rng(seed);
    std::vector<Req> reqs;
    {
        dmin::Scorer<dmin::Model<>> single(model);
        for (int k = 0; k < kRequests; ++k) {
            reqs.push_back(random_request(model, rng, k));
            Req& r = reqs.back();
            r.expected.assign(r.n, 0.0f);
            single.set_user(r.view());
            single.score(r.candidates(), r.expected.data());
            r.expected_explain = single.explain(r.candidates(), r.explain_at).probability;
            for (float p : r.expected) REQUIRE(std::isfinite(p));
        }
    }
    std::atomic<long> mismatches{0}, done{0}, errors{0};
    std::atomic<int> ready{0};
    std::vector<long> per_thread(kThreads, 0);
    const auto budget = std::chrono::duration<double>(seconds_per_model());
    auto work = [&](int t) {
        dmin::Scorer<dmin::Model<>> sc(model);  // constructed concurrently, too
        std::vector<float> out(300);
        std::mt19937 pick(static_cast<unsigned>(1000 + t));
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        const auto start = std::chrono::steady_clock::now();
        long n = 0;
        try {
            while (std::chrono::steady_clock::now() - start < budget) {
                const Req& r = reqs[pick() % reqs.size()];
                sc.set_user(r.view());
                sc.score(r.candidates(), out.data());
                if (std::memcmp(out.data(), r.expected.data(), r.n * sizeof(float)) != 0) mismatches.fetch_add(1);
                if (n % 16 == t) {  // explanations now and then (they allocate; same arithmetic as score)
                    const float p = sc.explain(r.candidates(), r.explain_at).probability;
                    if (std::memcmp(&p, &r.expected_explain, sizeof p) != 0) mismatches.fetch_add(1);
                }
                ++n;
            }
        } catch (...) {
            errors.fetch_add(1);
        }
        per_thread[static_cast<std::size_t>(t)] = n;
        done.fetch_add(n);
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, t);
    for (auto& th : threads) th.join();
    std::printf("concurrency: %ld requests (%zu candidates max) scored by %d threads in %.1f s, %ld mismatches\n", done.load(),
                std::size_t{300}, kThreads, seconds_per_model(), mismatches.load());
    INFO("requests scored: " << done.load());
    CHECK(errors.load() == 0);
    CHECK(mismatches.load() == 0);
    for (int t = 0; t < kThreads; ++t) {
        INFO("thread " << t);
        CHECK(per_thread[static_cast<std::size_t>(t)] > 0);
    }
}

}  // namespace

TEST_CASE("8 threads sharing one const model score bit-identically to one thread", "[concurrency]") {
    SECTION("two branches, every table memory-mapped") {
        dmin::LoadOptions opts;
        opts.map_tables_larger_than = 0;
        const dmin::Model<> model = dmin::load(dmin_test::work_dir() + "/random/two_branches.safetensors", opts);
        REQUIRE(model.mapped_bytes() > 0);
        hammer(model, 17);
    }
    SECTION("numeric user, context and candidate features, tables copied") {
        const dmin::Model<> model = dmin::load(dmin_test::work_dir() + "/random/numeric_context.safetensors");
        hammer(model, 23);
    }
}

TEST_CASE("concurrent loads of one file give identical models", "[concurrency]") {
    const std::string path = dmin_test::work_dir() + "/random/two_branches.safetensors";
    const dmin::Model<> base = dmin::load(path);
    std::mt19937_64 rng(5);
    Req r = random_request(base, rng, 2);
    r.expected.assign(r.n, 0.0f);
    dmin::Scorer<dmin::Model<>> sc(base);
    sc.set_user(r.view());
    sc.score(r.candidates(), r.expected.data());
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            try {
                dmin::LoadOptions opts;
                opts.map_tables_larger_than = t % 2 == 0 ? 0 : std::uint64_t{256} << 20;
                const dmin::Model<> m = dmin::load(path, opts);
                dmin::Scorer<dmin::Model<>> s(m);
                std::vector<float> out(r.n);
                s.set_user(r.view());
                s.score(r.candidates(), out.data());
                if (std::memcmp(out.data(), r.expected.data(), r.n * sizeof(float)) != 0) bad.fetch_add(1);
            } catch (...) {
                bad.fetch_add(1);
            }
        });
    for (auto& th : threads) th.join();
    CHECK(bad.load() == 0);
}
