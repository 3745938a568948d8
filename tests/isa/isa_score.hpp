// The mixed-instruction-set test's interface: one scoring function per instruction set, each defined
// in its own translation unit (isa_score.cpp built with that set's flags) and with nothing of dmin in
// its signature, so that no translation unit's dmin code reaches another's except through the linker.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace dmin_isa_test {

/// What one translation unit computed for one model.
struct Scores {
    std::string isa;           ///< its dmin::kernels::isa_name
    std::vector<float> p;      ///< every probability, in a fixed order; the first 2·want.size(): below
    std::vector<double> want;  ///< the model file's reference predictions: p[i] (fast path) and
                               ///< p[want.size() + i] (Scorer::predict) are computed for sample i
};

Scores score_avx2(const std::string& model_path);
Scores score_native(const std::string& model_path);
Scores score_sse(const std::string& model_path);

/// One line of text for s: the ISA name and the bits of every probability (what the single-ISA
/// programs print and the test compares).
inline std::string to_line(const Scores& s) {
    std::string line = s.isa + " " + std::to_string(s.p.size());
    for (float x : s.p) {
        std::uint32_t bits;
        std::memcpy(&bits, &x, sizeof bits);
        char hex[12];
        std::snprintf(hex, sizeof hex, " %08x", static_cast<unsigned>(bits));
        line += hex;
    }
    return line;
}

}  // namespace dmin_isa_test
