// Fuzz target (b): the request path of `dmin predict`: parse_strict(text) → samples_from_json(model,
// doc, policy) on fixed valid models (every truncation policy), then every sample that validates is
// scored on the fast and the reference path. Errors must be dmin::Error; a sample that validates
// must score to a probability in [0, 1] (binary) or a finite value (regression), and the two paths
// must agree to 1e-4 (for numeric values up to 1e4, and continuous activations: paths_comparable).
// A document parse_strict accepts must have been read whole: no NUL, valid UTF-8, nothing but
// whitespace after the top-level value (dmin_fuzz::check_read_whole, independent of dmin's parser).
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)dmin_fuzz::models();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    dmin::io::json doc;
    if (!dmin_fuzz::accepted("parse_strict", [&] { doc = dmin::io::parse_strict(text, "input"); })) return 0;
    dmin_fuzz::check_read_whole("a request", text);
    for (const auto& m : dmin_fuzz::models()) {
        for (auto policy : {dmin::OverlongPolicy::error, dmin::OverlongPolicy::keep_first, dmin::OverlongPolicy::keep_last}) {
            std::vector<dmin::Sample> samples;
            if (!dmin_fuzz::accepted("samples_from_json", [&] { samples = dmin::samples_from_json(m, doc, policy); })) continue;
            dmin::Scorer<dmin::Model<>> sc(m);
            for (const auto& s : samples) {
                float fast = 0, slow = 0;
                // Values that do not fit a float (e.g. 1e300) pass the double check of the JSON path and
                // are rejected by set_user as non-finite: a dmin::Error, like every other bad request.
                if (!dmin_fuzz::accepted("set_user", [&] { sc.set_user(s.view()); })) continue;
                dmin_fuzz::accepted("score", [&] {
                    sc.score(sc.candidate_from(s.view()), &fast);
                    sc.score_reference(sc.candidate_from(s.view()), &slow);
                });
                dmin_fuzz::check_outputs(m, &fast, 1, "score");
                dmin_fuzz::check_outputs(m, &slow, 1, "score_reference");
                float big = 0;  // the paths sum in different orders: compare only where that cannot matter
                for (float v : s.values()) big = std::max(big, std::fabs(v));
                if (big <= 1e4f && dmin_fuzz::paths_comparable(m.spec()))
                    dmin_fuzz::fuzz_check(std::fabs(fast - slow) <= 1e-4f + 1e-4f * std::fabs(slow),
                                          "fast path " + std::to_string(fast) + " != reference path " + std::to_string(slow));
                if (policy != dmin::OverlongPolicy::error) break;  // other policies: same samples unless overlong
            }
        }
    }
    return 0;
}
