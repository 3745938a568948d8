// dmin/kernels/gemm.hpp — register-blocked C = A·B (+ bias | + C) for the small row-major shapes of DMIN.
#pragma once

#include <algorithm>
#include <cstring>

#include "dmin/kernels/simd.hpp"

namespace dmin::kernels {

/// How C is initialised before A·B is added.
enum class Init { zero, bias, accumulate };
/// What is applied to the finished tile before it is stored.
enum class Epilogue { none, relu };

namespace detail {

/// The micro-kernel: an MR × (NV·W) tile of C held in registers while k runs over K.
template <int MR, int NV>
inline void gemm_block(int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc, int ncols,
                       const float* bias, Init init, Epilogue ep) {
    constexpr int W = vfloat::size;
    vfloat c[MR][NV];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) {
            if (init == Init::bias) c[r][v] = vfloat::load(bias + v * W);
            else if (init == Init::accumulate && (v + 1) * W <= ncols) c[r][v] = vfloat::load(C + r * ldc + v * W);
            else if (init == Init::accumulate) {
                float tmp[W] = {};
                const int n = std::min(W, ncols - v * W);
                for (int j = 0; j < n; ++j) tmp[j] = C[r * ldc + v * W + j];
                c[r][v] = vfloat::load(tmp);
            } else c[r][v] = vfloat(0.0f);
        }
    const float* a[MR];
    for (int r = 0; r < MR; ++r) a[r] = A + static_cast<std::ptrdiff_t>(r) * lda;
    const float* b = B;
    for (int k = 0; k < K; ++k, b += ldb) {
        vfloat bv[NV];
        for (int v = 0; v < NV; ++v) bv[v] = vfloat::load(b + v * W);
        for (int r = 0; r < MR; ++r) {
            const vfloat av(a[r][k]);
            for (int v = 0; v < NV; ++v) c[r][v] = fma(av, bv[v], c[r][v]);
        }
    }
    if (ep == Epilogue::relu)
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < NV; ++v) c[r][v] = relu(c[r][v]);
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) {
            if ((v + 1) * W <= ncols) c[r][v].store(C + r * ldc + v * W);
            else {
                float tmp[W];
                c[r][v].store(tmp);
                const int n = std::min(W, ncols - v * W);
                for (int j = 0; j < n; ++j) C[r * ldc + v * W + j] = tmp[j];
            }
        }
}

template <int MR>
inline void gemm_rows(int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                      const float* bias, Init init, Epilogue ep) {
    constexpr int W = vfloat::size;
    // Column chunks of up to 4 vectors, never leaving a lone 1-vector chunk when it can be avoided
    // (5 → 3+2, 9 → 4+3+2): fewer than 8 accumulators cannot hide the FMA latency.
    int n = 0;
    int nvec = (N + W - 1) / W;
    while (nvec > 0) {
        const int take = nvec >= 6 ? 4 : (nvec == 5 ? 3 : nvec);
        const int cols = std::min(N - n, take * W);
        const float* bb = bias ? bias + n : nullptr;
        switch (take) {
            case 1: gemm_block<MR, 1>(K, A, lda, B + n, ldb, C + n, ldc, cols, bb, init, ep); break;
            case 2: gemm_block<MR, 2>(K, A, lda, B + n, ldb, C + n, ldc, cols, bb, init, ep); break;
            case 3: gemm_block<MR, 3>(K, A, lda, B + n, ldb, C + n, ldc, cols, bb, init, ep); break;
            default: gemm_block<MR, 4>(K, A, lda, B + n, ldb, C + n, ldc, cols, bb, init, ep); break;
        }
        n += take * W;
        nvec -= take;
    }
}

}  // namespace detail

/// C[M×N] = A[M×K]·B[K×N] + init, all row-major with leading dimensions lda, ldb, ldc.
/// Init::bias adds bias[N] to every row; Init::accumulate adds to the existing C.
/// Epilogue::relu stores max(C, 0) (the fused activation of a Linear followed by ReLU).
/// Preconditions: every row of B, and bias, is readable up to N rounded up to the vector width
/// (dmin's arenas guarantee kReadSlack floats after every buffer); only N columns of C are written.
inline void gemm(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                 const float* bias = nullptr, Init init = Init::zero, Epilogue ep = Epilogue::none) {
    if (init == Init::bias && !bias) init = Init::zero;
    // Register tile: 6 rows × 2 ymm (12 accumulators of 16 registers) or 6 rows × 4 zmm (24 of 32).
    constexpr int MR = 6;
    int m = 0;
    for (; m + MR <= M; m += MR)
        detail::gemm_rows<MR>(N, K, A + static_cast<std::ptrdiff_t>(m) * lda, lda, B, ldb, C + static_cast<std::ptrdiff_t>(m) * ldc, ldc, bias, init, ep);
    const float* a = A + static_cast<std::ptrdiff_t>(m) * lda;
    float* c = C + static_cast<std::ptrdiff_t>(m) * ldc;
    switch (M - m) {
        case 1: detail::gemm_rows<1>(N, K, a, lda, B, ldb, c, ldc, bias, init, ep); break;
        case 2: detail::gemm_rows<2>(N, K, a, lda, B, ldb, c, ldc, bias, init, ep); break;
        case 3: detail::gemm_rows<3>(N, K, a, lda, B, ldb, c, ldc, bias, init, ep); break;
        case 4: detail::gemm_rows<4>(N, K, a, lda, B, ldb, c, ldc, bias, init, ep); break;
        case 5: detail::gemm_rows<5>(N, K, a, lda, B, ldb, c, ldc, bias, init, ep); break;
        default: break;
    }
}

/// The obvious triple loop, in double precision accumulation: the oracle for gemm in tests.
inline void gemm_reference(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                           const float* bias = nullptr, Init init = Init::zero, Epilogue ep = Epilogue::none) {
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            double s = init == Init::bias && bias ? bias[j] : (init == Init::accumulate ? C[i * ldc + j] : 0.0);
            for (int k = 0; k < K; ++k) s += static_cast<double>(A[i * lda + k]) * B[k * ldb + j];
            C[i * ldc + j] = static_cast<float>(ep == Epilogue::relu && s < 0 ? 0.0 : s);
        }
}

}  // namespace dmin::kernels
