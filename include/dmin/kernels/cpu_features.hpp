// dmin/kernels/cpu_features.hpp — which vector instructions the running CPU (and its OS) supports, from
// cpuid and xgetbv. Knows nothing of models: dmin::load asks it before using an instruction the build
// compiled in but the CPU may lack, so such a CPU gets a dmin::Error instead of SIGILL.
#pragma once

#include <cstdlib>
#include <string>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define DMIN_CPUID 1
#else
#define DMIN_CPUID 0
#endif

namespace dmin::kernels {

/// Instruction-set extensions usable on this CPU: the CPU reports them and the OS saves their registers.
/// `known` is false where dmin cannot ask (not x86, or a compiler without <cpuid.h>): then all are false.
struct CpuFeatures {
    bool known = false;
    bool avx2 = false, fma = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512_bf16 = false;

    /// Clears the features named in a comma- or space-separated list ("avx512_bf16,avx512f"). With it
    /// the environment variable DMIN_CPU_DISABLE makes a capable machine act as an older one (tests of
    /// the load-time checks; "all" clears everything).
    void disable(const std::string& list) {
        auto has = [&](const char* n) {
            const std::string name(n);
            for (std::size_t p = list.find(name); p != std::string::npos; p = list.find(name, p + 1)) {
                const bool start = p == 0 || list[p - 1] == ',' || list[p - 1] == ' ';
                const std::size_t e = p + name.size();
                if (start && (e == list.size() || list[e] == ',' || list[e] == ' ')) return true;
            }
            return false;
        };
        const bool all = has("all");
        avx2 &= !(all || has("avx2")), fma &= !(all || has("fma")), avx512f &= !(all || has("avx512f"));
        avx512bw &= !(all || has("avx512bw")), avx512vl &= !(all || has("avx512vl")), avx512_bf16 &= !(all || has("avx512_bf16"));
    }
};

namespace cpu_detail {
#if DMIN_CPUID
/// XCR0: the register states the OS saves (bits 1–2 SSE/AVX, 5–7 AVX-512). xgetbv as raw bytes, so no
/// -mxsave is needed; only executed after cpuid reported OSXSAVE.
inline unsigned long long xcr0() {
    unsigned lo = 0, hi = 0;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<unsigned long long>(hi) << 32) | lo;
}

inline CpuFeatures query() {
    CpuFeatures f;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    f.known = true;
    const bool osxsave = (c >> 27) & 1u, avx = (c >> 28) & 1u;
    const unsigned long long x = osxsave ? xcr0() : 0;
    const bool ymm = avx && (x & 0x6u) == 0x6u, zmm = ymm && (x & 0xE0u) == 0xE0u;
    f.fma = ymm && ((c >> 12) & 1u);
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    const unsigned max_sub = a;
    f.avx2 = ymm && ((b >> 5) & 1u);
    f.avx512f = zmm && ((b >> 16) & 1u);
    f.avx512bw = f.avx512f && ((b >> 30) & 1u);
    f.avx512vl = f.avx512f && ((b >> 31) & 1u);
    if (max_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512_bf16 = f.avx512f && ((a >> 5) & 1u);
    return f;
}
#else
inline CpuFeatures query() { return {}; }
#endif
}  // namespace cpu_detail

/// This CPU's features, minus those named in the environment variable DMIN_CPU_DISABLE (see
/// CpuFeatures::disable). Asked afresh on each call (a few cpuid instructions): call it at load, not
/// per request.
inline CpuFeatures cpu_features() {
    CpuFeatures f = cpu_detail::query();
    if (const char* off = std::getenv("DMIN_CPU_DISABLE")) f.disable(off);
    return f;
}

}  // namespace dmin::kernels
