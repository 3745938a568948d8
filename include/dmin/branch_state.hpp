// dmin/branch_state.hpp — one behaviour branch's request state in a Scorer: where its activations and
// its layers' workspaces lie, and, when the Shape fixes every size of them, the fixed-size member they
// lie in.
#pragma once

#include <algorithm>
#include <cstddef>

#include "dmin/aligned.hpp"
#include "dmin/layers/self_attention.hpp"
#include "dmin/layers/target_attention.hpp"
#include "dmin/shape.hpp"

namespace dmin {
// In the instruction-set namespace although S is not: the layout (Lq, a whole number of vectors) and
// so kFloats depend on the vector width.
DMIN_ISA_NAMESPACE_BEGIN

/// One branch's activations and each layer's workspace: where they lie in the scratch.
template <class S>
struct BranchBuffers {
    float *s0, *r, *z, *sp;  ///< sequence embedding [L, D], refined [L, D], z [H][L][D], sum pool [D]
    typename layers::SelfAttention<S>::Workspace att;
    layers::BlockWorkspace block;  ///< the refiner's, then the interest heads' (one after the other)
    typename layers::TargetAttention<S>::Workspace target;

    /// `widest`: the widest layer of the branch's attention MLPs (its input, 4D, included).
    template <class A>
    constexpr void carve(A& a, const layers::BranchDims& d, int widest) {
        const auto L = static_cast<std::size_t>(d.L), D = static_cast<std::size_t>(d.D), H = static_cast<std::size_t>(d.H);
        s0 = a.take(L * D);
        r = a.take(L * D);
        z = a.take(H * L * D);
        sp = a.take(D);
        att.carve(a, d);
        block.carve(a, d);
        target.carve(a, d, widest);
    }
};

namespace scratch_detail {
/// Whether S fixes every size of a branch's scratch: D, L, H, P and the attention MLP's widths.
template <class S>
constexpr bool fixes_branch_scratch() {
    using U = typename S::attention_units;
    if constexpr (U::fixed) {
        return S::D != Dynamic && S::L != Dynamic && S::H != Dynamic && S::P != Dynamic && U::count > 0;
    } else {
        return false;
    }
}

/// A branch's sizes as S fixes them.
template <class S>
constexpr layers::BranchDims fixed_branch_dims() {
    layers::BranchDims d;
    d.L = S::L, d.D = S::D, d.H = S::H, d.hd = S::D / S::H, d.P = S::P, d.A1 = S::A1;
    return d;
}
/// The widest layer of branch b's attention MLPs, from its weights (the runtime fixed_attention_widest).
template <class B>
int attention_widest(const B& b) {
    int widest = 1;
    for (const auto& t : b.target) widest = std::max(widest, t.attn.max_width());
    return widest;
}

/// Floats of one branch's scratch when S fixes its sizes, measured by the compiler over the same carve.
template <class S>
constexpr std::size_t branch_scratch_floats() {
    Arena measure;
    BranchBuffers<S> b{};
    b.carve(measure, fixed_branch_dims<S>(), S::attention_units::widest(4 * S::D));  // as attention_widest
    return measure.used();
}
}  // namespace scratch_detail

/// One branch's request state in a Scorer. When the shape fixes every size of it, its scratch is a
/// fixed-size member (one aligned array whose size the compiler measured); otherwise the buffers are
/// carved from the scorer's one buffer. Scorer keeps its BranchStates in a vector sized once, before
/// carving, so they never move after their pointers are set.
template <class S, bool Fixed = scratch_detail::fixes_branch_scratch<S>()>
struct BranchState : BranchBuffers<S> {
    static constexpr bool owns_scratch = false;
};

template <class S>
struct BranchState<S, true> : BranchBuffers<S> {
    static constexpr bool owns_scratch = true;
    static constexpr std::size_t kFloats = scratch_detail::branch_scratch_floats<S>();
    float* scratch() { return mem_.data; }

private:
    FixedScratch<kFloats> mem_;
};

DMIN_ISA_NAMESPACE_END
}  // namespace dmin
