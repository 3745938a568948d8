// Request-level benchmarks of dmin::Scorer at the three benchmark shapes (python/bench/models.py).
//
//   build/benchmarks/bench_scorer [--benchmark_filter=paper] [--benchmark_min_time=0.5s] [--models DIR]
//                                 [--shape small|paper|large]   (load only that shape)
//   (Google Benchmark 1.7 takes --benchmark_min_time=0.5, without the unit.)
//
// Model files: --models DIR, else $DMIN_BENCH_MODELS, else the directory the build generated them in
// (DMIN_BENCH_MODELS_DIR, see benchmarks/CMakeLists.txt). Missing shapes are skipped with a note.
//
// Benchmarks, for shape ∈ {small, paper, large} and N ∈ {1, 16, 128, 1024}:
// <shape> is also <shape>:fixed, the same file loaded as its compile-time type (dmin::Model<dmin::Shape<...>>).
//   request/<shape>/N:<N>/threads:1   one request = set_user + score(N candidates) on one Scorer
//   request/<shape>/N:<N>/threads:2   the N candidates split over 2 Scorers (one per thread, one
//                                     shared const Model, each running set_user); the second thread
//                                     is a persistent worker released by a spin barrier
//   set_user/<shape>                  the candidate-independent phase alone
//   score/<shape>/N:<N>               score(N) alone, after one set_user (the per-candidate phase)
//   reference/<shape>/N:16            score_reference(16) alone: the Eigen oracle, for comparison
//   phases/<shape>/N:1[/syscall]      set_user and score(1) of each request timed separately
//                                     (counters user_p50_us, score_p50_us): against set_user/ and
//                                     score/ alone, what each phase loses to the other's cache use;
//                                     /syscall: after one system call before each request
// Counters (per benchmark run; with --benchmark_repetitions the aggregates are over runs):
//   req_p50_us, req_p99_us    request latency percentiles over the timed requests (wall clock)
//   cpu_p50_us                (threads:1) CPU time of the scoring thread per request
//                             (CLOCK_THREAD_CPUTIME_ID, read once per ~1 ms batch of requests; the
//                             median over batches): what the request costs when a noisy neighbour
//                             preempts the thread; equals req_p50_us on an idle core
//   cand_us                   req_p50_us / N
//   GFLOP/s                   useful FLOPs (count_flops: user once + N·per_candidate) / req_p50
//   floor_x                   cand_us / (per_candidate FLOPs / peak) where peak is $DMIN_PEAK_GFLOPS
//                             (set it from fma_peak; 0/absent: counter omitted)
#include <benchmark/benchmark.h>

#include <dmin/dmin.hpp>

#include "../examples/random_request.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DMIN_BENCH_PAUSE() _mm_pause()
#else
#define DMIN_BENCH_PAUSE() ((void)0)
#endif

#ifndef DMIN_BENCH_MODELS_DIR
#define DMIN_BENCH_MODELS_DIR ""
#endif

namespace {

using clock_type = std::chrono::steady_clock;


/// A persistent worker thread that runs `job` once per release(); wait() spins until it is done.
class Worker {
public:
    Worker() : th_([this] { loop(); }) {}
    ~Worker() {
        stop_.store(true, std::memory_order_release);
        go_.fetch_add(1, std::memory_order_acq_rel);
        th_.join();
    }
    template <class F>
    void set_job(F f) { job_ = std::move(f); }
    void release() { go_.fetch_add(1, std::memory_order_acq_rel); }
    void wait() {
        const unsigned target = go_.load(std::memory_order_acquire);
        spin_until([&] { return done_.load(std::memory_order_acquire) == target; });
    }

private:
    template <class P>
    static void spin_until(P pred) {
        for (unsigned i = 0; !pred(); ++i) {
            if (i < 20000) DMIN_BENCH_PAUSE();
            else std::this_thread::yield();  // a noisy 2-core machine: don't burn a stolen core forever
        }
    }
    void loop() {
        unsigned seen = 0;
        for (;;) {
            spin_until([&] { return go_.load(std::memory_order_acquire) != seen; });
            seen = go_.load(std::memory_order_acquire);
            if (stop_.load(std::memory_order_acquire)) return;
            job_();
            done_.store(seen, std::memory_order_release);
        }
    }
    std::function<void()> job_;
    std::atomic<unsigned> go_{0}, done_{0};
    std::atomic<bool> stop_{false};
    std::thread th_;
};

/// One benchmark shape loaded as Net: the runtime-sized dmin::Model<> or its compile-time type.
template <class Net>
struct Shape {
    std::string name;
    std::unique_ptr<Net> model;
    dmin::FlopCount flops;
};

/// The compile-time types of the three shapes (python/bench/models.py), as `dmin inspect` prints them.
using SmallNet = dmin::Model<dmin::Shape<8, 5, 2, 8, dmin::Units<80, 40>, dmin::Units<64, 32>, 128>>;
using PaperNet = dmin::Model<dmin::Shape<32, 50, 4, 8, dmin::Units<80, 40>, dmin::Units<512, 128, 64>, 256>>;
using LargeNet = dmin::Model<dmin::Shape<64, 100, 4, 8, dmin::Units<80, 40>, dmin::Units<1024, 512, 256>, 512>>;

double peak_gflops() {
    const char* p = std::getenv("DMIN_PEAK_GFLOPS");
    return p ? std::atof(p) : 0.0;
}

double thread_cpu_us() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

template <class Net>
void set_counters(benchmark::State& st, const Shape<Net>& sh, std::vector<double>& us, double n, double user_times) {
    const double p50 = percentile(us, 0.5), p99 = percentile(us, 0.99);
    st.counters["req_p50_us"] = p50;
    st.counters["req_p99_us"] = p99;
    st.counters["cand_us"] = p50 / n;
    const double fl = sh.flops.user * user_times + sh.flops.per_candidate * n;
    st.counters["GFLOP/s"] = fl / (p50 * 1e3);
    const double peak = peak_gflops();
    if (peak > 0 && n > 1) st.counters["floor_x"] = (p50 / n) / (sh.flops.per_candidate / (peak * 1e3));
    if (peak > 0 && n == 1) st.counters["floor_x"] = p50 / ((sh.flops.user + sh.flops.per_candidate) / (peak * 1e3));
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(n));
}

template <class Net>
void BM_request(benchmark::State& st, Shape<Net>* sh, std::size_t n, int threads) {
    const Net& m = *sh->model;
    using Scorer = dmin::Scorer<Net>;
    const auto req = example::random_request(m, n, 1.0, 42);
    std::vector<float> out(n);
    std::vector<std::unique_ptr<Scorer>> sc;
    for (int t = 0; t < threads; ++t) sc.push_back(std::make_unique<Scorer>(m));
    const std::size_t half = threads == 2 ? n / 2 : n;  // thread 0: [0, half), thread 1: [half, n)
    std::unique_ptr<Worker> worker;
    if (threads == 2) {
        worker = std::make_unique<Worker>();
        worker->set_job([&] {
            sc[1]->set_user(req.user.view());
            if (n > half) sc[1]->score(req.candidates.slice(half, n - half), out.data() + half);
        });
    }
    auto one = [&] {
        if (worker) worker->release();
        sc[0]->set_user(req.user.view());
        if (half > 0) sc[0]->score(req.candidates.slice(0, half), out.data());
        if (worker) worker->wait();
    };
    for (int w = 0; w < 2; ++w) one();
    // CPU time is read once per batch of requests lasting about 1 ms, not around every request: reading
    // it is a system call, and on the VM of benchmarks/RESULTS.md a system call slows the ~60 µs of
    // computation after it by 4–5 µs (phases/paper/N:1 against phases/paper/N:1/syscall), which
    // inflated the CPU and wall times of short requests (small N=1: 4.6 µs of CPU against 2.6 µs of
    // wall clock in `dmin bench`). Only a batch's first request follows the call.
    const auto e0 = clock_type::now();
    one();
    const double est_us = std::chrono::duration<double, std::micro>(clock_type::now() - e0).count();
    const auto batch = static_cast<std::size_t>(std::clamp(1000.0 / std::max(est_us, 1e-3), 1.0, 4096.0));
    std::vector<double> us, cpu;
    us.reserve(1 << 16);
    cpu.reserve(1 << 16);
    std::size_t in_batch = 0;
    double c0 = thread_cpu_us();
    for (auto _ : st) {
        const auto t0 = clock_type::now();
        one();
        us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
        if (++in_batch == batch) {
            const double c1 = thread_cpu_us();
            cpu.push_back((c1 - c0) / static_cast<double>(batch));
            c0 = c1;
            in_batch = 0;
        }
        benchmark::DoNotOptimize(out.data());
    }
    set_counters(st, *sh, us, static_cast<double>(n), 1.0);
    if (threads == 1 && !cpu.empty()) st.counters["cpu_p50_us"] = percentile(cpu, 0.5);
}

template <class Net>
void BM_set_user(benchmark::State& st, Shape<Net>* sh) {
    const Net& m = *sh->model;
    using Scorer = dmin::Scorer<Net>;
    const auto req = example::random_request(m, 1, 1.0, 42);
    Scorer sc(m);
    std::vector<double> us;
    for (auto _ : st) {
        const auto t0 = clock_type::now();
        sc.set_user(req.user.view());
        us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
    }
    st.counters["req_p50_us"] = percentile(us, 0.5);
    st.counters["req_p99_us"] = percentile(us, 0.99);
    st.counters["GFLOP/s"] = sh->flops.user / (percentile(us, 0.5) * 1e3);
}

/// A request's two phases timed separately inside the request loop (set_user then score(n)), for
/// comparison with set_user/ and score/ alone: the difference is what each phase loses to the other
/// evicting its weights and scratch from L2 (RESULTS.md §4, paper N=1). `syscall`: one system call
/// (reading the thread's CPU clock) before each request, as a service reads its socket; otherwise
/// none in the loop.
template <class Net>
void BM_phases(benchmark::State& st, Shape<Net>* sh, std::size_t n, bool syscall) {
    const Net& m = *sh->model;
    using Scorer = dmin::Scorer<Net>;
    const auto req = example::random_request(m, n, 1.0, 42);
    std::vector<float> out(n);
    Scorer sc(m);
    std::vector<double> user, cand;
    for (auto _ : st) {
        if (syscall) benchmark::DoNotOptimize(thread_cpu_us());
        const auto t0 = clock_type::now();
        sc.set_user(req.user.view());
        const auto t1 = clock_type::now();
        sc.score(req.candidates.slice(0, n), out.data());
        const auto t2 = clock_type::now();
        user.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        cand.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
        benchmark::DoNotOptimize(out.data());
    }
    st.counters["user_p50_us"] = percentile(user, 0.5);
    st.counters["score_p50_us"] = percentile(cand, 0.5);
}

/// score(n) alone after one set_user, or with `reference` score_reference (the Eigen oracle).
template <class Net>
void BM_score(benchmark::State& st, Shape<Net>* sh, std::size_t n, bool reference) {
    const Net& m = *sh->model;
    using Scorer = dmin::Scorer<Net>;
    const auto req = example::random_request(m, n, 1.0, 42);
    std::vector<float> out(n);
    Scorer sc(m);
    sc.set_user(req.user.view());
    std::vector<double> us;
    for (auto _ : st) {
        const auto t0 = clock_type::now();
        if (reference) sc.score_reference(req.candidates.slice(0, n), out.data());
        else sc.score(req.candidates.slice(0, n), out.data());
        us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
        benchmark::DoNotOptimize(out.data());
    }
    const double p50 = percentile(us, 0.5);
    st.counters["req_p50_us"] = p50;
    st.counters["cand_us"] = p50 / static_cast<double>(n);
    st.counters["GFLOP/s"] = sh->flops.per_candidate * static_cast<double>(n) / (p50 * 1e3);
    const double peak = peak_gflops();
    if (peak > 0) st.counters["floor_x"] = (p50 / static_cast<double>(n)) / (sh->flops.per_candidate / (peak * 1e3));
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(n));
}

/// Removes "--name VALUE" or "--name=VALUE" from argv; returns VALUE or "".
std::string take_option(int& argc, char** argv, const std::string& name) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        int k = 0;
        std::string v;
        if (a == name && i + 1 < argc) {
            v = argv[i + 1];
            k = 2;
        } else if (a.rfind(name + "=", 0) == 0) {
            v = a.substr(name.size() + 1);
            k = 1;
        } else {
            continue;
        }
        for (int j = i; j + k < argc; ++j) argv[j] = argv[j + k];
        argc -= k;
        return v;
    }
    return "";
}

std::string models_dir(int& argc, char** argv) {
    std::string dir = take_option(argc, argv, "--models");
    if (dir.empty()) {
        const char* e = std::getenv("DMIN_BENCH_MODELS");
        dir = e && *e ? e : DMIN_BENCH_MODELS_DIR;
    }
    return dir;
}

/// Registers every benchmark of one loaded shape under `label` ("small", or "small:fixed" for its
/// compile-time type).
template <class Net>
void register_shape(Shape<Net>* sh, const std::string& label) {
    for (int threads : {1, 2})
        for (std::size_t n : {1, 16, 128, 1024}) {
            if (threads == 2 && n == 1) continue;  // nothing to split
            const std::string nm = "request/" + label + "/N:" + std::to_string(n) + "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(nm.c_str(), BM_request<Net>, sh, n, threads)->Unit(benchmark::kMicrosecond)->UseRealTime();
        }
    benchmark::RegisterBenchmark(("set_user/" + label).c_str(), BM_set_user<Net>, sh)->Unit(benchmark::kMicrosecond);
    for (std::size_t n : {1, 16, 128, 1024})
        benchmark::RegisterBenchmark(("score/" + label + "/N:" + std::to_string(n)).c_str(), BM_score<Net>, sh, n, false)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("reference/" + label + "/N:16").c_str(), BM_score<Net>, sh, std::size_t{16}, true)->Unit(benchmark::kMicrosecond);
    for (bool syscall : {false, true})
        benchmark::RegisterBenchmark(("phases/" + label + "/N:1" + (syscall ? "/syscall" : "")).c_str(), BM_phases<Net>, sh, std::size_t{1},
                                     syscall)
            ->Unit(benchmark::kMicrosecond);
}

/// Loads `path` as Net and registers its benchmarks; the shape lives until the process ends.
template <class Net>
void load_and_register(const std::string& name, const std::string& path, const std::string& label) {
    static std::vector<std::unique_ptr<Shape<Net>>> keep;
    auto sh = std::make_unique<Shape<Net>>();
    sh->name = name;
    sh->model = std::make_unique<Net>(dmin::load<Net>(path));
    sh->flops = dmin::count_flops(*sh->model, sh->model->branches().at(0).L);
    register_shape(sh.get(), label);
    keep.push_back(std::move(sh));
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = models_dir(argc, argv);
    const std::string only = take_option(argc, argv, "--shape");
    int loaded = 0;
    for (const char* name : {"small", "paper", "large"}) {
        if (!only.empty() && only != name) continue;
        const std::string path = dir + "/" + name + ".safetensors";
        if (!std::ifstream(path)) {
            std::fprintf(stderr, "bench_scorer: %s not found (generate with python/bench/models.py --out %s)\n", path.c_str(), dir.c_str());
            continue;
        }
        ++loaded;
        load_and_register<dmin::Model<>>(name, path, name);
        const std::string fixed = std::string(name) + ":fixed";
        if (std::string(name) == "small") load_and_register<SmallNet>(name, path, fixed);
        if (std::string(name) == "paper") load_and_register<PaperNet>(name, path, fixed);
        if (std::string(name) == "large") load_and_register<LargeNet>(name, path, fixed);
    }
    if (loaded == 0) {
        std::fprintf(stderr, "bench_scorer: no model files in '%s' (pass --models DIR or set DMIN_BENCH_MODELS)\n", dir.c_str());
        return 2;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("dmin_simd", dmin::kernels::simd_arch_name());
    benchmark::AddCustomContext("dmin_models", dir);
    if (peak_gflops() > 0) benchmark::AddCustomContext("peak_gflops", std::to_string(peak_gflops()));
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
