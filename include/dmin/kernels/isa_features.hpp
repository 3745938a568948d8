// dmin/kernels/isa_features.hpp — the CPU features an instruction set needs, as bits: what this
// translation unit was compiled to use, and what the running CPU has (kernels/cpu_features.hpp), so
// that load can refuse a CPU that lacks them instead of dying of SIGILL inside a kernel.
#pragma once

#include <string>
#include <utility>

#include "dmin/kernels/cpu_features.hpp"
#include "dmin/kernels/isa.hpp"

namespace dmin::kernels {

/// CPU features as bits, so that an instruction set's needs are plain data. (Members of a struct, not
/// of the namespace, where avx512bw is also the name of an instruction set's namespace.)
struct Feature {
    static constexpr unsigned avx2 = 1u << 0;
    static constexpr unsigned fma = 1u << 1;
    static constexpr unsigned avx512f = 1u << 2;
    static constexpr unsigned avx512bw = 1u << 3;
    static constexpr unsigned avx512vl = 1u << 4;
    static constexpr unsigned avx512_bf16 = 1u << 5;
};

inline unsigned feature_bits(const CpuFeatures& f) {
    using F = Feature;
    return (f.avx2 ? F::avx2 : 0u) | (f.fma ? F::fma : 0u) | (f.avx512f ? F::avx512f : 0u) | (f.avx512bw ? F::avx512bw : 0u) |
           (f.avx512vl ? F::avx512vl : 0u) | (f.avx512_bf16 ? F::avx512_bf16 : 0u);
}

/// "avx2 fma ..." for a set of Feature bits ("none" for none).
inline std::string feature_names(unsigned bits) {
    using F = Feature;
    static const std::pair<unsigned, const char*> names[] = {{F::avx2, "avx2"},         {F::fma, "fma"},
                                                             {F::avx512f, "avx512f"},   {F::avx512bw, "avx512bw"},
                                                             {F::avx512vl, "avx512vl"}, {F::avx512_bf16, "avx512_bf16"}};
    std::string s;
    for (const auto& [bit, name] : names)
        if (bits & bit) s += (s.empty() ? "" : " ") + std::string(name);
    return s.empty() ? "none" : s;
}

DMIN_ISA_NAMESPACE_BEGIN
/// The features this translation unit's flags let the compiler use, as far as dmin tells them apart
/// (AVX-512 DQ and CD, which come with BW on every CPU that has it, are not told apart).
constexpr unsigned compiled_features() {
    unsigned f = 0;
#if defined(__AVX2__)
    f |= Feature::avx2;
#endif
#if defined(__FMA__)
    f |= Feature::fma;
#endif
#if defined(__AVX512F__)
    f |= Feature::avx512f;
#endif
#if defined(__AVX512BW__)
    f |= Feature::avx512bw;
#endif
#if defined(__AVX512VL__)
    f |= Feature::avx512vl;
#endif
#if defined(__AVX512BF16__)
    f |= Feature::avx512_bf16;
#endif
    return f;
}

/// The compiled-in features the running CPU lacks (0: this build runs here). Where dmin cannot ask the
/// CPU (not x86), nothing is reported missing.
inline unsigned missing_features() {
    const CpuFeatures cpu = cpu_features();
    return cpu.known ? compiled_features() & ~feature_bits(cpu) : 0u;
}
DMIN_ISA_NAMESPACE_END

}  // namespace dmin::kernels
