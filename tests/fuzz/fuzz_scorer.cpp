// Fuzz target (c): the scorer on fixed valid models with arbitrary feature values through the fast
// path (SampleView / Candidates): ids in and out of range, sequence contents and fills (empty, full,
// padding in the middle), floats including NaN/Inf/denormals/huge, 0..300 candidates, odd strides and
// null arrays, then set_user / score / score_reference / explain.
//
// Oracle: set_user and score throw dmin::Error exactly when the input is invalid (an id outside
// [0, vocab), a non-finite value, a null array the model needs) or, with numeric values beyond 1e4,
// when the score overflows ("not finite"); a score rejected for invalid input writes nothing; every
// valid request scores to probabilities in [0, 1] (binary) or finite values (regression); explain()
// agrees with score(), its weights sum to 1 and its contributions are finite; the fast path agrees
// with the reference path for moderate inputs and continuous activations (paths_comparable); the last
// candidate scored alone is bit-identical to its score in the batch (a score does not depend on its
// batch). bf16 (the target attention's products, or with bf16-dnn the DNN's too; the two alternate by
// round): the same verdicts on the same input, the same batch independence, and for moderate inputs
// (every |value| <= 4, continuous activations) scores within kBf16SelfTestTolerance of float32's.
#include "scorer_input.hpp"

namespace {

using dmin_fuzz::fuzz_check;
using Scorer = dmin::Scorer<dmin::Model<>>;

/// score() on the round's candidates: accepted exactly for a valid request (or excused by an
/// overflow), writes nothing when rejected, outputs in range. Returns whether it scored.
bool check_score(const dmin::Model<>& m, Scorer& sc, const dmin_fuzz::ScorerRound& r, bool user_ok, std::vector<float>& out) {
    const bool all_valid = user_ok && r.rows_valid();
    const float sentinel = -7.0f;
    out.assign(std::max<std::size_t>(r.n, 1), sentinel);
    std::string err;
    const bool scored = dmin_fuzz::accepted("score", [&] { sc.score(r.candidates(), out.data()); }, &err);
    if (!(all_valid && !scored && r.overflow_excuses(err)))
        fuzz_check(scored == all_valid, all_valid ? "score rejected a valid request: " + err : std::string("score accepted an invalid request"));
    if (!scored && !all_valid) {
        for (float p : out) fuzz_check(p == sentinel, "a rejected score() wrote to its output");
    } else if (scored) {
        dmin_fuzz::check_outputs(m, out.data(), r.n, "score");
    }
    return scored;
}

/// The batch's last candidate scored alone must be bit-identical to its score in the batch.
void check_batch_independent(Scorer& sc, const dmin_fuzz::ScorerRound& r, const std::vector<float>& out, const char* mode) {
    if (r.n < 2) return;
    const std::size_t c = r.n - 1;
    const dmin::Candidates all = r.candidates();
    const dmin::Candidates one{1, all.ids ? all.ids + c * r.id_stride : nullptr, r.id_stride,
                               all.values ? all.values + c * r.value_stride : nullptr, r.value_stride};
    float alone = 0;
    std::string err;
    fuzz_check(dmin_fuzz::accepted("score(one)", [&] { sc.score(one, &alone); }, &err), std::string(mode) + ": a candidate of an accepted batch was rejected alone: " + err);
    fuzz_check(std::memcmp(&alone, &out[c], sizeof alone) == 0 || (std::isnan(alone) && std::isnan(out[c])),
               std::string(mode) + ": candidate scored alone " + std::to_string(alone) + " != in its batch " + std::to_string(out[c]));
}

/// explain() of one candidate (possibly out of range): accepted exactly when it is valid, agrees with
/// score(), attention weights a distribution.
void check_explain(const dmin::Model<>& m, Scorer& sc, const dmin_fuzz::ScorerRound& r, std::size_t c, bool scored, const std::vector<float>& out) {
    const bool expect_ok = r.explainable(c);
    dmin::Explanation e;
    std::string err;
    const bool explained = dmin_fuzz::accepted("explain", [&] { e = sc.explain(r.candidates(), c); }, &err);
    if (!(expect_ok && !explained && r.overflow_excuses(err)))
        fuzz_check(explained == expect_ok, expect_ok ? "explain rejected a valid candidate: " + err : std::string("explain accepted an invalid candidate"));
    if (!explained) return;
    dmin_fuzz::check_outputs(m, &e.probability, 1, "explain");
    if (scored && !(std::isnan(e.probability) && std::isnan(out[c])))
        fuzz_check(std::fabs(e.probability - out[c]) <= 1e-5f + 1e-5f * std::fabs(out[c]),
                   "explain probability " + std::to_string(e.probability) + " != score " + std::to_string(out[c]));
    for (const auto& h : e.heads) {
        double sum = 0;
        for (float w : h.weights) {
            fuzz_check(w >= 0.0f && w <= 1.0f, "attention weight outside [0, 1]");
            sum += w;
        }
        fuzz_check(std::fabs(sum - 1.0) <= 1e-4, "attention weights sum to " + std::to_string(sum));
        if (r.big <= 1e4f) fuzz_check(std::isfinite(h.contribution), "non-finite head contribution");
    }
}

/// The reference path on the first few candidates, moderate inputs only (summation order differs).
void check_reference(Scorer& sc, const dmin_fuzz::ScorerRound& r, const std::vector<float>& out) {
    const std::size_t k = std::min<std::size_t>(r.n, 4);
    std::vector<float> slow(k);
    const dmin::Candidates all = r.candidates();
    const dmin::Candidates head{k, all.ids, r.id_stride, all.values, r.value_stride};
    std::string err;
    fuzz_check(dmin_fuzz::accepted("score_reference", [&] { sc.score_reference(head, slow.data()); }, &err),
               "score_reference rejected a request score() accepted: " + err);
    for (std::size_t c = 0; c < k; ++c)
        fuzz_check(std::fabs(slow[c] - out[c]) <= 1e-4f + 1e-4f * std::fabs(slow[c]),
                   "fast path " + std::to_string(out[c]) + " != reference path " + std::to_string(slow[c]));
}

/// The same round in bf16: the same verdicts as float32, batch independence, and for moderate inputs
/// scores within the self-test's bf16 tolerance (relative to max(1, |y|) for regression).
void check_bf16(const char* mode, const dmin::Model<>& mb, const dmin_fuzz::ScorerRound& r, bool user_ok, bool scored,
                const std::vector<float>& out) {
    Scorer sb(mb);
    const bool user_b = dmin_fuzz::accepted("set_user(bf16)", [&] { sb.set_user(r.user()); });
    fuzz_check(user_b == user_ok, std::string(mode) + " and float32 disagree on accepting the user");
    if (!user_b) return;
    std::vector<float> outb;
    const bool scored_b = check_score(mb, sb, r, user_b, outb);
    if (r.big > 1e4f) return;  // either may overflow alone
    fuzz_check(scored_b == scored, std::string(mode) + " and float32 disagree on accepting the request");
    if (!scored) return;
    check_batch_independent(sb, r, outb, mode);
    if (r.big > 4.0f || !dmin_fuzz::paths_comparable(mb.spec())) return;
    for (std::size_t c = 0; c < r.n; ++c) {
        const double scale = mb.spec().regression() ? std::max(1.0, std::fabs(double(out[c]))) : 1.0;
        fuzz_check(std::fabs(double(outb[c]) - double(out[c])) <= dmin::kBf16SelfTestTolerance * scale,
                   std::string(mode) + " score " + std::to_string(outb[c]) + " vs float32 " + std::to_string(out[c]) + " beyond kBf16SelfTestTolerance");
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)dmin_fuzz::models();
    (void)dmin_fuzz::models_bf16(false);
    (void)dmin_fuzz::models_bf16(true);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    dmin_fuzz::Bytes in(data, size);
    const auto& ms = dmin_fuzz::models();
    const std::size_t which = in.below(ms.size());
    const auto& m = ms[which];
    Scorer sc(m);
    for (int round = 0, rounds = 1 + static_cast<int>(in.below(2)); round < rounds; ++round) {
        const auto r = dmin_fuzz::decode_round(in, m);
        const bool user_ok = dmin_fuzz::accepted("set_user", [&] { sc.set_user(r.user()); });
        fuzz_check(user_ok == r.user_valid, r.user_valid ? "set_user rejected a valid user" : "set_user accepted an invalid user");
        std::vector<float> out;
        const bool scored = check_score(m, sc, r, user_ok, out);
        if (scored) check_batch_independent(sc, r, out, "float32");
        if (user_ok) check_explain(m, sc, r, in.below(r.n + 2), scored, out);
        if (scored && r.n > 0 && r.big <= 1e4f && dmin_fuzz::paths_comparable(m.spec())) check_reference(sc, r, out);
        check_bf16(round == 1 ? "bf16-dnn" : "bf16", dmin_fuzz::models_bf16(round == 1)[which], r, user_ok, scored, out);
    }
    return 0;
}
