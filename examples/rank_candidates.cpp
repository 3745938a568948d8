// Ranks 500 candidates for one request with a DMIN model and explains the top 10.
//   rank_candidates MODEL.safetensors [--candidates N] [--seed S]
// Builds a request (profile, context, behaviour sequence) from the model's features, scores every
// candidate with dmin::Scorer, prints the top 10 with their probability, the interest head that
// drove each one (Scorer::explain) and the request latency.
#include <dmin/dmin.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: rank_candidates MODEL.safetensors [--candidates N] [--seed S]\n");
        return 2;
    }
    std::size_t n = 500;
    unsigned seed = 7;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        if (k == "--candidates") n = std::stoul(argv[i + 1]);
        else if (k == "--seed") seed = static_cast<unsigned>(std::stoul(argv[i + 1]));
    }
    try {
        const dmin::Model<> model = dmin::load(argv[1], dmin::LoadOptions{/*self_test=*/true});
        const auto& spec = model.spec();
        std::mt19937 rng(seed);
        auto random_id = [&](const dmin::FeatureSpec& f) {
            return std::uniform_int_distribution<std::int64_t>(1, f.vocab_size - 1)(rng);
        };

        // The request: every user/context feature and the behaviour sequence(s).
        dmin::Sample user(model);
        std::printf("request:\n");
        for (const auto& f : spec.features) {
            if (f.role == dmin::Role::candidate) continue;
            if (f.type == dmin::FeatureType::numeric) {
                user.set_value(f.name, 0.5);
            } else if (f.type == dmin::FeatureType::categorical) {
                user.set(f.name, random_id(f));
            } else {
                std::vector<std::int64_t> seq(static_cast<std::size_t>(f.max_len * 3 / 4));
                for (auto& id : seq) id = random_id(f);
                user.set(f.name, seq);
                std::printf("  %s: %zu of %d positions filled\n", f.name.c_str(), seq.size(), f.max_len);
            }
        }

        // Candidates: rows of the candidate-role features.
        const auto ni = static_cast<std::size_t>(std::max(1, model.num_candidate_ids()));
        const auto nv = static_cast<std::size_t>(std::max(1, model.num_candidate_values()));
        std::vector<std::int64_t> ids(n * ni);
        std::vector<float> values(n * nv, 0.0f);
        for (std::size_t c = 0; c < n; ++c)
            for (std::size_t f = 0; f < spec.features.size(); ++f) {
                const auto& x = spec.features[f];
                if (x.role != dmin::Role::candidate) continue;
                const auto& slot = model.slot(static_cast<int>(f));
                if (x.type == dmin::FeatureType::numeric) values[c * nv + static_cast<std::size_t>(slot.cand_offset)] = 0.5f;
                else ids[c * ni + static_cast<std::size_t>(slot.cand_offset)] = random_id(x);
            }
        const dmin::Candidates cands{n, ids.data(), ni, values.data(), nv};

        dmin::Scorer<dmin::Model<>> scorer(model);
        std::vector<float> p(n);
        const auto t0 = std::chrono::steady_clock::now();
        scorer.set_user(user.view());
        scorer.score(cands, p.data());
        const auto t1 = std::chrono::steady_clock::now();

        std::vector<std::size_t> order(n);
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(10, n)), order.end(),
                          [&](std::size_t a, std::size_t b) { return p[a] > p[b]; });
        std::printf("top %zu of %zu candidates:\n", std::min<std::size_t>(10, n), n);
        std::printf("  rank  candidate  ids                  p(click)   driven by\n");
        for (std::size_t r = 0; r < std::min<std::size_t>(10, n); ++r) {
            const std::size_t c = order[r];
            const auto e = scorer.explain(cands, c);
            const auto& top = e.heads[e.top_head()];
            std::string idtxt;
            for (std::size_t k = 0; k < static_cast<std::size_t>(model.num_candidate_ids()); ++k)
                idtxt += (k ? "," : "") + std::to_string(ids[c * ni + k]);
            std::printf("  %4zu  %9zu  %-19s  %.6f   branch %d head %d (%+.3f logit)\n", r + 1, c, idtxt.c_str(),
                        static_cast<double>(p[c]), top.branch, top.head, static_cast<double>(top.contribution));
        }
        const double us = std::chrono::duration<double, std::micro>(t1 - t0).count();
        std::printf("request latency: %.1f us for %zu candidates (%.3f us per candidate, user phase included)\n", us, n,
                    us / static_cast<double>(n));
        return 0;
    } catch (const dmin::Error& e) {
        std::fprintf(stderr, "rank_candidates: %s\n", e.what());
        return 2;
    }
}
