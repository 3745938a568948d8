// dmin/nn/mlp.hpp — Linear layers (weights stored transposed, BatchNorm folded) and FuxiCTR MLP_Block stacks.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "dmin/act.hpp"
#include "dmin/aligned.hpp"
#include "dmin/kernels/bf16.hpp"
#include "dmin/kernels/gemm.hpp"
#include "dmin/kernels/isa.hpp"
#include "dmin/kernels/rowops.hpp"

namespace dmin::nn {
DMIN_ISA_NAMESPACE_BEGIN

/// y = x·W^T + b with W^T stored row-major as [in, out] (`wt`), so a batch of rows is one gemm; or,
/// when `panel` is set (the DNN's layers, Model::kDnnPanel), W^T in column panels: panel p holds
/// columns [p·panel, p·panel + w_p) of every row as one row-major [in × w_p] block (w_p = panel, or
/// what is left for the last one). A layer of a few hundred outputs then streams its weights
/// sequentially: row-major, each K step of a 64-column register tile is a 256-byte piece of a new
/// 2–4 KB row, and from L3 that was slower (benchmarks/RESULTS.md §7, "panels"). The layout does not change a
/// result bit: every output is still one FMA chain in k order (kernels::gemm).
struct Linear {
    int in = 0, out = 0;
    const float* wt = nullptr;  ///< [in, out] or panels (above)
    const float* b = nullptr;   ///< [out] or null
    int panel = 0;        ///< 0: wt is [in, out] row-major; else the column-panel width
    /// bf16 precision (dmin::Precision::bf16) only, null otherwise. wp: rows [0, wp_in) of W^T as bf16
    /// pairs along k, in wt's panel layout with Kp = bf16_pairs(wp_in) pair rows per panel (the
    /// row-major products); wpa: W as pair rows [out][bf16_pairs(in)] (the feature-major products).
    const std::uint32_t* wp = nullptr;
    const std::uint32_t* wpa = nullptr;
    int wp_in = 0;

    /// Y[rows×out] = X[rows×in]·W^T + b (then the epilogue). Rows, In, Out: the sizes when fixed at compile
    /// time (a fixed shape's layers), which reach the kernel as constants; Panel: the column-panel width W^T
    /// was packed with (0: row-major), so that a fixed Out also fixes every panel's width.
    template <int Rows = Dynamic, int In = Dynamic, int Out = Dynamic, int Panel = 0>
    void forward(int rows, const float* X, int ldx, float* Y, int ldy, kernels::Epilogue ep = kernels::Epilogue::none) const {
        product<Rows, In, Out, Panel>(rows, X, ldx, 0, in, Y, ldy, b, b ? kernels::Init::bias : kernels::Init::zero, ep);
    }

    /// Y[rows×out] = X[rows × (k1−k0)]·(rows k0..k1 of W^T) + init (kernels::gemm's Init: bias[out] for
    /// Init::bias, or Y itself): a product with one slice of the input, as the scorer's request and
    /// candidate parts of the first DNN layer are. Rows, K (= k1 − k0), Out, Panel: as for forward().
    template <int Rows = Dynamic, int K = Dynamic, int Out = Dynamic, int Panel = 0>
    void product(int rows, const float* X, int ldx, int k0, int k1, float* Y, int ldy, const float* bias, kernels::Init init,
                 kernels::Epilogue ep = kernels::Epilogue::none) const {
        if constexpr (Out == Dynamic) {
            const int pw = panel > 0 ? panel : out;
            for (int j0 = 0; j0 < out; j0 += pw) {
                const int w = std::min(pw, out - j0);  // this panel's width (= its row length)
                const float* B = wt + static_cast<std::ptrdiff_t>(j0) * in + static_cast<std::ptrdiff_t>(k0) * w;
                kernels::gemm<Rows, Dynamic, K>(rows, w, k1 - k0, X, ldx, B, w, Y + j0, ldy, bias ? bias + j0 : nullptr, init, ep);
            }
        } else {
            constexpr int pw = Panel == 0 || Out <= Panel ? Out : Panel;  // pack_panels leaves out <= p row-major
            assert(out == Out && panel == (pw == Out ? 0 : Panel));
            fixed_panels<Rows, K, Out, pw>(std::make_index_sequence<(Out + pw - 1) / pw>{}, rows, X, ldx, k0, k1, Y, ldy, bias, init, ep);
        }
    }

    /// product() on bf16 pair rows Xp[rows × bf16_pairs(wp_in)] (kernels::pack_bf16_rows, ld ldxp) with
    /// the packed rows [0, wp_in) of W^T.
    void product_bf16(int rows, const std::uint32_t* Xp, int ldxp, float* Y, int ldy, const float* bias, kernels::Init init,
                      kernels::Epilogue ep = kernels::Epilogue::none) const {
        const int pw = panel > 0 ? panel : out, kp = kernels::bf16_pairs(wp_in);
        for (int j0 = 0; j0 < out; j0 += pw) {
            const int w = std::min(pw, out - j0);
            kernels::gemm_bf16(rows, w, kp, Xp, ldxp, wp + static_cast<std::ptrdiff_t>(j0) * kp, w, Y + j0, ldy, bias ? bias + j0 : nullptr,
                               init, ep);
        }
    }

    /// W^T[k][j] in either layout (tests, load-time transformations).
    std::ptrdiff_t index(int k, int j) const {
        if (panel <= 0) return static_cast<std::ptrdiff_t>(k) * out + j;
        const int j0 = j / panel * panel, w = std::min(panel, out - j0);
        return static_cast<std::ptrdiff_t>(j0) * in + static_cast<std::ptrdiff_t>(k) * w + (j - j0);
    }
    float at(int k, int j) const { return wt[index(k, j)]; }

private:
    /// product() with Out fixed: panel P is columns [P·PW, P·PW + w) with w known when compiling.
    template <int Rows, int K, int Out, int PW, std::size_t... P>
    void fixed_panels(std::index_sequence<P...>, int rows, const float* X, int ldx, int k0, int k1, float* Y, int ldy,
                      const float* bias, kernels::Init init, kernels::Epilogue ep) const {
        auto one = [&](auto j0_tag) {
            constexpr int j0 = decltype(j0_tag)::value, w = std::min(PW, Out - j0);
            const float* B = wt + static_cast<std::ptrdiff_t>(j0) * in + static_cast<std::ptrdiff_t>(k0) * w;
            kernels::gemm<Rows, w, K>(rows, w, k1 - k0, X, ldx, B, w, Y + j0, ldy, bias ? bias + j0 : nullptr, init, ep);
        };
        (one(std::integral_constant<int, static_cast<int>(P) * PW>{}), ...);
    }
};

/// Rearranges the row-major W^T of `lin` into column panels of width p (a no-op when out <= p).
/// `storage` is the writable memory lin.wt views: the model's weights are only written while it loads.
inline void pack_panels(Linear& lin, float* storage, int p) {
    assert(storage == lin.wt);
    if (lin.panel != 0 || p <= 0 || lin.out <= p) return;
    std::vector<float> tmp(storage, storage + static_cast<std::ptrdiff_t>(lin.in) * lin.out);
    lin.panel = p;
    for (int k = 0; k < lin.in; ++k)
        for (int j = 0; j < lin.out; ++j)
            storage[lin.index(k, j)] = tmp[static_cast<std::size_t>(k) * static_cast<std::size_t>(lin.out) + static_cast<std::size_t>(j)];
}

/// bf16 precision: packs the rows [0, k1) of lin's W^T for product_bf16 (and, when `units`, all of W for
/// the feature-major products) into `store`. The float32 weights stay: the user phase and the reference
/// path use them.
inline void pack_bf16(Linear& lin, int k1, bool units, WordStore& store) {
    const int pw = lin.panel > 0 ? lin.panel : lin.out, kp = kernels::bf16_pairs(k1);
    auto at = [&](int k, int j) { return k < k1 ? lin.at(k, j) : 0.0f; };
    std::uint32_t* p = store.take(static_cast<std::size_t>(kp) * static_cast<std::size_t>(lin.out));
    for (int j0 = 0; j0 < lin.out; j0 += pw) {
        const int w = std::min(pw, lin.out - j0);
        for (int q = 0; q < kp; ++q)
            for (int j = 0; j < w; ++j)
                p[static_cast<std::ptrdiff_t>(j0) * kp + static_cast<std::ptrdiff_t>(q) * w + j] = kernels::bf16_pair(at(2 * q, j0 + j), at(2 * q + 1, j0 + j));
    }
    lin.wp = p;
    lin.wp_in = k1;
    if (!units) return;
    const int kpa = kernels::bf16_pairs(lin.in);
    std::uint32_t* a = store.take(static_cast<std::size_t>(kpa) * static_cast<std::size_t>(lin.out));
    for (int j = 0; j < lin.out; ++j)
        for (int q = 0; q < kpa; ++q)
            a[static_cast<std::ptrdiff_t>(j) * kpa + q] = kernels::bf16_pair(lin.at(2 * q, j), 2 * q + 1 < lin.in ? lin.at(2 * q + 1, j) : 0.0f);
    lin.wpa = a;
}

/// One hidden layer of an MLP_Block: Linear (BatchNorm folded in) then an activation.
struct Hidden {
    Linear lin;
    Act act = Act::none;
    ActParams params;

    /// The activation fused into the gemm when it is ReLU (no second pass over the rows).
    kernels::Epilogue epilogue() const { return act == Act::relu ? kernels::Epilogue::relu : kernels::Epilogue::none; }
    /// Activation of rows already produced with epilogue() (a no-op when it was fused).
    void finish(int rows, float* Y, int ldy) const {
        if (act != Act::relu) kernels::activate_rows(act, params, Y, rows, lin.out, ldy);
    }
    /// finish() for feature-major activations (rows = units, `cols` columns).
    void finish_units(int cols, float* Y, int ldy) const {
        if (act != Act::relu) kernels::activate_units(act, params, Y, lin.out, cols, ldy);
    }
    /// Feature-major forward: Y[out×cols] = act(W·X + b) for X[in×cols]. With `xp` (scratch of
    /// bf16_pairs(in) × ldx words) and packed weights (bf16 precision), X enters the product as bf16 pairs.
    /// Out: the output width when fixed at compile time (the product's rows; the columns and K stay
    /// runtime: see TargetAttention::lane_chunk), and the bf16 product stays runtime-sized.
    template <int Out = Dynamic>
    void forward_units(int cols, const float* X, int ldx, float* Y, int ldy, std::uint32_t* xp = nullptr) const {
        assert(lin.panel == 0);  // feature-major layers keep W^T row-major
        if (xp && lin.wpa) {
            const int kp = kernels::bf16_pairs(lin.in);
            kernels::pack_bf16_units(X, lin.in, cols, ldx, xp, ldx);
            kernels::gemm_bf16(lin.out, cols, kp, lin.wpa, kp, xp, ldx, Y, ldy, lin.b, kernels::Init::row_bias, epilogue());
        } else {
            kernels::gemm_tn<Out>(lin.out, cols, lin.in, lin.wt, lin.out, X, ldx, Y, ldy, lin.b, kernels::Init::row_bias, epilogue());
        }
        finish_units(cols, Y, ldy);
    }
    /// Y = act(X·W^T + b). With `xp` (scratch of rows × bf16_pairs(in) words) and packed weights (bf16
    /// precision), X enters the product as bf16 pairs. Rows, In, Out, Panel: as for Linear::forward.
    template <int Rows = Dynamic, int In = Dynamic, int Out = Dynamic, int Panel = 0>
    void forward(int rows, const float* X, int ldx, float* Y, int ldy, std::uint32_t* xp = nullptr) const {
        if (xp && lin.wp) {
            const int kp = kernels::bf16_pairs(lin.in);
            kernels::pack_bf16_rows(X, rows, lin.in, ldx, xp, kp);
            lin.product_bf16(rows, xp, kp, Y, ldy, lin.b, lin.b ? kernels::Init::bias : kernels::Init::zero, epilogue());
        } else {
            lin.forward<Rows, In, Out, Panel>(rows, X, ldx, Y, ldy, epilogue());
        }
        finish(rows, Y, ldy);
    }
};

namespace detail {
template <class U, std::size_t From, class F, std::size_t... I>
void for_each_fixed_hidden(F& f, std::index_sequence<I...>) {
    (f(From + I, std::integral_constant<int, U::template at<From + I - 1>()>{}, std::integral_constant<int, U::template at<From + I>()>{}),
     ...);
}
}  // namespace detail

/// Calls f(k, in, out) for the hidden layers k = From, From + 1, … of an MLP whose hidden widths are U
/// (Units<...>, or DynamicUnits). `in` and `out` are std::integral_constant<int, …>: the layer's widths
/// when U fixes them (layer k's input is layer k−1's output; From ≥ 1, since the MLP's own input width
/// is not among U's), Dynamic otherwise, so that a fixed shape's layers become constant-sized products
/// while the runtime-sized model runs the same code over the widths in its weights.
template <class U, std::size_t From, class F>
void for_each_hidden(std::size_t count, F&& f) {
    static_assert(From >= 1, "the MLP's input width is not in Units");
    if constexpr (U::fixed) {
        assert(count == static_cast<std::size_t>(U::count));
        if constexpr (From < static_cast<std::size_t>(U::count))
            detail::for_each_fixed_hidden<U, From>(f, std::make_index_sequence<static_cast<std::size_t>(U::count) - From>{});
    } else {
        for (std::size_t k = From; k < count; ++k) f(k, std::integral_constant<int, Dynamic>{}, std::integral_constant<int, Dynamic>{});
    }
}

/// The last hidden width of U (the one-unit head's input), Dynamic when U does not fix it.
template <class U>
constexpr int last_width() {
    if constexpr (U::fixed) return U::count > 0 ? U::template at<static_cast<std::size_t>(U::count) - 1>() : Dynamic;
    else return Dynamic;
}

/// FuxiCTR MLP_Block with one output unit: hidden layers, then Linear(last → 1). Output activation
/// (sigmoid / identity) is applied by the caller.
struct Mlp {
    std::vector<Hidden> hidden;
    Linear head;  ///< out == 1

    int max_width() const {
        int w = head.in;
        for (const auto& h : hidden) w = std::max({w, h.lin.in, h.lin.out});
        return w;
    }

    /// project_out with the rounding of the feature-major path (kernels::project_rows_ordered).
    template <int In = Dynamic>
    void project_out_ordered(int rows, const float* X, int ldx, float* out) const {
        kernels::project_rows_ordered<In>(X, rows, head.in, ldx, head.wt, head.b ? head.b[0] : 0.0f, out);
    }
    /// out[r] = X[r]·w + b for the final one-unit Linear; In: its input width when fixed at compile time.
    template <int In = Dynamic>
    void project_out(int rows, const float* X, int ldx, float* out) const {
        kernels::project_rows<In>(X, rows, head.in, ldx, head.wt, head.b ? head.b[0] : 0.0f, out);
    }
};

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::nn
