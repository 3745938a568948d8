// dmin/nn/views.hpp — compile-time-sized Eigen views of dmin's row-major buffers and Linear weights, and
// the reference forms of a Linear layer and of an MLP written as Eigen expressions over them, summed in
// double (the oracle paths: TargetAttention::reference, Dnn::reference).
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <utility>

#include "dmin/kernels/activation.hpp"
#include "dmin/kernels/isa.hpp"
#include "dmin/nn/mlp.hpp"
#include "dmin/shape.hpp"

namespace dmin::nn {
DMIN_ISA_NAMESPACE_BEGIN

// The strides of the views are types of this instruction set's namespace. Every Eigen template the
// views instantiate (evaluators, assignment loops, reductions) then carries that namespace in its
// name, so translation units built for different instruction sets never share an Eigen symbol
// (dmin/kernels/isa.hpp). For the same reason there are no Eigen products here (operator* runs GEMV/GEMM
// kernels instantiated on float alone: one symbol with several bodies) and no Eigen temporaries (see
// columns_reference): products are sums of scaled rows, written out.

/// Rows `ld` floats apart, elements contiguous.
struct RowStride : Eigen::OuterStride<> {
    explicit RowStride(Eigen::Index ld) : Eigen::OuterStride<>(ld) {}
};
/// A column of a row-major buffer: elements `ld` floats apart.
struct ColumnStride : Eigen::InnerStride<> {
    explicit ColumnStride(Eigen::Index ld) : Eigen::InnerStride<>(ld) {}
};

/// The Eigen type of an R × C block of a row-major buffer (a column vector when C == 1).
template <int R, int C, bool Column = (C == 1 && R != 1)>
struct ViewOf {
    using Matrix = Eigen::Matrix<float, R, C, Eigen::RowMajor>;
    using Stride = RowStride;
};
template <int R, int C>
struct ViewOf<R, C, true> {
    using Matrix = Eigen::Matrix<float, R, 1>;
    using Stride = ColumnStride;
};

/// R × C (either may be dmin::Dynamic) rows of a row-major buffer, `ld` floats apart.
template <int R, int C>
using View = Eigen::Map<typename ViewOf<R, C>::Matrix, Eigen::Unaligned, typename ViewOf<R, C>::Stride>;
template <int R, int C>
using ConstView = Eigen::Map<const typename ViewOf<R, C>::Matrix, Eigen::Unaligned, typename ViewOf<R, C>::Stride>;

template <int R, int C>
View<R, C> view(float* p, int rows, int cols, int ld) {
    return View<R, C>(p, rows, cols, typename ViewOf<R, C>::Stride(ld));
}
template <int R, int C>
ConstView<R, C> view(const float* p, int rows, int cols, int ld) {
    return ConstView<R, C>(p, rows, cols, typename ViewOf<R, C>::Stride(ld));
}

/// A row of C double sums over the scratch `p` (the reference paths' accumulator).
template <int C>
using SumRow = Eigen::Map<Eigen::Matrix<double, 1, C, Eigen::RowMajor>, Eigen::Unaligned, RowStride>;
template <int C>
SumRow<C> sums(double* p, int cols) {
    return SumRow<C>(p, 1, cols, RowStride(cols));
}

/// Y = X·Wb + b for one block Wb of W^T's columns (In × C, rows C apart; b: its C biases or null), each
/// output summed in double in k order and rounded once. Row by row through `acc` (C doubles), so no
/// Eigen temporary is ever allocated: an allocation would run Eigen's aligned_malloc, one function of
/// the same name in every instruction set's build but with different code (64-byte alignment by hand
/// where malloc's 16 bytes are not enough), which breaks a program linked from several (dispatch.hpp).
/// Double also makes the result independent of the order in which Eigen vectorises a fixed-size or a
/// Dynamic view: every sum is the same sequence of double operations.
template <int In, int C, class X, class Y>
void columns_reference(const X& x, const float* wb, int in, int cols, const float* b, Y&& y, double* acc) {
    const auto wt = view<In, C>(wb, in, cols, cols);
    auto s = sums<C>(acc, cols);
    for (Eigen::Index r = 0; r < x.rows(); ++r) {
        if (b) s = view<1, C>(b, 1, cols, cols).template cast<double>();
        else s.setZero();
        for (int k = 0; k < in; ++k) s += double{x(r, k)} * wt.row(k).template cast<double>();
        y.row(r) = s.template cast<float>();
    }
}

/// Y = X·W^T + b (Y: rows × lin.out, X: rows × lin.in), the reference form of Linear::forward. W^T is
/// seen as In × Out when it is row-major and panel by panel otherwise (Linear's panel layout).
template <int In, int Out, class X, class Y>
void linear_reference(const Linear& lin, const X& x, Y& y, double* acc) {
    if (lin.panel == 0) {
        columns_reference<In, Out>(x, lin.wt, lin.in, lin.out, lin.b, y, acc);
        return;
    }
    for (int j0 = 0; j0 < lin.out; j0 += lin.panel) {
        const int w = std::min(lin.panel, lin.out - j0);
        columns_reference<In, Dynamic>(x, lin.wt + static_cast<std::ptrdiff_t>(j0) * lin.in, lin.in, w, lin.b ? lin.b + j0 : nullptr,
                                       y.middleCols(j0, w), acc);
    }
}

/// act(X·W^T + b) of one hidden layer, row by row with the scalar activations (kernels::apply_act).
template <int In, int Out, class X, class Y>
void hidden_reference(const Hidden& h, const X& x, Y& y, double* acc) {
    linear_reference<In, Out>(h.lin, x, y, acc);
    for (Eigen::Index r = 0; r < y.rows(); ++r) kernels::apply_act(h.act, h.params, &y(r, 0), h.lin.out);
}

/// out[r] = X[r]·w + b for the MLP's one-unit head.
template <int R, int In, class X>
void head_reference(const Mlp& mlp, const X& x, float* out, double* acc) {
    columns_reference<In, 1>(x, mlp.head.wt, mlp.head.in, 1, mlp.head.b, view<R, 1>(out, static_cast<int>(x.rows()), 1, 1), acc);
}

/// The rest of an MLP from hidden layer `I` on, as Eigen expressions: rows of X (width In), hidden
/// layers ping-ponging between buf[0] and buf[1] (rows ld apart), then the one-unit head into out[r];
/// `acc`: scratch of max_width() doubles. With fixed widths (U = Units<...>) every layer is a
/// compile-time-sized view; otherwise Dynamic.
template <int R, class U, std::size_t I, int In, class X>
void mlp_reference_from(const Mlp& mlp, const X& x, float* const (&buf)[2], int ld, float* out, double* acc) {
    const int rows = static_cast<int>(x.rows());
    if constexpr (!U::fixed) {
        const float* cur = &x(0, 0);
        int ldc = static_cast<int>(x.outerStride());
        for (std::size_t i = I; i < mlp.hidden.size(); ++i) {
            const Hidden& h = mlp.hidden[i];
            auto y = view<R, Dynamic>(buf[i % 2], rows, h.lin.out, ld);
            hidden_reference<Dynamic, Dynamic>(h, view<R, Dynamic>(cur, rows, h.lin.in, ldc), y, acc);
            cur = buf[i % 2];
            ldc = ld;
        }
        head_reference<R, Dynamic>(mlp, view<R, Dynamic>(cur, rows, mlp.head.in, ldc), out, acc);
    } else if constexpr (I < static_cast<std::size_t>(U::count)) {
        constexpr int Out = U::template at<I>();
        const Hidden& h = mlp.hidden[I];
        auto y = view<R, Out>(buf[I % 2], rows, h.lin.out, ld);
        hidden_reference<In, Out>(h, x, y, acc);
        mlp_reference_from<R, U, I + 1, Out>(mlp, y, buf, ld, out, acc);
    } else {
        head_reference<R, In>(mlp, x, out, acc);
    }
}

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::nn
