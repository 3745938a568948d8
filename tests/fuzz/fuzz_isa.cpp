// Fuzz target (e): the same scorer input as fuzz_scorer (scorer_input.hpp), scored by every
// instruction-set backend this CPU runs (dmin::dispatch: scalar, avx2, avx512, avx512_bf16), each in
// float32 and in bf16 with the DNN's products too ("bf16-dnn"), loaded once per process.
//
// Oracle, across backends and precisions: set_user and score accept and reject the same inputs with
// the same message; for moderate inputs (every |value| <= 1e4, continuous activations) each backend's
// float32 scores agree with the first backend's to 1e-4 (the summation order is the instruction set's);
// for inputs at the scale models are trained on (every |value| <= 4) each backend's bf16 scores stay
// within kBf16SelfTestTolerance of its float32 ones, so the widened bf16 of the backends without
// AVX512_BF16 is held to the same bound as vdpbf16ps.
//
// Built for the baseline instruction set (dmin/dispatch.hpp: the front end runs before any CPU check).
// The backends carry libFuzzer's coverage instrumentation but not ASan/UBSan, which would make each
// take minutes to compile: memory and undefined-behaviour errors are fuzz_scorer's to find, on the
// native build; this target looks for disagreements between the instruction sets.
#include "scorer_input.hpp"

#include <dmin/dispatch.hpp>

namespace {

using dmin_fuzz::fuzz_check;

struct Variant {
    std::string name;  ///< "avx2/bf16-dnn"
    bool bf16;
    dmin::dispatch::Model model;
};

/// Per fuzz model, every (backend the CPU runs, precision) pair; float32 variants first.
std::vector<std::vector<Variant>>& variants() {
    static std::vector<std::vector<Variant>> all = [] {
        const auto list = dmin::dispatch::linked_backends();
        const unsigned cpu = dmin::dispatch::feature_bits(dmin::kernels::cpu_features());
        std::vector<std::vector<Variant>> out;
        for (const auto& path : dmin_fuzz::model_paths()) {
            std::vector<Variant> vs;
            for (const char* precision : {"float32", "bf16-dnn"})
                for (std::size_t i = 0; i < list.count; ++i) {
                    const auto& b = *list.items[i];
                    if ((b.needs & cpu) != b.needs) continue;
                    dmin::LoadOptions options;
                    dmin::set_precision(options, precision);
                    try {
                        vs.push_back({std::string(b.name) + "/" + precision, options.precision == dmin::Precision::bf16,
                                      dmin::dispatch::load(path, options, b.name)});
                    } catch (const std::exception& e) {
                        dmin_fuzz::die("cannot load fuzz model " + path + " with " + b.name + "/" + precision + ": " + e.what());
                    }
                }
            out.push_back(std::move(vs));
        }
        return out;
    }();
    return all;
}

/// What one variant made of a round.
struct Outcome {
    bool user_ok = false, scored = false;
    std::string user_error, score_error;
    std::vector<float> out;
};

Outcome run(dmin::dispatch::Scorer& sc, const dmin_fuzz::ScorerRound& r) {
    Outcome o;
    o.user_ok = dmin_fuzz::accepted("set_user", [&] { sc.set_user(r.user()); }, &o.user_error);
    if (!o.user_ok) return o;
    o.out.assign(std::max<std::size_t>(r.n, 1), 0.0f);
    o.scored = dmin_fuzz::accepted("score", [&] { sc.score(r.candidates(), o.out.data()); }, &o.score_error);
    return o;
}

/// Outcome `o` of variant `v` against the first float32 variant's (`ref`) and against the float32
/// outcome of v's own backend (`own`).
void compare(const Variant& v, const Outcome& o, const Variant& ref_v, const Outcome& ref, const Outcome& own,
             const dmin_fuzz::ScorerRound& r, bool comparable) {
    const std::string pair = v.name + " vs " + ref_v.name;
    fuzz_check(o.user_ok == ref.user_ok && o.user_error == ref.user_error,
               pair + ": set_user disagrees: '" + o.user_error + "' / '" + ref.user_error + "'");
    if (!o.user_ok || r.big > 1e4f) return;  // beyond 1e4 a score may overflow on one backend only
    fuzz_check(o.scored == ref.scored && o.score_error == ref.score_error,
               pair + ": score disagrees: '" + o.score_error + "' / '" + ref.score_error + "'");
    if (!o.scored || !comparable) return;
    for (std::size_t c = 0; c < r.n; ++c) {
        if (!v.bf16) {
            fuzz_check(std::fabs(o.out[c] - ref.out[c]) <= 1e-4f + 1e-4f * std::fabs(ref.out[c]),
                       pair + ": candidate " + std::to_string(c) + " scores " + std::to_string(o.out[c]) + " / " + std::to_string(ref.out[c]));
        } else if (r.big <= 4.0f) {
            const double scale = v.model.spec().regression() ? std::max(1.0, std::fabs(double(own.out[c]))) : 1.0;
            fuzz_check(std::fabs(double(o.out[c]) - double(own.out[c])) <= dmin::kBf16SelfTestTolerance * scale,
                       v.name + ": candidate " + std::to_string(c) + " scores " + std::to_string(o.out[c]) +
                           ", beyond kBf16SelfTestTolerance of its backend's float32 " + std::to_string(own.out[c]));
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)variants();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    dmin_fuzz::Bytes in(data, size);
    auto& all = variants();
    const auto& vs = all[in.below(all.size())];
    const std::size_t backends = vs.size() / 2;  // float32 variants [0, backends), bf16 the rest, same order
    std::vector<dmin::dispatch::Scorer> scorers;
    for (const auto& v : vs) scorers.emplace_back(v.model);
    const bool comparable = dmin_fuzz::paths_comparable(vs[0].model.spec());
    for (int round = 0, rounds = 1 + static_cast<int>(in.below(2)); round < rounds; ++round) {
        const auto r = dmin_fuzz::decode_round(in, vs[0].model);
        std::vector<Outcome> outcomes;
        for (auto& sc : scorers) outcomes.push_back(run(sc, r));
        for (std::size_t i = 1; i < vs.size(); ++i)
            compare(vs[i], outcomes[i], vs[0], outcomes[0], outcomes[i % backends], r, comparable);
        if (outcomes[0].user_ok) (void)in.below(r.n + 2);  // fuzz_scorer's explain byte: the formats stay aligned
    }
    return 0;
}
