// fma_peak: this machine's FP32 FMA peak per core, measured with 12 independent FMA chains, and (built
// with AVX512_BF16) the bf16 dot-product peak: 12 chains of vdpbf16ps, 32 products of bf16 pairs per
// instruction, counted as 2 FLOPs each ("bf16_gflops").
//
//   fma_peak [--threads T] [--seconds S]      prints one JSON object
//
// Each chain is acc_i = acc_i * a + b on one SIMD register; 12 chains hide the FMA latency
// (4 cycles × 2-3 FMA pipes). Runs the ymm (AVX2) loop and, when compiled with AVX-512, the zmm
// loop; "peak_gflops" is the better of the two per thread. One FMA = 2 FLOPs per lane.
// With T > 1 every thread runs the loop at once and the figure is the sum (all cores busy).
// Rates are per second of the thread's own CPU time (CLOCK_THREAD_CPUTIME_ID), so another process
// preempting the thread does not lower them; "wall_gflops" is the same per wall-clock second (what
// the thread actually got on a shared machine).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

namespace {

using clock_type = std::chrono::steady_clock;

double thread_cpu_s() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Rate {
    double cpu = 0, wall = 0;  // GFLOP/s per CPU second, per wall second
};

template <class V, class Fma>
double run_chains(long iters, float seed, Fma fma, V (*set1)(float), float (*reduce)(V)) {
    V a = set1(0.999999f), b = set1(1e-7f);
    V c0 = set1(seed), c1 = set1(seed + 1), c2 = set1(seed + 2), c3 = set1(seed + 3), c4 = set1(seed + 4),
      c5 = set1(seed + 5), c6 = set1(seed + 6), c7 = set1(seed + 7), c8 = set1(seed + 8), c9 = set1(seed + 9),
      c10 = set1(seed + 10), c11 = set1(seed + 11);
    for (long i = 0; i < iters; ++i) {
        c0 = fma(c0, a, b); c1 = fma(c1, a, b); c2 = fma(c2, a, b); c3 = fma(c3, a, b);
        c4 = fma(c4, a, b); c5 = fma(c5, a, b); c6 = fma(c6, a, b); c7 = fma(c7, a, b);
        c8 = fma(c8, a, b); c9 = fma(c9, a, b); c10 = fma(c10, a, b); c11 = fma(c11, a, b);
        // Keep the compiler from reassociating or unrolling the chains away.
        __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
        __asm__ volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
    }
    return reduce(c0) + reduce(c1) + reduce(c2) + reduce(c3) + reduce(c4) + reduce(c5) + reduce(c6) + reduce(c7) +
           reduce(c8) + reduce(c9) + reduce(c10) + reduce(c11);
}

#if defined(__AVX2__) && defined(__FMA__)
__m256 set1_256(float x) { return _mm256_set1_ps(x); }
float reduce_256(__m256 v) {
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    float s = 0;
    for (float x : t) s += x;
    return s;
}
double ymm(long iters, float seed) {
    return run_chains<__m256>(iters, seed, [](__m256 c, __m256 a, __m256 b) { return _mm256_fmadd_ps(c, a, b); },
                              set1_256, reduce_256);
}
#endif
#if defined(__AVX512F__)
__m512 set1_512(float x) { return _mm512_set1_ps(x); }
float reduce_512(__m512 v) { return _mm512_reduce_add_ps(v); }
double zmm(long iters, float seed) {
    return run_chains<__m512>(iters, seed, [](__m512 c, __m512 a, __m512 b) { return _mm512_fmadd_ps(c, a, b); },
                              set1_512, reduce_512);
}
#endif

#if defined(__AVX512BF16__)
/// acc += 0.5·0.5 + 0.5·0.5 per lane: finite, never denormal, one vdpbf16ps per chain and iteration.
double bf16_zmm(long iters, float seed) {
    return run_chains<__m512>(
        iters, seed,
        [](__m512 c, __m512, __m512) {
            const __m512i half = _mm512_set1_epi32(0x3F003F00);
            return _mm512_dpbf16_ps(c, (__m512bh)half, (__m512bh)half);
        },
        set1_512, reduce_512);
}
#endif

std::atomic<double> sink{0};

/// GFLOP/s of `kernel` (lanes floats per register) on T threads at once; best of `rounds`.
Rate measure(double (*kernel)(long, float), int lanes, int threads, double seconds, int rounds) {
    // Calibrate the iteration count for ~seconds/rounds per round on one thread.
    long iters = 1 << 20;
    for (;;) {
        const double c0 = thread_cpu_s();
        sink = sink + kernel(iters, 1.0f);
        const double dt = thread_cpu_s() - c0;
        if (dt > 0.02) {
            iters = static_cast<long>(static_cast<double>(iters) * (seconds / rounds) / dt) + 1;
            break;
        }
        iters *= 4;
    }
    Rate best;
    for (int r = 0; r < rounds; ++r) {
        std::vector<Rate> rate(static_cast<std::size_t>(threads));
        std::vector<std::thread> pool;
        std::atomic<int> ready{0};
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                ready.fetch_add(1);
                while (ready.load() < threads) {
                }
                const double c0 = thread_cpu_s();
                const auto t0 = clock_type::now();
                const double r0 = kernel(iters, static_cast<float>(t));
                const double wall = std::chrono::duration<double>(clock_type::now() - t0).count();
                const double cpu = thread_cpu_s() - c0;
                sink = sink + r0;
                const double flops = 12.0 * 2.0 * lanes * static_cast<double>(iters);
                rate[static_cast<std::size_t>(t)] = {flops / cpu * 1e-9, flops / wall * 1e-9};
            });
        for (auto& th : pool) th.join();
        Rate sum;
        for (const auto& x : rate) {
            sum.cpu += x.cpu;
            sum.wall += x.wall;
        }
        best.cpu = std::max(best.cpu, sum.cpu);
        best.wall = std::max(best.wall, sum.wall);
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 1;
    double seconds = 1.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--threads")) threads = std::max(1, std::atoi(argv[i + 1]));
        else if (!std::strcmp(argv[i], "--seconds")) seconds = std::max(0.05, std::atof(argv[i + 1]));
        else {
            std::fprintf(stderr, "usage: fma_peak [--threads T] [--seconds S]\n");
            return 2;
        }
    }
    const int rounds = 10;
    Rate y, z, h;
#if defined(__AVX2__) && defined(__FMA__)
    y = measure(ymm, 8, threads, seconds / 2, rounds);
#endif
#if defined(__AVX512F__)
    z = measure(zmm, 16, threads, seconds / 2, rounds);
#endif
#if defined(__AVX512BF16__)
    h = measure(bf16_zmm, 32, threads, seconds / 2, rounds);  // 32 products per instruction
#endif
    const double peak = std::max(y.cpu, z.cpu);
    std::printf("{\"threads\": %d, \"chains\": 12, \"ymm_gflops\": %.2f, \"zmm_gflops\": %.2f, \"peak_gflops\": %.2f, "
                "\"peak_gflops_per_thread\": %.2f, \"wall_gflops\": %.2f, \"bf16_gflops\": %.2f, \"bf16_gflops_per_thread\": %.2f, "
                "\"bf16_wall_gflops\": %.2f, \"basis\": \"thread CPU time\", \"sink\": %g}\n",
                threads, y.cpu, z.cpu, peak, peak / threads, std::max(y.wall, z.wall), h.cpu, h.cpu / threads, h.wall,
                static_cast<double>(sink.load() != 0));
    return peak > 0 ? 0 : 1;
}
