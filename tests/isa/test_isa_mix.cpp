// Kernels safe across translation units: this program links dmin built three ways (isa_score.cpp for
// AVX2 + FMA, for the build machine, for SSE without FMA). Each build must score every test model with
// exactly the bits of a program built for its instruction set alone, which fails when the linker lets
// one build run another's kernels (dmin's code without kernels/isa.hpp's per-ISA namespaces).
// No dmin header here: this translation unit is none of the three builds.
#include "../catch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "isa_score.hpp"

namespace {

namespace fs = std::filesystem;
using dmin_isa_test::Scores;

struct Build {
    const char* name;
    Scores (*score)(const std::string&);
    const char* single;  ///< the program built for this instruction set alone
    bool runs_here;
};

const Build kBuilds[] = {
    {"avx2", dmin_isa_test::score_avx2, DMIN_ISA_SINGLE_AVX2, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
    {"native", dmin_isa_test::score_native, DMIN_ISA_SINGLE_NATIVE, true},  // built for this machine
    {"sse", dmin_isa_test::score_sse, DMIN_ISA_SINGLE_SSE, true},
};

std::string work_dir() {
    const char* w = std::getenv("DMIN_TEST_WORK");
    return w ? w : DMIN_TEST_WORK_DEFAULT;
}

/// The random and FuxiCTR test models (the CTest fixtures' output), in a fixed order.
std::vector<std::string> test_models() {
    std::vector<std::string> out;
    for (const char* sub : {"/random", "/fuxictr"})
        for (const auto& e : fs::directory_iterator(work_dir() + sub)) {
            const std::string p = e.path().string(), ext = ".safetensors", ref = ".ref.safetensors";
            const auto ends = [&](const std::string& s) { return p.size() > s.size() && p.compare(p.size() - s.size(), s.size(), s) == 0; };
            if (ends(ext) && !ends(ref)) out.push_back(p);
        }
    std::sort(out.begin(), out.end());
    return out;
}

/// Runs b's single-ISA program on the models and returns its lines.
std::vector<std::string> run_single(const Build& b, const std::vector<std::string>& models) {
    const std::string out = work_dir() + "/isa_single_" + b.name + ".txt";
    fs::remove(out);
    std::string cmd = std::string("\"") + b.single + "\" \"" + out + "\"";
    for (const auto& m : models) cmd += " \"" + m + "\"";
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::ifstream in(out);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

bool close(double got, double want) { return std::fabs(got - want) <= 1e-5 + 1e-5 * std::fabs(want); }

}  // namespace

TEST_CASE("dmin built for AVX2, the machine and SSE in one program: each scores as its own build", "[isa]") {
    const auto models = test_models();
    REQUIRE(models.size() >= 4);
    for (const auto& b : kBuilds)
        SECTION(b.name) {
            if (!b.runs_here) {
                WARN("skipped: this CPU cannot run the " << b.name << " build");
                continue;
            }
            const auto lines = run_single(b, models);
            REQUIRE(lines.size() == models.size());
            for (std::size_t i = 0; i < models.size(); ++i) {
                INFO(b.name << " build, " << models[i]);
                const Scores s = b.score(models[i]);
                CHECK(dmin_isa_test::to_line(s) == lines[i]);  // the same bits as the single-ISA program
                const std::size_t n = s.want.size();
                REQUIRE(s.p.size() > 2 * n);
                for (std::size_t j = 0; j < n; ++j) {
                    INFO("reference sample " << j);
                    CHECK(close(s.p[j], s.want[j]));
                    CHECK(close(s.p[n + j], s.want[j]));
                }
            }
        }
}

TEST_CASE("the builds' instruction sets have their own namespaces, and their own bits", "[isa]") {
    if (!kBuilds[0].runs_here) {
        WARN("skipped: this CPU cannot run the AVX2 build");
        return;
    }
    const auto models = test_models();
    REQUIRE(!models.empty());
    const Scores avx2 = dmin_isa_test::score_avx2(models[0]), native = dmin_isa_test::score_native(models[0]),
                 sse = dmin_isa_test::score_sse(models[0]);
    CHECK(avx2.isa == "avx2_fma");
    CHECK(sse.isa.rfind("sse", 0) == 0);
    if (native.isa == avx2.isa)
        WARN("this CPU has no AVX-512: -march=native selects " << native.isa
                                                               << " like the AVX2 build, so only the AVX2/SSE pair is mixed here");
    else
        CHECK(native.isa.rfind("avx512", 0) == 0);
    // The AVX2 and SSE builds round differently (SSE has no FMA) somewhere in the test models: a program
    // running one's code in place of the other's cannot give both builds' bits.
    bool differ = false;
    for (const auto& m : models) differ = differ || dmin_isa_test::score_avx2(m).p != dmin_isa_test::score_sse(m).p;
    CHECK(differ);
}
