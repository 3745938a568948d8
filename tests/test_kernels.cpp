// gemm kernel against the double-precision triple loop, over shapes that hit every tail path.
#include <catch2/catch.hpp>

#include <dmin/aligned.hpp>
#include <dmin/kernels/gemm.hpp>

#include <random>

using dmin::kernels::Epilogue;
using dmin::kernels::Init;

TEST_CASE("gemm matches the reference on every tail shape", "[kernels]") {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1, 1);
    const int Ms[] = {1, 2, 3, 4, 5, 7, 50, 101};
    const int Ns[] = {1, 3, 8, 15, 16, 17, 33, 40, 64, 65, 80, 130};
    const int Ks[] = {1, 4, 8, 32, 129};
    for (int M : Ms)
        for (int N : Ns)
            for (int K : Ks)
                for (Init init : {Init::zero, Init::bias, Init::accumulate})
                  for (Epilogue ep : {Epilogue::none, Epilogue::relu}) {
                    const int lda = K + 3, ldb = N + 1, ldc = N + 5;
                    dmin::AlignedBuffer A(static_cast<size_t>(M * lda + 32)), B(static_cast<size_t>(K * ldb + 32)),
                        bias(static_cast<size_t>(N + 32)), C(static_cast<size_t>(M * ldc + 32)), R(static_cast<size_t>(M * ldc + 32));
                    for (size_t i = 0; i < A.size(); ++i) A.data()[i] = u(rng);
                    for (size_t i = 0; i < B.size(); ++i) B.data()[i] = u(rng);
                    for (size_t i = 0; i < bias.size(); ++i) bias.data()[i] = u(rng);
                    for (size_t i = 0; i < C.size(); ++i) C.data()[i] = R.data()[i] = u(rng);
                    dmin::kernels::gemm(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, bias.data(), init, ep);
                    dmin::kernels::gemm_reference(M, N, K, A.data(), lda, B.data(), ldb, R.data(), ldc, bias.data(), init, ep);
                    for (int i = 0; i < M; ++i)
                        for (int j = 0; j < ldc; ++j) {
                            const float got = C.data()[i * ldc + j], want = R.data()[i * ldc + j];
                            INFO("M=" << M << " N=" << N << " K=" << K << " init=" << int(init) << " relu=" << int(ep) << " i=" << i << " j=" << j);
                            if (j < N) REQUIRE(std::fabs(got - want) <= 1e-5f * (1 + static_cast<float>(K) * 0.1f));
                            else REQUIRE(got == want);  // columns beyond N are never written
                        }
                }
}
