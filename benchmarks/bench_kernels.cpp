// Kernel-level benchmarks: dmin::kernels::gemm at the shapes DMIN's hot paths use.
//
//   build/benchmarks/bench_kernels [--benchmark_filter=paper]     (DMIN_PEAK_GFLOPS=<fma_peak> adds "of_peak")
//
// BM_gemm/M/N/K: C[M×N] = A[M×K]·B[K×N] (+C for the accumulate variants), all row-major, as Scorer
// calls it: per block of 32 candidates the DNN's candidate-part first layer and hidden layers; per
// request the user phase; and the attention MLP of a candidate scored one at a time (groups of fewer
// than 8: layer 1's factored part, nv positions × D → A1 onto g_l + a0, and layer 2, A1 → A2).
// BM_gemm_tn/M/N/K: the attention MLP in the lane layout that score() uses for groups of 8–16
// candidates, C[units × (5 positions · 16 lanes)] = W^T·X with W stored [K×M]: layer 1 accumulates onto
// g_v + a0_c, layer 2 adds a per-row bias; both with the fused ReLU.
// BM_dnn_cold/<shape>/<layout>/M: the DNN's hidden layers (candidate part of the first one) as
// nn::Linear on M rows with their weights coming from L3, as in a request: copies of the weights
// (≥ 4 MB in all) are used in turn, so every iteration finds its copy evicted from L2. layout: W^T
// row-major [in, out] or in the column panels the model uses (layers::kDnnPanel).
#include <benchmark/benchmark.h>

#include <dmin/aligned.hpp>
#include <dmin/kernels/gemm.hpp>
#include <dmin/model.hpp>
#include <dmin/nn/mlp.hpp>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>

namespace {

void fill(dmin::AlignedBuffer& b, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1, 1);
    for (std::size_t i = 0; i < b.size(); ++i) b.data()[i] = u(rng);
}

void counters(benchmark::State& st, double flops) {
    st.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
    if (const char* p = std::getenv("DMIN_PEAK_GFLOPS")) {
        const double peak = std::atof(p);
        if (peak > 0)
            st.counters["of_peak"] = benchmark::Counter(flops / (peak * 1e9), benchmark::Counter::kIsIterationInvariantRate);
    }
}

/// Args M, N, K, acc, tn. tn == 0: C[M×N] = A[M×K]·B[K×N] + bias (acc == 0) or + C (acc == 1).
/// tn == 1: C = At^T·B with At [K×M] and the ReLU fused, + a per-row bias (acc == 0) or + C (acc == 1).
void BM_gemm(benchmark::State& st) {
    using dmin::kernels::Epilogue;
    using dmin::kernels::Init;
    const int M = static_cast<int>(st.range(0)), N = static_cast<int>(st.range(1)), K = static_cast<int>(st.range(2));
    const bool acc = st.range(3) != 0, tn = st.range(4) != 0;
    dmin::AlignedBuffer A(static_cast<std::size_t>(M * K + 32)), B(static_cast<std::size_t>(K * N + 32)),
        C(static_cast<std::size_t>(M * N + 32)), bias(static_cast<std::size_t>(std::max(M, N) + 32));
    fill(A, 1);
    fill(B, 2);
    fill(bias, 3);
    for (auto _ : st) {
        if (tn)
            dmin::kernels::gemm_tn(M, N, K, A.data(), M, B.data(), N, C.data(), N, acc ? nullptr : bias.data(),
                                   acc ? Init::accumulate : Init::row_bias, Epilogue::relu);
        else
            dmin::kernels::gemm(M, N, K, A.data(), K, B.data(), N, C.data(), N, acc ? nullptr : bias.data(),
                                acc ? Init::accumulate : Init::bias);
        benchmark::DoNotOptimize(C.data());
        benchmark::ClobberMemory();
    }
    counters(st, 2.0 * M * N * K);
}

/// Args: shape (0 paper, 1 large), M, panels (0/1).
void BM_dnn_cold(benchmark::State& st) {
    static const std::vector<int> kDims[2] = {{160, 512, 128, 64}, {320, 1024, 512, 256}};
    const auto& dims = kDims[st.range(0)];
    const int M = static_cast<int>(st.range(1));
    std::size_t floats = 0, flops = 0;
    for (std::size_t l = 0; l + 1 < dims.size(); ++l) {
        floats += static_cast<std::size_t>(dims[l] * dims[l + 1] + dims[l + 1] + 32);
        flops += 2u * static_cast<std::size_t>(M * dims[l] * dims[l + 1]);
    }
    const std::size_t copies = std::max<std::size_t>(2, (std::size_t(4) << 20) / (floats * sizeof(float)) + 1);
    std::vector<dmin::AlignedBuffer> store;
    std::vector<std::vector<dmin::nn::Linear>> nets(copies);
    for (std::size_t c = 0; c < copies; ++c) {
        store.emplace_back(floats);
        fill(store.back(), static_cast<unsigned>(10 + c));
        float* p = store.back().data();
        for (std::size_t l = 0; l + 1 < dims.size(); ++l) {
            dmin::nn::Linear lin{dims[l], dims[l + 1], p, p + dims[l] * dims[l + 1]};
            if (st.range(2) != 0) dmin::nn::pack_panels(lin, p, dmin::layers::kDnnPanel);
            p += dims[l] * dims[l + 1] + dims[l + 1] + 32;
            nets[c].push_back(lin);
        }
    }
    dmin::AlignedBuffer x(static_cast<std::size_t>(M * 1024 + 32)), y(static_cast<std::size_t>(M * 1024 + 32));
    fill(x, 4);
    std::size_t c = 0;
    for (auto _ : st) {
        const auto& net = nets[c];
        c = c + 1 == copies ? 0 : c + 1;
        float* bufs[2] = {x.data(), y.data()};
        for (std::size_t l = 0; l < net.size(); ++l)
            net[l].forward(M, bufs[l % 2], net[l].in, bufs[(l + 1) % 2], net[l].out, dmin::kernels::Epilogue::relu);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    counters(st, static_cast<double>(flops));
}

struct Shape {
    const char* name;
    int M, N, K, acc;
};

// clang-format off
const Shape kShapes[] = {
    // per candidate × head: attention MLP (paper: nv = L = 50, D = 32, A1 = 80, A2 = 40)
    {"paper/attn1_Wd", 50, 80, 32, 1},   {"paper/attn2", 50, 40, 80, 0},
    {"large/attn1_Wd", 100, 80, 64, 1},  {"large/attn2", 100, 40, 80, 0},
    {"small/attn1_Wd", 5, 80, 8, 1},     {"small/attn2", 5, 40, 80, 0},
    // per block of 32 candidates: DNN (paper: candidate width 160 → 512 → 128 → 64)
    {"paper/dnn1_cand", 32, 512, 160, 1}, {"paper/dnn2", 32, 128, 512, 0}, {"paper/dnn3", 32, 64, 128, 0},
    {"large/dnn1_cand", 32, 1024, 320, 1}, {"large/dnn2", 32, 512, 1024, 0}, {"large/dnn3", 32, 256, 512, 0},
    // one candidate (N = 1 requests): the DNN as one-row products, weights streamed from L2/L3
    {"paper/dnn1_one", 1, 512, 160, 1}, {"paper/dnn2_one", 1, 128, 512, 0},
    {"large/dnn1_one", 1, 1024, 320, 1}, {"large/dnn2_one", 1, 512, 1024, 0},
    // per request (user phase, paper): QKV projection, FFN
    {"paper/user_qkv", 50, 96, 32, 0}, {"paper/user_ffn1", 50, 64, 32, 0}, {"paper/user_ffn2", 50, 32, 64, 0},
    // a square reference point
    {"ref/128x128x128", 128, 128, 128, 0},
};
// Lane layout (M = units, N = kChunk·kLanes = 80 columns, K = D or A1).
const Shape kLaneShapes[] = {
    {"paper/lanes_attn1", 80, 80, 32, 1}, {"paper/lanes_attn2", 40, 80, 80, 0},
    {"large/lanes_attn1", 80, 80, 64, 1}, {"large/lanes_attn2", 40, 80, 80, 0},
    {"small/lanes_attn1", 80, 80, 8, 1},  {"small/lanes_attn2", 40, 80, 80, 0},
};
// clang-format on

}  // namespace

int main(int argc, char** argv) {
    for (const auto& s : kShapes)
        benchmark::RegisterBenchmark((std::string("BM_gemm/") + s.name).c_str(), BM_gemm)
            ->Args({s.M, s.N, s.K, s.acc, 0});
    for (const auto& s : kLaneShapes)
        benchmark::RegisterBenchmark((std::string("BM_gemm_tn/") + s.name).c_str(), BM_gemm)
            ->Args({s.M, s.N, s.K, s.acc, 1});
    for (int shape : {0, 1})
        for (int M : {1, 32})
            for (int panels : {0, 1})
                benchmark::RegisterBenchmark((std::string("BM_dnn_cold/") + (shape ? "large" : "paper") + (panels ? "/panels" : "/rowmajor")).c_str(),
                                             BM_dnn_cold)
                    ->Args({shape, M, panels});
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("dmin_simd", dmin::kernels::simd_arch_name());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
