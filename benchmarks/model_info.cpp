// dmin_model_info: FLOP counts and memory of a dmin model, as one JSON object (used by compare.py
// and RESULTS.md).
//
//   dmin_model_info MODEL.safetensors [--fill F]
//
// flops: dmin::count_flops at fill·L valid positions (user = once per request, per_candidate =
// factorised per-candidate work). Memory: Model::resident_bytes / file_weight_bytes, the heap the
// loaded model keeps (glibc mallinfo2 delta across dmin::load, so it includes spec strings and
// vectors), and the heap one Scorer allocates (mallinfo2 delta across its construction).
#include <dmin/dmin.hpp>

#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {
std::size_t heap_in_use() { return mallinfo2().uordblks + mallinfo2().hblkhd; }
}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: dmin_model_info MODEL.safetensors [--fill F]\n");
        return 2;
    }
    double fill = 1.0;
    for (int i = 2; i + 1 < argc; i += 2)
        if (!std::strcmp(argv[i], "--fill")) fill = std::atof(argv[i + 1]);
    try {
        const std::size_t h0 = heap_in_use();
        const auto model = dmin::load(argv[1]);
        const std::size_t h1 = heap_in_use();
        std::size_t scorer_heap = 0;
        {
            const std::size_t s0 = heap_in_use();
            dmin::Scorer<dmin::Model<>> scorer(model);
            scorer_heap = heap_in_use() - s0;
        }
        const auto& s = model.spec();
        const auto& b = model.branches().at(0);
        const int valid = static_cast<int>(fill * b.L + 0.5);
        const auto fl = dmin::count_flops(model, valid);
        std::string dnn = "[";
        for (std::size_t k = 0; k < s.dnn_units.size(); ++k) dnn += (k ? ", " : "") + std::to_string(s.dnn_units[k]);
        dnn += "]";
        std::printf("{\"model\": \"%s\", \"E\": %d, \"D\": %d, \"L\": %d, \"H\": %d, \"P\": %d, \"A1\": %d, \"dnn\": %s, "
                    "\"dnn_input_dim\": %d, \"dnn_candidate_width\": %d, \"valid\": %d, "
                    "\"flops\": {\"user\": %.0f, \"per_candidate\": %.0f}, "
                    "\"parameters\": %zu, \"file_weight_bytes\": %zu, \"resident_bytes\": %zu, \"model_heap_bytes\": %zu, "
                    "\"scorer_heap_bytes\": %zu, \"sizeof_scorer\": %zu, \"simd\": \"%s\"}\n",
                    argv[1], s.embedding_dim, b.D, b.L, b.H, b.P, b.A1, dnn.c_str(), s.dnn_input_dim,
                    model.dnn().candidate_width, valid, fl.user, fl.per_candidate, model.parameter_count(),
                    model.file_weight_bytes(), model.resident_bytes(), h1 - h0, scorer_heap,
                    sizeof(dmin::Scorer<dmin::Model<>>), dmin::kernels::simd_arch_name().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dmin_model_info: %s\n", e.what());
        return 2;
    }
    return 0;
}
