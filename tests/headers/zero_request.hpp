// Loads a model, scores one request whose ids and values are all 0 through score() and predict(), and
// reports whether both give the same probability in (0, 1). Shared by programs that differ in how they
// include dmin (tests/headers/load_alone.cpp, tests/extern/service.cpp), so it includes nothing of
// dmin itself: the caller's includes decide what it compiles against.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

template <class Model, class Scorer, class Error>
int score_zero_request(const char* who, const std::string& path) {
    try {
        const Model model = dmin::load<Model>(path);  // self-test on by default: replays the stored pair
        Scorer scorer(model);
        const std::vector<std::int64_t> ids(static_cast<std::size_t>(model.num_ids()), 0);
        const std::vector<float> values(static_cast<std::size_t>(model.num_values()), 0.0f);
        scorer.set_user({ids.data(), values.data()});
        const auto cand = scorer.candidate_from({ids.data(), values.data()});
        float p = -1;
        scorer.score(cand, &p);
        const float q = scorer.predict({ids.data(), values.data()});
        std::printf("%s: score %.6f, predict %.6f\n", who, static_cast<double>(p), static_cast<double>(q));
        return p > 0 && p < 1 && p == q ? 0 : 1;
    } catch (const Error& e) {
        std::fprintf(stderr, "%s: %s\n", who, e.what());
        return 1;
    }
}
