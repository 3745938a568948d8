// The smallest per-candidate latency measurement: load a model, build one request, time score().
//   microbench MODEL.safetensors [--candidates N] [--reps R]
// Adapt it: put your own user features / candidate ids where the random ones are set.
// (benchmarks/ has the Google Benchmark fixtures; this is the copy-paste version.)
#include <dmin/dmin.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: microbench MODEL.safetensors [--candidates N] [--reps R]\n");
        return 2;
    }
    try {
        std::size_t n = 256, reps = 2000;
        for (int i = 2; i + 1 < argc; i += 2) {
            const std::string k = argv[i];
            if (k == "--candidates") n = std::max<std::size_t>(1, std::stoul(argv[i + 1]));
            else if (k == "--reps") reps = std::max<std::size_t>(1, std::stoul(argv[i + 1]));
        }
        const dmin::Model<> model = dmin::load(argv[1]);
        const auto& features = model.spec().features;
        std::mt19937 rng(42);
        auto id = [&](const dmin::FeatureSpec& f) { return std::uniform_int_distribution<std::int64_t>(1, std::max<std::int64_t>(1, f.vocab_size - 1))(rng); };

        // One request: user/context features and a full behaviour sequence.
        dmin::Sample user(model);
        for (const auto& f : features) {
            if (f.role == dmin::Role::candidate) continue;
            if (f.type == dmin::FeatureType::numeric) user.set_value(f.name, 0.5);
            else if (f.type == dmin::FeatureType::categorical) user.set(f.name, id(f));
            else {
                std::vector<std::int64_t> seq(static_cast<std::size_t>(f.max_len));
                for (auto& x : seq) x = id(f);
                user.set(f.name, seq);
            }
        }
        // N candidate rows: the candidate-role features at Model::slot(f).cand_offset.
        const auto ni = static_cast<std::size_t>(std::max(1, model.num_candidate_ids()));
        const auto nv = static_cast<std::size_t>(std::max(1, model.num_candidate_values()));
        std::vector<std::int64_t> ids(n * ni, 0);
        std::vector<float> values(n * nv, 0.5f);
        for (std::size_t f = 0; f < features.size(); ++f) {
            const auto& slot = model.slot(static_cast<int>(f));
            if (features[f].role != dmin::Role::candidate || features[f].type == dmin::FeatureType::numeric) continue;
            for (std::size_t c = 0; c < n; ++c) ids[c * ni + static_cast<std::size_t>(slot.cand_offset)] = id(features[f]);
        }
        const dmin::Candidates cands{n, ids.data(), ni, values.data(), nv};

        dmin::Scorer<dmin::Model<>> scorer(model);
        std::vector<float> p(n);
        scorer.set_user(user.view());
        for (int w = 0; w < 20; ++w) scorer.score(cands, p.data());  // warm-up

        std::vector<double> us(reps);
        for (auto& t : us) {
            const auto t0 = std::chrono::steady_clock::now();
            scorer.score(cands, p.data());
            t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        }
        std::nth_element(us.begin(), us.begin() + static_cast<std::ptrdiff_t>(reps / 2), us.end());
        const double med = us[reps / 2];
        std::printf("%s: score() of %zu candidates, median of %zu runs: %.1f us = %.3f us per candidate (p[0] = %.4f)\n", argv[1], n,
                    reps, med, med / static_cast<double>(n), static_cast<double>(p[0]));
        return 0;
    } catch (const std::exception& e) {  // dmin::Error, or a malformed number (std::stoul)
        std::fprintf(stderr, "microbench: %s\n", e.what());
        return 2;
    }
}
