// Includes dmin/load.hpp and nothing else of dmin, then loads, scores and explains one request: the
// loader, the self-test it runs and the scorer link without the umbrella header.
#include <dmin/load.hpp>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    try {
        const auto model = dmin::load(argv[1]);  // self-test on by default: one reference forward pass
        dmin::Scorer<dmin::Model<>> scorer(model);
        const std::vector<std::int64_t> ids(static_cast<std::size_t>(model.num_ids()), 0);
        const std::vector<float> values(static_cast<std::size_t>(model.num_values()), 0.0f);
        scorer.set_user({ids.data(), values.data()});
        const auto cand = scorer.candidate_from({ids.data(), values.data()});
        float p = -1;
        scorer.score(cand, &p);
        std::printf("load.hpp alone: p = %.6f\n", static_cast<double>(p));
        return p > 0 && p < 1 ? 0 : 1;
    } catch (const dmin::Error& e) {
        std::fprintf(stderr, "load.hpp alone: %s\n", e.what());
        return 1;
    }
}
