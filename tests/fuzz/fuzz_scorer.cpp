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
// with the reference path for moderate inputs and continuous activations (paths_comparable).
#include "fuzz_common.hpp"

#include <limits>

namespace {

using dmin::FeatureType;
using dmin::Role;

/// An id for a feature of vocabulary v: mostly valid, sometimes hostile. Sets `valid`.
std::int64_t pick_id(dmin_fuzz::Bytes& in, std::int64_t v, bool nonzero, bool& valid) {
    const std::uint8_t mode = in.u8();
    std::int64_t id;
    switch (mode % 16) {
        case 0: id = static_cast<std::int64_t>(in.u64()); break;
        case 1: id = -1; break;
        case 2: id = v; break;
        case 3: id = std::numeric_limits<std::int64_t>::min(); break;
        case 4: id = std::numeric_limits<std::int64_t>::max(); break;
        case 5: id = v - 1; break;
        default: id = static_cast<std::int64_t>(in.below(static_cast<std::uint64_t>(v))); break;
    }
    if (nonzero && id == 0 && v > 1 && mode % 16 > 5) id = 1;
    if (id < 0 || id >= v) valid = false;
    return id;
}

/// A float: mostly moderate, sometimes NaN/Inf/raw bits. Sets `valid` (finite) and tracks magnitude.
float pick_value(dmin_fuzz::Bytes& in, bool& valid, float& big) {
    const std::uint8_t mode = in.u8();
    float x;
    switch (mode % 16) {
        case 0: x = in.raw_float(); break;
        case 1: x = std::numeric_limits<float>::quiet_NaN(); break;
        case 2: x = std::numeric_limits<float>::infinity(); break;
        case 3: x = -std::numeric_limits<float>::infinity(); break;
        case 4: x = std::numeric_limits<float>::denorm_min(); break;
        case 5: x = static_cast<float>(static_cast<std::int16_t>(in.u32() & 0xffff)) * 16.0f; break;  // |x| <= 5e5
        default: x = static_cast<float>(static_cast<std::int8_t>(in.u8())) / 32.0f; break;           // |x| <= 4
    }
    if (!std::isfinite(x)) valid = false;
    else big = std::max(big, std::fabs(x));
    return x;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)dmin_fuzz::models();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    dmin_fuzz::Bytes in(data, size);
    auto& ms = dmin_fuzz::models();
    const auto& m = ms[in.below(ms.size())];
    const auto& spec = m.spec();
    dmin::Scorer<dmin::Model<>> sc(m);

    for (int round = 0, rounds = 1 + static_cast<int>(in.below(2)); round < rounds; ++round) {
        // ---- user: ids[] and values[] in the model's layout
        std::vector<std::int64_t> ids(static_cast<std::size_t>(m.num_ids()), 0);
        std::vector<float> values(static_cast<std::size_t>(m.num_values()), 0.0f);
        bool user_valid = true;
        float big = 0;
        for (std::size_t f = 0; f < spec.features.size(); ++f) {
            const auto& x = spec.features[f];
            const auto& sl = m.slot(static_cast<int>(f));
            if (x.type == FeatureType::numeric) {
                bool ok = true;
                values[static_cast<std::size_t>(sl.offset)] = pick_value(in, ok, big);
                if (x.role != Role::candidate) user_valid &= ok;  // candidate features of the view are ignored
            } else if (x.type == FeatureType::categorical) {
                bool ok = true;
                ids[static_cast<std::size_t>(sl.offset)] = pick_id(in, x.vocab_size, false, ok);
                if (x.role != Role::candidate) user_valid &= ok;
            } else {
                const auto L = static_cast<std::uint64_t>(x.max_len);
                const std::uint8_t fill_mode = in.u8() % 4;
                const std::uint64_t fill = fill_mode == 0 ? 0 : fill_mode == 1 ? L : in.below(L + 1);
                for (std::uint64_t k = 0; k < fill; ++k) {
                    std::int64_t id;
                    if (in.u8() % 8 == 0) id = pick_id(in, x.vocab_size, false, user_valid);  // incl. padding in the middle
                    else if (x.vocab_size == 1) id = 0;
                    else id = 1 + static_cast<std::int64_t>(in.below(static_cast<std::uint64_t>(x.vocab_size - 1)));
                    ids[static_cast<std::size_t>(sl.offset) + k] = id;
                }
            }
        }
        bool user_ok = dmin_fuzz::accepted("set_user", [&] { sc.set_user({ids.data(), values.data()}); });
        dmin_fuzz::fuzz_check(user_ok == user_valid, user_valid ? "set_user rejected a valid user" : "set_user accepted an invalid user");

        // ---- candidates
        const std::size_t ni = static_cast<std::size_t>(m.num_candidate_ids()), nv = static_cast<std::size_t>(m.num_candidate_values());
        const std::size_t n = in.u8() % 8 == 0 ? 0 : 1 + in.below(300);
        const std::size_t id_pad = in.below(3), value_pad = in.below(3);  // strides wider than a row, sometimes
        const std::size_t id_stride = std::max<std::size_t>(ni, 1) + id_pad;
        const std::size_t value_stride = std::max<std::size_t>(nv, 1) + value_pad;
        std::vector<std::int64_t> cids(std::max<std::size_t>(n, 1) * id_stride, 0);
        std::vector<float> cvals(std::max<std::size_t>(n, 1) * value_stride, 0.0f);
        std::vector<bool> row_valid(n, true);
        const bool hostile_rows = in.u8() % 4 == 0;
        for (std::size_t c = 0; c < n; ++c)
            for (std::size_t f = 0; f < spec.features.size(); ++f) {
                const auto& x = spec.features[f];
                if (x.role != Role::candidate) continue;
                const auto off = static_cast<std::size_t>(m.slot(static_cast<int>(f)).cand_offset);
                bool ok = true;
                if (x.type == FeatureType::numeric) {
                    float b = 0;
                    cvals[c * value_stride + off] = hostile_rows ? pick_value(in, ok, b)
                                                                 : static_cast<float>(static_cast<std::int8_t>(in.u8())) / 32.0f;
                    big = std::max(big, b);
                } else {
                    cids[c * id_stride + off] = hostile_rows ? pick_id(in, x.vocab_size, false, ok)
                                                             : static_cast<std::int64_t>(in.below(static_cast<std::uint64_t>(x.vocab_size)));
                }
                if (!ok) row_valid[c] = false;
            }
        const std::uint8_t null_mode = in.u8();
        const bool null_ids = null_mode == 1, null_values = null_mode == 2;
        const dmin::Candidates cands{n, null_ids ? nullptr : cids.data(), id_stride, null_values ? nullptr : cvals.data(), value_stride};
        bool all_valid = user_ok;
        for (std::size_t c = 0; c < n; ++c) all_valid &= row_valid[c];
        if (n > 0 && ((null_ids && ni > 0) || (null_values && nv > 0))) all_valid = false;

        // A valid request may still overflow to a non-finite score when numeric values are huge; the
        // scorer then throws (after writing the blocks before the offending candidate).
        auto overflowed = [&](const std::string& msg) { return big > 1e4f && msg.find("not finite") != std::string::npos; };
        const float sentinel = -7.0f;
        std::vector<float> out(std::max<std::size_t>(n, 1), sentinel);
        std::string err;
        const bool scored = dmin_fuzz::accepted("score", [&] { sc.score(cands, out.data()); }, &err);
        if (!(all_valid && !scored && overflowed(err)))
            dmin_fuzz::fuzz_check(scored == all_valid, all_valid ? "score rejected a valid request: " + err
                                                                 : std::string("score accepted an invalid request"));
        if (!scored && !all_valid) {
            for (float p : out) dmin_fuzz::fuzz_check(p == sentinel, "a rejected score() wrote to its output");
        } else if (scored) {
            dmin_fuzz::check_outputs(m, out.data(), n, "score");
        }

        // ---- explain one candidate (possibly out of range)
        if (user_ok) {
            const std::size_t c = in.below(n + 2);
            bool expect_ok = c < n && row_valid[c] && !((null_ids && ni > 0) || (null_values && nv > 0));
            dmin::Explanation e;
            std::string eerr;
            const bool explained = dmin_fuzz::accepted("explain", [&] { e = sc.explain(cands, c); }, &eerr);
            if (!(expect_ok && !explained && overflowed(eerr)))
                dmin_fuzz::fuzz_check(explained == expect_ok, expect_ok ? "explain rejected a valid candidate: " + eerr
                                                                        : std::string("explain accepted an invalid candidate"));
            if (explained) {
                dmin_fuzz::check_outputs(m, &e.probability, 1, "explain");
                if (scored && !(std::isnan(e.probability) && std::isnan(out[c])))
                    dmin_fuzz::fuzz_check(std::fabs(e.probability - out[c]) <= 1e-5f + 1e-5f * std::fabs(out[c]),
                                          "explain probability " + std::to_string(e.probability) + " != score " + std::to_string(out[c]));
                for (const auto& h : e.heads) {
                    double sum = 0;
                    for (float w : h.weights) {
                        dmin_fuzz::fuzz_check(w >= 0.0f && w <= 1.0f, "attention weight outside [0, 1]");
                        sum += w;
                    }
                    dmin_fuzz::fuzz_check(std::fabs(sum - 1.0) <= 1e-4, "attention weights sum to " + std::to_string(sum));
                    if (big <= 1e4f) dmin_fuzz::fuzz_check(std::isfinite(h.contribution), "non-finite head contribution");
                }
            }
        }

        // ---- reference path on a few candidates, moderate inputs only (summation order differs)
        if (scored && n > 0 && big <= 1e4f && dmin_fuzz::paths_comparable(spec)) {  // (see paths_comparable)
            const std::size_t k = std::min<std::size_t>(n, 4);
            std::vector<float> slow(k);
            const dmin::Candidates head{k, cands.ids, id_stride, cands.values, value_stride};
            std::string rerr;
            dmin_fuzz::fuzz_check(dmin_fuzz::accepted("score_reference", [&] { sc.score_reference(head, slow.data()); }, &rerr),
                                  "score_reference rejected a request score() accepted: " + rerr);
            for (std::size_t c = 0; c < k; ++c)
                dmin_fuzz::fuzz_check(std::fabs(slow[c] - out[c]) <= 1e-4f + 1e-4f * std::fabs(slow[c]),
                                      "fast path " + std::to_string(out[c]) + " != reference path " + std::to_string(slow[c]));
        }
    }
    return 0;
}
