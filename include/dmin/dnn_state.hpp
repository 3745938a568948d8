// dmin/dnn_state.hpp — the DNN's request state in a Scorer: its workspace, and, when the Shape fixes
// every size of it, the fixed-size scratch it lies in.
#pragma once

#include <cstddef>
#include <memory>

#include "dmin/aligned.hpp"
#include "dmin/layers/dnn.hpp"
#include "dmin/shape.hpp"

namespace dmin {
// In the instruction-set namespace, like the DnnWorkspace it extends.
DMIN_ISA_NAMESPACE_BEGIN

namespace scratch_detail {
/// Whether S fixes every size of the DNN's scratch: its input width X and its hidden widths.
template <class S>
constexpr bool fixes_dnn_scratch() {
    return S::X != Dynamic && S::dnn_units::fixed;
}

/// The DNN's sizes as S fixes them. The candidate part of the input is at most all of it (X): the
/// fixed scratch is sized for that bound, and the runtime carve into it uses the file's own split.
template <class S>
constexpr layers::DnnDims fixed_dnn_dims() {
    using U = typename S::dnn_units;
    layers::DnnDims d;
    d.in = S::X;
    d.first_out = U::count > 0 ? U::first : 1;
    d.widest = U::widest(S::X);
    d.candidate_width = S::X;
    return d;
}

/// Floats of the DNN's scratch when S fixes its sizes, measured by the compiler over the same carve.
template <class S>
constexpr std::size_t dnn_scratch_floats() {
    Arena measure;
    layers::DnnWorkspace ws{};
    ws.carve(measure, fixed_dnn_dims<S>());
    return measure.used();
}
}  // namespace scratch_detail

/// The DNN's request state in a Scorer. When the shape fixes every size of it, its scratch is one
/// fixed-size object on the heap (large: a block's layer outputs), allocated with the state and never
/// after; otherwise the buffers are carved from the scorer's one buffer.
template <class S, bool Fixed = scratch_detail::fixes_dnn_scratch<S>()>
struct DnnState : layers::DnnWorkspace {
    static constexpr bool owns_scratch = false;
};

template <class S>
struct DnnState<S, true> : layers::DnnWorkspace {
    static constexpr bool owns_scratch = true;
    static constexpr std::size_t kFloats = scratch_detail::dnn_scratch_floats<S>();
    float* scratch() { return mem_->data; }

private:
    std::unique_ptr<FixedScratch<kFloats>> mem_ = std::make_unique<FixedScratch<kFloats>>();
};

DMIN_ISA_NAMESPACE_END
}  // namespace dmin
