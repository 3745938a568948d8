// Shared helpers for dmin's Catch2 tests: data locations, reference files, tolerances.
#pragma once

#include <dmin/dmin.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace dmin_test {

inline std::string env_or(const char* name, const char* dflt) {
    const char* v = std::getenv(name);
    return v ? v : dflt;
}
/// Source-tree test data (tests/data).
inline std::string data_dir() { return env_or("DMIN_TEST_DATA", DMIN_TEST_DATA_DEFAULT); }
/// Generated at test time by the CTest fixtures (random models, exported FuxiCTR cases).
inline std::string work_dir() { return env_or("DMIN_TEST_WORK", DMIN_TEST_WORK_DEFAULT); }

inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

/// Writes `bytes` to `path` (replacing it): for hand-made hostile files.
inline void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) throw std::runtime_error("test helper: cannot write " + path);
}

inline dmin::io::json read_json(const std::string& path) { return dmin::io::json::parse(slurp(path)); }

/// n as 8 little-endian bytes: a weights file's header length (weights_format.md §1).
inline std::string le64(std::uint64_t n) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    return s;
}

/// The header length at the start of a weights file's bytes.
inline std::uint64_t header_length(const std::string& file_bytes) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(file_bytes[static_cast<std::size_t>(i)]);
    return n;
}

/// Each sample scored as its own request (set_user, then its candidate part), as `dmin predict` does.
template <class M>
std::vector<float> score_each(const M& m, const std::vector<dmin::Sample>& samples) {
    dmin::Scorer<M> sc(m);
    std::vector<float> out;
    for (const auto& s : samples) {
        sc.set_user(s.view());
        float p = 0;
        sc.score(sc.candidate_from(s.view()), &p);
        out.push_back(p);
    }
    return out;
}

/// bf16 precision on the random reference configurations: their weights are untrained random draws,
/// with attention logits and DNN activations far larger than a trained model's, and a bf16 rounding of
/// the attention's inputs moves their scores by more than the bound of trained-scale models
/// (dmin::kBf16MaxAbsDiff, kBf16MeanAbsDiff). Measured at the worst (act_sweep_4): max 9.9e-3, mean 2.9e-3.
inline constexpr double kBf16RandomMax = 2e-2, kBf16RandomMean = 5e-3;
/// The same for a regression configuration's output (an unbounded value, not a probability), relative to
/// max(1, |y|): act_sweep_4 feeds Hardshrink/Softshrink in its attention MLP, whose jump at ±0.5 turns a
/// rounding across the threshold into a step of the output (measured up to 0.125 on a value of order 1).
inline constexpr double kBf16RegressionRelative = 0.25;
/// |bf16 − float32| within the random configurations' bound for an output y (probability or regression value).
inline bool bf16_random_close(double bf16, double f32, bool regression) {
    const double d = std::fabs(bf16 - f32);
    return regression ? d <= kBf16RegressionRelative * std::max(1.0, std::fabs(f32)) : d <= kBf16RandomMax;
}

/// The project's tolerance: |got − want| ≤ 1e-5 + 1e-5·|want| (REFERENCE_SEMANTICS Q16).
inline bool close(double got, double want, double tol = 1e-5) { return std::fabs(got - want) <= tol + tol * std::fabs(want); }

/// ROC AUC with tied scores counted as 1/2 (Mann-Whitney U over average ranks), as python/world computes it.
inline double roc_auc(const std::vector<int>& labels, const std::vector<double>& scores) {
    const std::size_t n = scores.size();
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
    std::vector<double> rank(n);
    for (std::size_t i = 0; i < n;) {
        std::size_t j = i;
        while (j + 1 < n && scores[order[j + 1]] == scores[order[i]]) ++j;
        for (std::size_t k = i; k <= j; ++k) rank[order[k]] = 0.5 * static_cast<double>(i + j) + 1.0;
        i = j + 1;
    }
    double pos = 0, rank_sum = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (labels[i] == 1) {
            pos += 1;
            rank_sum += rank[i];
        }
    const double neg = static_cast<double>(n) - pos;
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

}  // namespace dmin_test
