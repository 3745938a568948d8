// gemm kernel against the double-precision triple loop, over shapes that hit every tail path.
#include "catch.hpp"

#include <dmin/aligned.hpp>
#include <dmin/kernels/bf16.hpp>
#include <dmin/kernels/gemm.hpp>
#include <dmin/kernels/rowops.hpp>
#include <dmin/nn/mlp.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using dmin::kernels::Epilogue;
using dmin::kernels::Init;

namespace {
/// C (the kernel's result) against R (gemm_reference's) over M rows of ldc: close within N columns,
/// untouched beyond (columns past N are never written).
void require_same(const dmin::AlignedBuffer& C, const dmin::AlignedBuffer& R, int M, int N, int K, int ldc, Init init, Epilogue ep) {
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < ldc; ++j) {
            const float got = C.data()[i * ldc + j], want = R.data()[i * ldc + j];
            INFO("M=" << M << " N=" << N << " K=" << K << " init=" << int(init) << " relu=" << int(ep) << " i=" << i << " j=" << j);
            if (j < N) REQUIRE(std::fabs(got - want) <= 1e-5f * (1 + static_cast<float>(K) * 0.1f));
            else REQUIRE(got == want);
        }
}
}  // namespace

TEST_CASE("gemm matches the reference on every tail shape", "[kernels]") {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1, 1);
    const int Ms[] = {1, 2, 3, 4, 5, 7, 11, 32, 50, 101};  // 11, 32, 50, 101: 6- and 5-row tiles
    const int Ns[] = {1, 3, 8, 15, 16, 17, 33, 40, 64, 65, 80, 100, 130, 144, 300};  // 100, 300: wide 1- and 2-row chunks; 65, 80, 130, 144: 5-vector chunks (zmm)
    const int Ks[] = {1, 4, 8, 32, 129};
    for (int M : Ms)
        for (int N : Ns)
            for (int K : Ks)
                for (Init init : {Init::zero, Init::bias, Init::accumulate, Init::row_scale})
                  for (Epilogue ep : {Epilogue::none, Epilogue::relu}) {
                    const int lda = K + 3, ldb = N + 1, ldc = N + 5;
                    dmin::AlignedBuffer A(static_cast<size_t>(M * lda + 32)), B(static_cast<size_t>(K * ldb + 32)),
                        bias(static_cast<size_t>(std::max(M, N) + 32)), C(static_cast<size_t>(M * ldc + 32)), R(static_cast<size_t>(M * ldc + 32));
                    for (size_t i = 0; i < A.size(); ++i) A.data()[i] = u(rng);
                    for (size_t i = 0; i < B.size(); ++i) B.data()[i] = u(rng);
                    for (size_t i = 0; i < bias.size(); ++i) bias.data()[i] = u(rng);
                    for (size_t i = 0; i < C.size(); ++i) C.data()[i] = R.data()[i] = u(rng);
                    dmin::kernels::gemm(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, bias.data(), init, ep);
                    dmin::kernels::gemm_reference(M, N, K, A.data(), lda, B.data(), ldb, R.data(), ldc, bias.data(), init, ep);
                    require_same(C, R, M, N, K, ldc, init, ep);
                }
}

namespace {
/// gemm and gemm_tn with M, N, K as template arguments (each of them, and all three) against the same
/// products with runtime sizes: the bits must be equal, and nothing past N columns written.
template <int M, int N, int K>
void fixed_sizes_same_bits(std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-1, 1);
    const int lda = K + 3, ldb = N + 1, ldc = N + 5, ldat = M + 2;
    std::vector<float> A(static_cast<size_t>(M * lda + 32)), At(static_cast<size_t>(K * ldat + 32)), B(static_cast<size_t>(K * ldb + 32)),
        bias(static_cast<size_t>(std::max(M, N) + 32)), C0(static_cast<size_t>(M * ldc + 32));
    for (auto* v : {&A, &At, &B, &bias, &C0})
        for (auto& x : *v) x = u(rng);
    for (Init init : {Init::zero, Init::bias, Init::row_bias, Init::accumulate})
        for (Epilogue ep : {Epilogue::none, Epilogue::relu}) {
            INFO("M=" << M << " N=" << N << " K=" << K << " init=" << int(init) << " relu=" << int(ep));
            auto run = [&](auto&& product) {
                std::vector<float> C = C0;
                product(C.data());
                return C;
            };
            const auto want = run([&](float* C) { dmin::kernels::gemm(M, N, K, A.data(), lda, B.data(), ldb, C, ldc, bias.data(), init, ep); });
            CHECK(run([&](float* C) { dmin::kernels::gemm<M, N, K>(M, N, K, A.data(), lda, B.data(), ldb, C, ldc, bias.data(), init, ep); }) == want);
            CHECK(run([&](float* C) { dmin::kernels::gemm<dmin::Dynamic, N, K>(M, N, K, A.data(), lda, B.data(), ldb, C, ldc, bias.data(), init, ep); }) == want);
            CHECK(run([&](float* C) { dmin::kernels::gemm<M, N, dmin::Dynamic>(M, N, K, A.data(), lda, B.data(), ldb, C, ldc, bias.data(), init, ep); }) == want);
            const auto want_tn = run([&](float* C) { dmin::kernels::gemm_tn(M, N, K, At.data(), ldat, B.data(), ldb, C, ldc, bias.data(), init, ep); });
            CHECK(run([&](float* C) { dmin::kernels::gemm_tn<M, N, K>(M, N, K, At.data(), ldat, B.data(), ldb, C, ldc, bias.data(), init, ep); }) == want_tn);
        }
}
}  // namespace

TEST_CASE("gemm with compile-time sizes has the bits of the runtime-sized product", "[kernels]") {
    // The shapes of the small and paper models' products (L = 5, 50; D = 8, 32; hd; A1 = 80; 3D, 2D) and
    // tails of every kind: one row, 5- and 6-row tiles, 12-row one-vector tiles, masked last vectors.
    std::mt19937 rng(5);
    fixed_sizes_same_bits<5, 24, 8>(rng);
    fixed_sizes_same_bits<5, 80, 16>(rng);
    fixed_sizes_same_bits<5, 16, 4>(rng);
    fixed_sizes_same_bits<1, 40, 80>(rng);
    fixed_sizes_same_bits<50, 96, 32>(rng);
    fixed_sizes_same_bits<50, 64, 8>(rng);
    fixed_sizes_same_bits<13, 17, 3>(rng);
    fixed_sizes_same_bits<24, 8, 50>(rng);
}

TEST_CASE("gemm_tn (transposed left operand, per-row bias) matches the reference", "[kernels]") {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-1, 1);
    for (int M : {1, 2, 5, 6, 7, 13, 40, 80})
        for (int N : {1, 16, 17, 48, 64, 80})
            for (int K : {1, 32, 80})
                for (Init init : {Init::zero, Init::row_bias, Init::accumulate, Init::row_scale})
                    for (Epilogue ep : {Epilogue::none, Epilogue::relu}) {
                        const int ldat = M + 2, ldb = N + 3, ldc = N + 1;
                        dmin::AlignedBuffer At(static_cast<size_t>(K * ldat + 32)), A(static_cast<size_t>(M * K + 32)),
                            B(static_cast<size_t>(K * ldb + 32)), bias(static_cast<size_t>(M + 32)),
                            C(static_cast<size_t>(M * ldc + 32)), R(static_cast<size_t>(M * ldc + 32));
                        for (size_t i = 0; i < At.size(); ++i) At.data()[i] = u(rng);
                        for (int r = 0; r < M; ++r)
                            for (int k = 0; k < K; ++k) A.data()[r * K + k] = At.data()[k * ldat + r];
                        for (size_t i = 0; i < B.size(); ++i) B.data()[i] = u(rng);
                        for (size_t i = 0; i < bias.size(); ++i) bias.data()[i] = u(rng);
                        for (size_t i = 0; i < C.size(); ++i) C.data()[i] = R.data()[i] = u(rng);
                        dmin::kernels::gemm_tn(M, N, K, At.data(), ldat, B.data(), ldb, C.data(), ldc, bias.data(), init, ep);
                        dmin::kernels::gemm_reference(M, N, K, A.data(), K, B.data(), ldb, R.data(), ldc, bias.data(), init, ep);
                        require_same(C, R, M, N, K, ldc, init, ep);
                    }
}

TEST_CASE("gemm_tn from an outer sum has the bits of writing the sum first and accumulating", "[kernels]") {
    constexpr int W = dmin::kernels::vfloat::size;
    std::mt19937 rng(13);
    std::uniform_real_distribution<float> u(-1, 1);
    for (int period : {W, 16, 32})
        for (int M : {1, 2, 5, 6, 7, 12, 13, 40, 80})
            for (int N : {16, 32, 48, 80, 96, 160, 176})  // whole vectors (the overload's precondition), ragged last blocks
                for (int K : {1, 8, 33})
                    for (Epilogue ep : {Epilogue::none, Epilogue::relu}) {
                        if (period % W != 0 || N % W != 0) continue;
                        const int ldat = M + 2, ldb = N + 3, ldc = N + 1, ldu = period + 3, blocks = (N + period - 1) / period, ldw = M + 1;
                        dmin::AlignedBuffer At(static_cast<size_t>(K * ldat + 32)), A(static_cast<size_t>(M * K + 32)),
                            B(static_cast<size_t>(K * ldb + 32)), U(static_cast<size_t>(M * ldu + 32)), Wv(static_cast<size_t>(blocks * ldw + 32)),
                            C(static_cast<size_t>(M * ldc + 32)), S(static_cast<size_t>(M * ldc + 32)), R(static_cast<size_t>(M * ldc + 32));
                        for (auto* buf : {&At, &B, &U, &Wv}) for (size_t i = 0; i < buf->size(); ++i) buf->data()[i] = u(rng);
                        for (int r = 0; r < M; ++r)
                            for (int k = 0; k < K; ++k) A.data()[r * K + k] = At.data()[k * ldat + r];
                        for (size_t i = 0; i < C.size(); ++i) C.data()[i] = S.data()[i] = u(rng);
                        for (int r = 0; r < M; ++r)  // the outer sum written out
                            for (int j = 0; j < N; ++j) S.data()[r * ldc + j] = U.data()[r * ldu + j % period] + Wv.data()[(j / period) * ldw + r];
                        std::copy(S.data(), S.data() + S.size(), R.data());
                        const dmin::kernels::OuterSum os{U.data(), ldu, Wv.data(), ldw, period};
                        dmin::kernels::gemm_tn(M, N, K, At.data(), ldat, B.data(), ldb, C.data(), ldc, os, ep);
                        dmin::kernels::gemm_tn(M, N, K, At.data(), ldat, B.data(), ldb, S.data(), ldc, nullptr, Init::accumulate, ep);
                        dmin::kernels::gemm_reference(M, N, K, A.data(), K, B.data(), ldb, R.data(), ldc, nullptr, Init::accumulate, ep);
                        INFO("period=" << period);
                        require_same(C, R, M, N, K, ldc, Init::accumulate, ep);  // close to the double-precision loop, nothing past N
                        REQUIRE(std::memcmp(C.data(), S.data(), C.size() * sizeof(float)) == 0);
                    }
}

TEST_CASE("activations on feature-major data equal the row-major ones bit for bit", "[kernels]") {
    // The lane-parallel target attention relies on it: one candidate alone and many per SIMD lane
    // must produce the same bits (activate_units vs activate_rows, softmax_ordered vs per-lane sums).
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-3, 3);
    const int units = 19, cols = 21;  // both with vector tails on every ISA
    std::vector<float> slope(units), scale(units), shift(units);
    for (int j = 0; j < units; ++j) slope[j] = u(rng), scale[j] = u(rng), shift[j] = u(rng);
    for (const auto& n : dmin::kActNames) {
        dmin::ActParams p;
        if (n.act == dmin::Act::prelu || n.act == dmin::Act::dice) p.slope = slope.data();
        if (n.act == dmin::Act::dice) p.scale = scale.data(), p.shift = shift.data();
        std::vector<float> rows(static_cast<size_t>(cols * units)), fm(static_cast<size_t>(units * cols));
        for (int c = 0; c < cols; ++c)
            for (int j = 0; j < units; ++j) rows[c * units + j] = fm[j * cols + c] = u(rng);
        dmin::kernels::activate_rows(n.act, p, rows.data(), cols, units, units);
        dmin::kernels::activate_units(n.act, p, fm.data(), units, cols, cols);
        for (int c = 0; c < cols; ++c)
            for (int j = 0; j < units; ++j) {
                INFO(n.name << " column " << c << " unit " << j);
                REQUIRE(rows[c * units + j] == fm[j * cols + c]);
            }
    }
}

TEST_CASE("softmax matches the double-precision formula at every length and on masked rows", "[kernels]") {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-8, 8);
    for (int n = 1; n <= 70; ++n)
        for (int masked : {0, 1}) {
            std::vector<float> x(static_cast<size_t>(n));
            for (auto& v : x) v = u(rng);
            // The extractor's rows: blocked logits replaced by -1e9 (never the largest one here).
            if (masked)
                for (int i = 1; i < n; i += 3) x[static_cast<size_t>(i)] = -1e9f;
            double m = *std::max_element(x.begin(), x.end()), s = 0;
            for (float v : x) s += std::exp(static_cast<double>(v) - m);
            std::vector<float> p = x;
            dmin::kernels::softmax(p.data(), n);
            for (int i = 0; i < n; ++i) {
                INFO("n=" << n << " masked=" << masked << " i=" << i);
                REQUIRE(std::fabs(p[static_cast<size_t>(i)] - std::exp(static_cast<double>(x[static_cast<size_t>(i)]) - m) / s) <= 1e-6);
            }
        }
}

// The attention logits, transposed (one query per column): logits·scale, plus `blocked` where query c
// does not allow key k (allowed: k == c, or k < c and k not padding; +1 = FuxiCTR's additive refiner
// mask, −inf = excluded: exactly 0, as the −1e9 replacement gives); with `lower`, keys past the end of
// the query's block of W columns are untouched (no caller reads them). Columns past `cols` untouched.
TEST_CASE("column softmax equals the softmax of scaled logits plus the padding and causal mask, per column", "[kernels]") {
    std::mt19937 rng(12);
    std::uniform_real_distribution<float> u(-20, 20);
    const float ninf = -std::numeric_limits<float>::infinity(), scale = 0.35355339f;
    for (int n : {1, 2, 5, 15, 16, 17, 33, 50, 70})
        for (int padding : {0, 1, 2, 3})  // none, random, every key, a left-padded prefix
            for (float blocked : {1.0f, ninf}) {
                const bool lower = blocked == ninf;  // as the scorer calls it
                const int ld = n + 16;
                std::vector<float> x(static_cast<size_t>(n * ld), 123.0f), pad(static_cast<size_t>(n));
                for (int k = 0; k < n; ++k) {
                    pad[static_cast<size_t>(k)] = padding == 2 || (padding == 1 && rng() % 3 == 0) || (padding == 3 && k < n / 2) ? 1.0f : 0.0f;
                    for (int c = 0; c < n; ++c) x[static_cast<size_t>(k * ld + c)] = u(rng);
                }
                auto add = [&](int k, int c) {
                    const bool allowed = k == c || (k < c && pad[static_cast<size_t>(k)] == 0.0f);
                    return allowed ? 0.0f : blocked;
                };
                const auto how = lower ? dmin::kernels::Blocked::excluded : dmin::kernels::Blocked::plus_one;
                std::vector<float> p = x, q = x, inv(static_cast<size_t>(ld + 16), -1.0f);
                dmin::kernels::softmax_columns(p.data(), n, n, ld, scale, pad.data(), how, lower);
                // Unnormalised form: q keeps exp(y − max), inv the reciprocal column sums.
                dmin::kernels::softmax_columns(q.data(), n, n, ld, scale, pad.data(), how, lower, inv.data());
                for (int c = 0; c < ld; ++c) {
                    std::vector<double> y(static_cast<size_t>(n));
                    for (int k = 0; k < n; ++k)
                        y[static_cast<size_t>(k)] = static_cast<double>(x[static_cast<size_t>(k * ld + c)]) * scale + (c < n ? add(k, c) : 0.0f);
                    const double m = *std::max_element(y.begin(), y.end());
                    double s = 0;
                    for (double v : y) s += std::exp(v - m);
                    for (int k = 0; k < n; ++k) {
                        INFO("n=" << n << " padding=" << padding << " blocked=" << blocked << " key " << k << " column " << c);
                        const float got = p[static_cast<size_t>(k * ld + c)], e = q[static_cast<size_t>(k * ld + c)];
                        const int W = dmin::kernels::vfloat::size;
                        if (c >= n || (lower && k >= (c / W + 1) * W)) {
                            REQUIRE(got == x[static_cast<size_t>(k * ld + c)]);
                            REQUIRE(e == x[static_cast<size_t>(k * ld + c)]);
                        } else if (add(k, c) == ninf) {
                            REQUIRE(got == 0.0f);
                            REQUIRE(e == 0.0f);
                        } else {
                            const double want = std::exp(y[static_cast<size_t>(k)] - m) / s;
                            REQUIRE(std::fabs(got - want) <= 1e-6);
                            REQUIRE(std::fabs(static_cast<double>(e) * inv[static_cast<size_t>(c)] - want) <= 1e-6);
                        }
                    }
                }
            }
}

TEST_CASE("ordered softmax and projection", "[kernels]") {
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> u(-5, 5);
    for (int n : {1, 7, 8, 9, 50, 100}) {
        std::vector<float> x(static_cast<size_t>(n)), w(static_cast<size_t>(n));
        for (auto& v : x) v = u(rng);
        for (auto& v : w) v = u(rng);
        double m = *std::max_element(x.begin(), x.end()), s = 0;
        for (float v : x) s += std::exp(v - m);
        std::vector<float> p = x;
        dmin::kernels::softmax_ordered(p.data(), n);
        for (int i = 0; i < n; ++i) REQUIRE(std::fabs(p[i] - std::exp(x[i] - m) / s) <= 1e-6);
        // The lane-wise softmax (16 independent lanes) gives each lane softmax_ordered's bits.
        std::vector<float> lanes(static_cast<size_t>(n) * 16);
        for (int v = 0; v < n; ++v)
            for (int c = 0; c < 16; ++c) lanes[v * 16 + c] = x[v] + static_cast<float>(c);
        dmin::kernels::softmax_lanes(lanes.data(), n, 16);
        for (int c = 0; c < 16; ++c) {
            std::vector<float> one(static_cast<size_t>(n));
            for (int v = 0; v < n; ++v) one[v] = x[v] + static_cast<float>(c);
            dmin::kernels::softmax_ordered(one.data(), n);
            for (int v = 0; v < n; ++v) REQUIRE(lanes[v * 16 + c] == one[v]);
        }
        float out = 0;
        dmin::kernels::project_rows_ordered(x.data(), 1, n, n, w.data(), 0.5f, &out);
        double want = 0.5;
        for (int i = 0; i < n; ++i) want += static_cast<double>(x[i]) * w[i];
        REQUIRE(std::fabs(out - want) <= 1e-4 * (1 + std::fabs(want)));
    }
}

TEST_CASE("residual LayerNorm matches the double-precision formula at every width, and adds only without gamma", "[kernels]") {
    std::mt19937 rng(13);
    std::uniform_real_distribution<float> u(-2, 2);
    for (int width = 1; width <= 70; ++width)
        for (int rows : {1, 3}) {
            const int ldx = width + 3, ldr = width + 7;
            std::vector<float> X(static_cast<std::size_t>(rows * ldx)), R(static_cast<std::size_t>(rows * ldr)),
                g(static_cast<std::size_t>(width)), b(static_cast<std::size_t>(width));
            for (auto& v : X) v = u(rng) + 3.0f;  // a mean well away from 0
            for (auto& v : R) v = u(rng);
            for (auto& v : g) v = u(rng);
            for (auto& v : b) v = u(rng);
            std::vector<float> Y(X), S(X);
            dmin::kernels::residual_layer_norm_rows(Y.data(), ldx, R.data(), ldr, rows, width, g.data(), b.data());
            dmin::kernels::residual_layer_norm_rows(S.data(), ldx, R.data(), ldr, rows, width, nullptr, nullptr);
            for (int r = 0; r < rows; ++r) {
                double mean = 0, var = 0;  // of the float residual sums, as PyTorch's x + sublayer(x) gives them
                for (int k = 0; k < width; ++k) mean += double(X[r * ldx + k] + R[r * ldr + k]);
                mean /= width;
                for (int k = 0; k < width; ++k) {
                    const double d = double(X[r * ldx + k] + R[r * ldr + k]) - mean;
                    var += d * d;
                }
                var /= width;
                for (int k = 0; k < ldx; ++k) {
                    INFO("width=" << width << " row " << r << " k=" << k);
                    if (k >= width) {  // padding of the row: untouched
                        REQUIRE(Y[r * ldx + k] == X[r * ldx + k]);
                        REQUIRE(S[r * ldx + k] == X[r * ldx + k]);
                        continue;
                    }
                    const float sum = X[r * ldx + k] + R[r * ldr + k];
                    REQUIRE(S[r * ldx + k] == sum);
                    const double want = (double(sum) - mean) / std::sqrt(var + 1e-5) * g[k] + b[k];
                    REQUIRE(std::fabs(Y[r * ldx + k] - want) <= 2e-6 * (1 + std::fabs(want)));
                }
            }
        }
}

namespace {
/// The row kernels that the attention blocks call with the shape's sizes: with Rows and Cols fixed at
/// compile time they must give the bits of the runtime-sized call (what test_shapes relies on).
template <int Rows, int Cols>
void row_kernels_fixed_same_bits(std::mt19937& rng) {
    constexpr int W = dmin::kernels::vfloat::size, Lq = (Rows + W - 1) / W * W;
    std::uniform_real_distribution<float> u(-3, 3);
    auto fill = [&](std::size_t n) {
        std::vector<float> v(n);
        for (auto& x : v) x = u(rng);
        return v;
    };
    INFO("rows=" << Rows << " cols=" << Cols);
    const int ld = Cols + 5;
    const auto X = fill(static_cast<std::size_t>(Rows * ld)), R = fill(X.size()), g = fill(Cols), b = fill(Cols);
    for (bool norm : {true, false}) {
        auto fixed = X, runtime = X;
        dmin::kernels::residual_layer_norm_rows<Rows, Cols>(fixed.data(), ld, R.data(), ld, Rows, Cols, norm ? g.data() : nullptr, b.data());
        dmin::kernels::residual_layer_norm_rows(runtime.data(), ld, R.data(), ld, Rows, Cols, norm ? g.data() : nullptr, b.data());
        REQUIRE(std::memcmp(fixed.data(), runtime.data(), fixed.size() * sizeof(float)) == 0);
    }
    const auto logits = fill(static_cast<std::size_t>(Rows * Lq));
    std::vector<float> pad(static_cast<std::size_t>(Rows));
    for (auto& p : pad) p = rng() % 3 == 0 ? 1.0f : 0.0f;
    for (auto how : {dmin::kernels::Blocked::plus_one, dmin::kernels::Blocked::excluded}) {
        const bool lower = how == dmin::kernels::Blocked::excluded;
        auto fixed = logits, runtime = logits;
        std::vector<float> inv_f(static_cast<std::size_t>(Lq)), inv_r(inv_f.size());
        dmin::kernels::softmax_columns<Rows, Lq>(fixed.data(), Rows, Lq, Lq, 0.25f, pad.data(), how, lower, inv_f.data());
        dmin::kernels::softmax_columns(runtime.data(), Rows, Lq, Lq, 0.25f, pad.data(), how, lower, inv_r.data());
        REQUIRE(std::memcmp(fixed.data(), runtime.data(), fixed.size() * sizeof(float)) == 0);
        REQUIRE(std::memcmp(inv_f.data(), inv_r.data(), inv_f.size() * sizeof(float)) == 0);
    }
    std::vector<float> tf(static_cast<std::size_t>(Cols * Lq), 7.0f), tr(tf);
    dmin::kernels::transpose_padded<Rows, Cols>(X.data(), ld, Rows, Cols, tf.data(), Lq);
    dmin::kernels::transpose_padded(X.data(), ld, Rows, Cols, tr.data(), Lq);
    REQUIRE(std::memcmp(tf.data(), tr.data(), tf.size() * sizeof(float)) == 0);
}
}  // namespace

TEST_CASE("row kernels with compile-time sizes have the bits of the runtime-sized call", "[kernels]") {
    // The refiner's and interest heads' (L, D) of the small, paper and large shapes and of test fixtures,
    // rows shorter than a vector (D = 8) and with a partial last vector.
    std::mt19937 rng(23);
    row_kernels_fixed_same_bits<5, 8>(rng);
    row_kernels_fixed_same_bits<50, 32>(rng);
    row_kernels_fixed_same_bits<100, 64>(rng);
    row_kernels_fixed_same_bits<20, 128>(rng);
    row_kernels_fixed_same_bits<7, 20>(rng);
}

TEST_CASE("transpose writes A^T and nothing else", "[kernels]") {
    std::mt19937 rng(19);
    std::uniform_real_distribution<float> u(-1, 1);
    for (int rows : {1, 5, 8, 16, 17, 32})
        for (int cols : {1, 8, 9, 16, 33}) {
            const int lda = cols + 2, ldb = rows + 3;
            std::vector<float> A(static_cast<std::size_t>(rows * lda)), B(static_cast<std::size_t>(cols * ldb + 16), 7.0f);
            for (auto& v : A) v = u(rng);
            dmin::kernels::transpose(A.data(), lda, rows, cols, B.data(), ldb);
            for (std::size_t x = 0; x < B.size(); ++x) {
                const int j = static_cast<int>(x) / ldb, i = static_cast<int>(x) % ldb;
                INFO("rows=" << rows << " cols=" << cols << " j=" << j << " i=" << i);
                const float want = j < cols && i < rows ? A[static_cast<std::size_t>(i * lda + j)] : 7.0f;
                REQUIRE(B[x] == want);
            }
        }
}

TEST_CASE("transpose_padded writes A^T with zero columns up to whole vectors", "[kernels]") {
    constexpr int W = dmin::kernels::vfloat::size;
    std::mt19937 rng(17);
    std::uniform_real_distribution<float> u(-1, 1);
    for (int rows : {1, 5, 16, 17, 50, 100})
        for (int cols : {1, 8, 16, 24, 32, 64}) {
            const int lda = 3 * cols + 1, padded = (rows + W - 1) / W * W, ldb = padded + W;
            std::vector<float> A(static_cast<std::size_t>(rows * lda)), B(static_cast<std::size_t>(cols * ldb), 7.0f);
            for (auto& v : A) v = u(rng);
            dmin::kernels::transpose_padded(A.data(), lda, rows, cols, B.data(), ldb);
            for (int j = 0; j < cols; ++j)
                for (int i = 0; i < ldb; ++i) {
                    INFO("rows=" << rows << " cols=" << cols << " j=" << j << " i=" << i);
                    const float want = i < rows ? A[static_cast<std::size_t>(i * lda + j)] : (i < padded ? 0.0f : 7.0f);
                    REQUIRE(B[static_cast<std::size_t>(j * ldb + i)] == want);
                }
        }
}

TEST_CASE("relu maps NaN and -0 to +0", "[kernels]") {
    using V = dmin::kernels::vfloat;
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const float in[] = {nan, -0.0f, 0.0f, -1.0f, 2.5f, -inf, inf, 1e-40f, -1e-40f, -nan, 3.0f, -3.0f, 7.0f, -7.0f, 0.5f, -0.5f};
    for (int base = 0; base < 16; base += V::size) {
        float out[16] = {};
        relu(V::load(in + base)).store(out);
        for (int i = 0; i < V::size; ++i) {
            const float x = in[base + i];
            const float want = x > 0 ? x : 0.0f;  // the documented definition
            INFO("lane " << base + i << " x=" << x);
            REQUIRE(std::memcmp(&out[i], &want, sizeof(float)) == 0);
        }
    }
}

// The vector exp (softmaxes, Dice, Sigmoid): within 2 ulp of the correctly rounded value over the whole
// normal range, gradual underflow to +0, +inf past ln(FLT_MAX), NaN kept — at every SIMD width
// (cpp.no_avx512_kernels runs this on AVX2).
TEST_CASE("vector exp is within 2 ulp of exp and handles the edges", "[kernels]") {
    using V = dmin::kernels::vfloat;
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    std::vector<float> x;
    for (float v = -110.0f; v <= 95.0f; v += 0.0137f) x.push_back(v);
    for (float v : {0.0f, -0.0f, 1.0f, -1.0f, 88.72f, 88.73f, -87.33f, -103.9f, -104.0f, -1e9f, 1e9f, -inf, inf, nan,
                    1e-30f, -1e-30f, 0.34657359f, -0.34657359f})
        x.push_back(v);
    while (x.size() % 16) x.push_back(0.5f);
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size(); i += V::size) exp(V::load(x.data() + i)).store(y.data() + i);
    const float tiny = std::numeric_limits<float>::min();
    for (size_t i = 0; i < x.size(); ++i) {
        const double want = std::exp(static_cast<double>(x[i]));
        INFO("x=" << x[i] << " got " << y[i] << " want " << want);
        if (std::isnan(x[i])) REQUIRE(std::isnan(y[i]));
        else if (want > std::numeric_limits<float>::max()) REQUIRE(y[i] == inf);
        else if (want < tiny) REQUIRE(std::fabs(y[i] - want) <= 2 * std::numeric_limits<float>::denorm_min() + want * 2.5e-7);
        else REQUIRE(std::fabs(y[i] - want) <= 2.4e-7 * want);  // 2 ulp
    }
    REQUIRE(y[x.size() - 1] == std::exp(0.5f));  // padding lanes; exp(0) below
    float one[V::size];
    exp(V(0.0f)).store(one);
    REQUIRE(one[0] == 1.0f);
}

TEST_CASE("partial vector loads and stores touch only the first n elements", "[kernels]") {
    using V = dmin::kernels::vfloat;
    for (int n = 0; n < V::size; ++n) {
        std::vector<float> src(V::size), dst(V::size, -7.0f), lanes(V::size);
        for (int i = 0; i < V::size; ++i) src[static_cast<size_t>(i)] = static_cast<float>(i + 1);
        const V v = V::load_first(src.data(), n, 42.0f);
        v.store(lanes.data());
        v.store_first(dst.data(), n);
        for (int i = 0; i < V::size; ++i) {
            INFO("n=" << n << " lane " << i);
            REQUIRE(lanes[static_cast<size_t>(i)] == (i < n ? static_cast<float>(i + 1) : 42.0f));
            REQUIRE(dst[static_cast<size_t>(i)] == (i < n ? static_cast<float>(i + 1) : -7.0f));
        }
    }
}

TEST_CASE("copy_floats copies n floats and writes nothing else", "[kernels]") {
    // Every length up to three vectors and a bit, from and to unaligned addresses; NaN and -0 copied as they are.
    constexpr int W = dmin::kernels::vfloat::size;
    for (int off = 0; off < 3; ++off)
        for (int n = 0; n <= 3 * W + 3; ++n) {
            std::vector<float> src(static_cast<std::size_t>(n + 8)), dst(static_cast<std::size_t>(n + 8), 7.0f);
            for (int i = 0; i < n + 8; ++i) src[static_cast<std::size_t>(i)] = static_cast<float>(i + 1);
            if (n > 1) src[static_cast<std::size_t>(off + n - 1)] = std::numeric_limits<float>::quiet_NaN();
            if (n > 2) src[static_cast<std::size_t>(off)] = -0.0f;
            dmin::kernels::copy_floats(src.data() + off, n, dst.data() + 1);
            for (int i = 0; i < n + 8; ++i) {
                INFO("offset " << off << " n=" << n << " i=" << i);
                const float got = dst[static_cast<std::size_t>(i)];
                if (i < 1 || i > n) {
                    REQUIRE(got == 7.0f);
                } else {
                    const float want = src[static_cast<std::size_t>(off + i - 1)];
                    REQUIRE(std::memcmp(&got, &want, sizeof got) == 0);
                }
            }
        }
}

// A candidate's score must not depend on the batch it is scored in: each C element is one FMA chain
// in k order whatever M, the column chunking or the loop order, so a row computed alone has the bits
// it has inside a larger product.
TEST_CASE("a gemm row has the same bits alone and inside a larger product", "[kernels]") {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1, 1);
    for (int N : {16, 40, 80, 100, 300, 1024})
        for (int K : {8, 80, 333}) {
            const int M = 37;
            std::vector<float> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(K * N + 32)), bias(static_cast<size_t>(N + 32));
            for (auto& v : A) v = u(rng);
            for (auto& v : B) v = u(rng);
            for (auto& v : bias) v = u(rng);
            std::vector<float> all(static_cast<size_t>(M * N)), one(static_cast<size_t>(N));
            dmin::kernels::gemm(M, N, K, A.data(), K, B.data(), N, all.data(), N, bias.data(), Init::bias, Epilogue::relu);
            for (int r = 0; r < M; ++r) {
                dmin::kernels::gemm(1, N, K, A.data() + r * K, K, B.data(), N, one.data(), N, bias.data(), Init::bias, Epilogue::relu);
                INFO("N=" << N << " K=" << K << " row " << r);
                REQUIRE(std::memcmp(one.data(), all.data() + r * N, sizeof(float) * static_cast<size_t>(N)) == 0);
            }
        }
}

TEST_CASE("a Linear in column panels has the bits of the row-major one, whole and by input slices", "[kernels]") {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-1, 1);
    for (int out : {16, 64, 65, 72, 136, 200})  // <= one panel (layout unchanged), whole panels, ragged last panels
        for (int in : {1, 9, 37})
            for (int panel : {16, 64}) {
                const std::size_t nw = static_cast<std::size_t>(in * out);
                std::vector<float> w(nw + 32), bias(static_cast<std::size_t>(out + 32));  // 32: read slack
                for (auto& v : w) v = u(rng);
                for (auto& v : bias) v = u(rng);
                std::vector<float> packed(w);
                const dmin::nn::Linear rowmajor{in, out, w.data(), bias.data()};
                dmin::nn::Linear panels{in, out, packed.data(), bias.data()};
                dmin::nn::pack_panels(panels, packed.data(), panel);
                REQUIRE(panels.panel == (out > panel ? panel : 0));
                for (int k = 0; k < in; ++k)
                    for (int j = 0; j < out; ++j) REQUIRE(panels.at(k, j) == rowmajor.at(k, j));
                for (int M : {1, 2, 5, 6, 32, 33}) {
                    const int ldx = in + 3, ldy = out + 5;
                    std::vector<float> X(static_cast<std::size_t>(M * ldx)), Y0(static_cast<std::size_t>(M * ldy));
                    for (auto& v : X) v = u(rng);
                    for (auto& v : Y0) v = u(rng);
                    std::vector<float> Y1(Y0);
                    INFO("out=" << out << " in=" << in << " panel=" << panel << " M=" << M);
                    rowmajor.forward(M, X.data(), ldx, Y0.data(), ldy, Epilogue::relu);
                    panels.forward(M, X.data(), ldx, Y1.data(), ldy, Epilogue::relu);
                    REQUIRE(std::memcmp(Y0.data(), Y1.data(), sizeof(float) * Y0.size()) == 0);
                    const int k0 = in / 3, k1 = in - in / 4;  // a slice of the input, accumulated onto Y
                    rowmajor.product(M, X.data() + k0, ldx, k0, k1, Y0.data(), ldy, nullptr, Init::accumulate);
                    panels.product(M, X.data() + k0, ldx, k0, k1, Y1.data(), ldy, nullptr, Init::accumulate);
                    REQUIRE(std::memcmp(Y0.data(), Y1.data(), sizeof(float) * Y0.size()) == 0);
                    // and the row-major result is gemm on W^T itself
                    std::vector<float> R(static_cast<std::size_t>(M * ldy), 0.0f);
                    dmin::kernels::gemm(M, out, in, X.data(), ldx, w.data(), out, R.data(), ldy, bias.data(), Init::bias);
                    rowmajor.forward(M, X.data(), ldx, Y0.data(), ldy);
                    for (int r = 0; r < M; ++r) REQUIRE(std::memcmp(R.data() + r * ldy, Y0.data() + r * ldy, sizeof(float) * static_cast<std::size_t>(out)) == 0);
                }
            }
}

/// A layer whose widths a fixed shape gives (Out, In, and the panel width it was packed with): the
/// products with those constants, whole and by input slices, have the runtime-sized layer's bits, for
/// any row count and with the row count fixed too.
template <int Out, int In, int Panel>
void fixed_linear_same_bits(std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> w(static_cast<std::size_t>(In * Out) + 32), bias(static_cast<std::size_t>(Out + 32));
    for (auto& v : w) v = u(rng);
    for (auto& v : bias) v = u(rng);
    dmin::nn::Linear lin{In, Out, w.data(), bias.data()};
    dmin::nn::pack_panels(lin, w.data(), Panel);
    for (int M : {1, 5, 32, 33}) {
        const int ldx = In + 3, ldy = Out + 5, k0 = In / 3;
        std::vector<float> X(static_cast<std::size_t>(M * ldx)), Y0(static_cast<std::size_t>(M * ldy));
        for (auto& v : X) v = u(rng);
        for (auto& v : Y0) v = u(rng);
        auto Y1 = Y0, Y2 = Y0;
        INFO("out=" << Out << " in=" << In << " panel=" << Panel << " M=" << M);
        lin.forward(M, X.data(), ldx, Y0.data(), ldy, Epilogue::relu);
        lin.forward<dmin::Dynamic, In, Out, Panel>(M, X.data(), ldx, Y1.data(), ldy, Epilogue::relu);
        REQUIRE(std::memcmp(Y0.data(), Y1.data(), sizeof(float) * Y0.size()) == 0);
        if (M == 32) {
            lin.forward<32, In, Out, Panel>(M, X.data(), ldx, Y2.data(), ldy, Epilogue::relu);
            REQUIRE(std::memcmp(Y0.data(), Y2.data(), sizeof(float) * Y0.size()) == 0);
        }
        lin.product(M, X.data() + k0, ldx, k0, In, Y0.data(), ldy, nullptr, Init::accumulate);
        lin.product<dmin::Dynamic, dmin::Dynamic, Out, Panel>(M, X.data() + k0, ldx, k0, In, Y1.data(), ldy, nullptr, Init::accumulate);
        REQUIRE(std::memcmp(Y0.data(), Y1.data(), sizeof(float) * Y0.size()) == 0);
        std::vector<float> p0(static_cast<std::size_t>(M)), p1(static_cast<std::size_t>(M)), q0(p0), q1(p0);
        dmin::kernels::project_rows(X.data(), M, In, ldx, w.data(), 0.5f, p0.data());
        dmin::kernels::project_rows<In>(X.data(), M, In, ldx, w.data(), 0.5f, p1.data());
        dmin::kernels::project_rows_ordered(X.data(), M, In, ldx, w.data(), 0.5f, q0.data());
        dmin::kernels::project_rows_ordered<In>(X.data(), M, In, ldx, w.data(), 0.5f, q1.data());
        REQUIRE(std::memcmp(p0.data(), p1.data(), sizeof(float) * p0.size()) == 0);
        REQUIRE(std::memcmp(q0.data(), q1.data(), sizeof(float) * q0.size()) == 0);
    }
}

TEST_CASE("a Linear with compile-time widths has the bits of the runtime-sized one, panels included", "[kernels]") {
    std::mt19937 rng(12);
    fixed_linear_same_bits<40, 80, 0>(rng);    // the paper shape's attention MLP, row-major
    fixed_linear_same_bits<80, 200, 64>(rng);  // the paper DNN's second layer: 64 + 16 columns
    fixed_linear_same_bits<64, 37, 64>(rng);   // one whole panel (left row-major)
    fixed_linear_same_bits<200, 9, 64>(rng);   // three whole panels and a ragged one
    fixed_linear_same_bits<16, 5, 0>(rng);
}

TEST_CASE("vfloat::transpose transposes a size x size block", "[kernels]") {
    using V = dmin::kernels::vfloat;
    constexpr int W = V::size;
    std::vector<float> m(static_cast<size_t>(W * W)), t(static_cast<size_t>(W * W));
    for (int i = 0; i < W * W; ++i) m[static_cast<size_t>(i)] = static_cast<float>(i) - 0.5f;
    V r[W];
    for (int i = 0; i < W; ++i) r[i] = V::load(m.data() + i * W);
    V::transpose(r);
    for (int i = 0; i < W; ++i) r[i].store(t.data() + i * W);
    for (int i = 0; i < W; ++i)
        for (int j = 0; j < W; ++j) {
            INFO("row " << i << " column " << j);
            REQUIRE(t[static_cast<size_t>(i * W + j)] == m[static_cast<size_t>(j * W + i)]);
        }
}

// The one-candidate path projects its rows with project_rows_ordered; the lane layout with gemm_tn of
// one output row over feature-major columns. Both must give the same bits.
TEST_CASE("project_rows_ordered equals a one-row gemm_tn bit for bit", "[kernels]") {
    std::mt19937 rng(6);
    std::uniform_real_distribution<float> u(-2, 2);
    for (int rows : {1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 19, 21, 22, 50, 100})  // last blocks of < W/2 rows: scalar chains
        for (int n : {1, 40, 64, 65, 130}) {
            const int ld = n + 3;
            std::vector<float> X(static_cast<size_t>(rows * ld)), w(static_cast<size_t>(n)), Xt(static_cast<size_t>(n * rows + 32));
            for (auto& v : X) v = u(rng);
            for (auto& v : w) v = u(rng);
            for (int r = 0; r < rows; ++r)
                for (int k = 0; k < n; ++k) Xt[static_cast<size_t>(k * rows + r)] = X[static_cast<size_t>(r * ld + k)];
            const float b = 0.25f;
            std::vector<float> got(static_cast<size_t>(rows)), want(static_cast<size_t>(rows) + 32);
            dmin::kernels::project_rows_ordered(X.data(), rows, n, ld, w.data(), b, got.data());
            dmin::kernels::gemm_tn(1, rows, n, w.data(), 1, Xt.data(), rows, want.data(), rows, &b, Init::row_bias);
            INFO("rows=" << rows << " n=" << n);
            REQUIRE(std::memcmp(got.data(), want.data(), sizeof(float) * static_cast<size_t>(rows)) == 0);
        }
}

// ---- bf16 products (kernels/bf16.hpp) ----------------------------------------------------------

TEST_CASE("to_bf16 rounds to nearest even and keeps NaN and infinity", "[kernels][bf16]") {
    using dmin::kernels::from_bf16;
    using dmin::kernels::to_bf16;
    auto bits = [](std::uint32_t u) { float x; std::memcpy(&x, &u, 4); return x; };
    REQUIRE(to_bf16(1.0f) == 0x3F80);
    REQUIRE(to_bf16(bits(0x3F808000u)) == 0x3F80);  // tie, even below: down
    REQUIRE(to_bf16(bits(0x3F818000u)) == 0x3F82);  // tie, odd below: up
    REQUIRE(to_bf16(bits(0x3F808001u)) == 0x3F81);  // above the tie: up
    REQUIRE(to_bf16(-2.5f) == 0xC020);
    REQUIRE(to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
    REQUIRE(to_bf16(-std::numeric_limits<float>::infinity()) == 0xFF80);
    REQUIRE(to_bf16(std::numeric_limits<float>::max()) == 0x7F80);  // rounds past the largest bf16
    REQUIRE(std::isnan(from_bf16(to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    REQUIRE(std::isnan(from_bf16(to_bf16(bits(0x7F800001u)))));  // a NaN whose payload would round to inf
    REQUIRE(std::isnan(from_bf16(to_bf16(bits(0xFFFFFFFFu)))));
    for (float x : {0.0f, -0.0f, 3.140625f, 1e-40f, -7.5e30f}) REQUIRE(from_bf16(to_bf16(from_bf16(to_bf16(x)))) == from_bf16(to_bf16(x)));
}

namespace {
/// Random floats in [-1, 1) with their bf16 pair packings in both layouts: rows [M][Kp] and units [Kp][N].
struct Bf16Operands {
    int M, N, K, Kp;
    std::vector<float> a, b;  // A [M×K], B [K×N], row-major
    dmin::AlignedBuffer ap, bp;  // A's pair rows (ld Kp + 1), B's pair rows (ld N + 3)
    Bf16Operands(int m, int n, int k, std::mt19937& rng)
        : M(m), N(n), K(k), Kp(dmin::kernels::bf16_pairs(k)), a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n)),
          ap(static_cast<size_t>(m * (Kp + 1) + 32)), bp(static_cast<size_t>(Kp * (n + 3) + 32)) {
        std::uniform_real_distribution<float> u(-1, 1);
        for (auto& x : a) x = u(rng);
        for (auto& x : b) x = u(rng);
        dmin::kernels::pack_bf16_rows(a.data(), M, K, K, rows(ap), Kp + 1);
        dmin::kernels::pack_bf16_units(b.data(), K, N, N, rows(bp), N + 3);
    }
    static std::uint32_t* rows(dmin::AlignedBuffer& x) { return reinterpret_cast<std::uint32_t*>(x.data()); }
    /// The double-precision product of the bf16-rounded operands plus init (gemm_reference's Init rules).
    double want(int i, int j, double init) const {
        double s = init;
        for (int k = 0; k < K; ++k)
            s += static_cast<double>(dmin::kernels::round_bf16(a[static_cast<size_t>(i * K + k)])) *
                 dmin::kernels::round_bf16(b[static_cast<size_t>(k * N + j)]);
        return s;
    }
};
}  // namespace

TEST_CASE("gemm_bf16 matches a double reference on the bf16-rounded operands on every tail shape", "[kernels][bf16]") {
    std::mt19937 rng(21);
    std::uniform_real_distribution<float> u(-1, 1);
    for (int M : {1, 2, 3, 5, 7, 12, 13, 32, 50})
        for (int N : {1, 3, 16, 17, 40, 64, 65, 80, 100, 144})
            for (int K : {1, 2, 7, 32, 65})
                for (Init init : {Init::zero, Init::bias, Init::accumulate, Init::row_bias})
                    for (Epilogue ep : {Epilogue::none, Epilogue::relu}) {
                        Bf16Operands o(M, N, K, rng);
                        const int ldc = N + 5;
                        std::vector<float> bias(static_cast<size_t>(std::max(M, N) + 32)), C(static_cast<size_t>(M * ldc + 32));
                        for (auto& x : bias) x = u(rng);
                        for (auto& x : C) x = u(rng);
                        const std::vector<float> C0 = C;
                        dmin::kernels::gemm_bf16(M, N, o.Kp, Bf16Operands::rows(o.ap), o.Kp + 1, Bf16Operands::rows(o.bp), N + 3, C.data(), ldc,
                                                 bias.data(), init, ep);
                        for (int i = 0; i < M; ++i)
                            for (int j = 0; j < ldc; ++j) {
                                const size_t at = static_cast<size_t>(i * ldc + j);
                                INFO("M=" << M << " N=" << N << " K=" << K << " init=" << int(init) << " i=" << i << " j=" << j);
                                if (j >= N) {
                                    REQUIRE(C[at] == C0[at]);
                                    continue;
                                }
                                double s0 = init == Init::accumulate ? C0[at] : init == Init::bias ? bias[static_cast<size_t>(j)]
                                                                                : init == Init::row_bias ? bias[static_cast<size_t>(i)] : 0.0;
                                double w = o.want(i, j, s0);
                                if (ep == Epilogue::relu && w < 0) w = 0;
                                REQUIRE(std::fabs(C[at] - w) <= 1e-6 * (1 + K));
                            }
                    }
}

TEST_CASE("gemm_bf16 row-major and feature-major give the same bits, whatever the batch", "[kernels][bf16]") {
    // The one-candidate path multiplies activation rows by weights packed along k (rows × W^T); the lane
    // path multiplies weights packed by output unit by activation columns (W × X^T). Same pairs, same
    // order: C and C^T must agree bit for bit, and a row alone must equal that row inside a larger product.
    std::mt19937 rng(5);
    for (int M : {1, 5, 16, 80})
        for (int N : {16, 40, 64, 80})
            for (int K : {7, 16, 33}) {
                Bf16Operands o(M, N, K, rng);  // A: activations [M×K], B: weights W^T [K×N]
                const int Kp = o.Kp;
                std::vector<float> wt(static_cast<size_t>(N * K)), at(static_cast<size_t>(K * M));  // W [N×K], A^T [K×M]
                for (int k = 0; k < K; ++k) {
                    for (int j = 0; j < N; ++j) wt[static_cast<size_t>(j * K + k)] = o.b[static_cast<size_t>(k * N + j)];
                    for (int i = 0; i < M; ++i) at[static_cast<size_t>(k * M + i)] = o.a[static_cast<size_t>(i * K + k)];
                }
                dmin::AlignedBuffer wp(static_cast<size_t>(N * Kp + 32)), xp(static_cast<size_t>(Kp * M + 32));
                dmin::kernels::pack_bf16_rows(wt.data(), N, K, K, Bf16Operands::rows(wp), Kp);
                dmin::kernels::pack_bf16_units(at.data(), K, M, M, Bf16Operands::rows(xp), M);
                std::vector<float> C(static_cast<size_t>(M * N + 32)), Ct(static_cast<size_t>(N * M + 32)), one(static_cast<size_t>(N + 32));
                dmin::kernels::gemm_bf16(M, N, Kp, Bf16Operands::rows(o.ap), Kp + 1, Bf16Operands::rows(o.bp), N + 3, C.data(), N);
                dmin::kernels::gemm_bf16(N, M, Kp, Bf16Operands::rows(wp), Kp, Bf16Operands::rows(xp), M, Ct.data(), M);
                for (int i = 0; i < M; ++i) {
                    dmin::kernels::gemm_bf16(1, N, Kp, Bf16Operands::rows(o.ap) + i * (Kp + 1), Kp + 1, Bf16Operands::rows(o.bp), N + 3,
                                             one.data(), N);
                    for (int j = 0; j < N; ++j) {
                        INFO("M=" << M << " N=" << N << " K=" << K << " i=" << i << " j=" << j);
                        REQUIRE(C[static_cast<size_t>(i * N + j)] == Ct[static_cast<size_t>(j * M + i)]);
                        REQUIRE(C[static_cast<size_t>(i * N + j)] == one[static_cast<size_t>(j)]);
                    }
                }
            }
}

TEST_CASE("gemm_bf16 from an outer sum has the bits of writing the sum first and accumulating", "[kernels][bf16]") {
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> u(-1, 1);
    constexpr int period = 16;
    for (int M : {1, 6, 40, 80})
        for (int N : {16, 48, 80})
            for (int K : {5, 32}) {
                Bf16Operands o(M, N, K, rng);
                std::vector<float> uu(static_cast<size_t>(M * period + 32)), ww(static_cast<size_t>((N / period) * M + 32));
                for (auto& x : uu) x = u(rng);
                for (auto& x : ww) x = u(rng);
                std::vector<float> C(static_cast<size_t>(M * N + 32)), R(static_cast<size_t>(M * N + 32));
                for (int r = 0; r < M; ++r)
                    for (int j = 0; j < N; ++j)
                        R[static_cast<size_t>(r * N + j)] = uu[static_cast<size_t>(r * period + j % period)] + ww[static_cast<size_t>((j / period) * M + r)];
                const dmin::kernels::OuterSum s{uu.data(), period, ww.data(), M, period};
                dmin::kernels::gemm_bf16(M, N, o.Kp, Bf16Operands::rows(o.ap), o.Kp + 1, Bf16Operands::rows(o.bp), N + 3, C.data(), N, s,
                                         Epilogue::relu);
                dmin::kernels::gemm_bf16(M, N, o.Kp, Bf16Operands::rows(o.ap), o.Kp + 1, Bf16Operands::rows(o.bp), N + 3, R.data(), N,
                                         nullptr, Init::accumulate, Epilogue::relu);
                for (int i = 0; i < M * N; ++i) REQUIRE(C[static_cast<size_t>(i)] == R[static_cast<size_t>(i)]);
            }
}
