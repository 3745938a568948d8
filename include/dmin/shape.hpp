// dmin/shape.hpp — compile-time model shapes (dmin::Shape<D, L, H, P, Units<...>, Units<...>, X>), any
// size dmin::Dynamic, and the fully runtime-sized dynamic_shape.
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <string>
#include <vector>

#include "dmin/error.hpp"
#include "dmin/kernels/sizes.hpp"
#include "dmin/spec.hpp"

namespace dmin {

static_assert(Dynamic == Eigen::Dynamic, "dmin::Dynamic is Eigen's");

namespace detail {
/// Width I of U..., Dynamic past the end.
template <std::size_t I, int... U>
constexpr int unit_at() {
    constexpr int u[] = {U..., Dynamic};
    return I < sizeof...(U) ? u[I] : Dynamic;
}
}  // namespace detail

/// The hidden widths of an MLP fixed at compile time (the attention MLP's or the DNN's), e.g. Units<80, 40>.
template <int... U>
struct Units {
    static constexpr bool fixed = true;
    static constexpr int count = static_cast<int>(sizeof...(U));
    static constexpr int first = detail::unit_at<0, U...>();
    static std::vector<int> list() { return {U...}; }
    /// Width I (I < count).
    template <std::size_t I>
    static constexpr int at() {
        return detail::unit_at<I, U...>();
    }
    /// The largest of w and the widths.
    static constexpr int widest(int w) {
        ((w = w < U ? U : w), ...);
        return w;
    }
};

/// Widths taken from the weights file.
struct DynamicUnits {
    static constexpr bool fixed = false;
    static constexpr int first = Dynamic;
    static std::vector<int> list() { return {}; }
};

/// Sizes fixed at compile time: D = model dim of every branch, L = max_len, H = heads, P = pos_emb_dim,
/// the attention MLP's and the DNN's hidden widths, X = the DNN's input width (the concatenated
/// interests, pools and feature embeddings: the file's dnn_input_dim). Any of them may be dmin::Dynamic
/// (DynamicUnits for the widths); X comes last and defaults to Dynamic, so a six-argument shape still
/// names the same model with the DNN's scratch sized at run time. Derived: hd = D / H, FFN = 2·D
/// (FuxiCTR's FFN width), QKV = 3·D, A1 = the attention MLP's first width.
/// Vocabulary sizes and the features' count and layout are always runtime.
template <int D_, int L_, int H_, int P_ = Dynamic, class AttentionUnits = DynamicUnits, class DnnUnits = DynamicUnits,
          int X_ = Dynamic>
struct Shape {
    static constexpr int D = D_;
    static constexpr int L = L_;
    static constexpr int H = H_;
    static constexpr int P = P_;
    static constexpr int X = X_;
    static constexpr int hd = (D_ == Dynamic || H_ == Dynamic) ? Dynamic : D_ / H_;
    static constexpr int FFN = D_ == Dynamic ? Dynamic : 2 * D_;
    static constexpr int QKV = D_ == Dynamic ? Dynamic : 3 * D_;  ///< Q, K and V side by side
    static constexpr int A1 = AttentionUnits::first;
    using attention_units = AttentionUnits;
    using dnn_units = DnnUnits;
};

/// Every size taken from the weights file.
using dynamic_shape = Shape<Dynamic, Dynamic, Dynamic, Dynamic>;

namespace detail {
inline std::string units_str(const std::vector<int>& u) {
    std::string s;
    for (std::size_t i = 0; i < u.size(); ++i) s += (i ? ", " : "") + std::to_string(u[i]);
    return s;
}
}  // namespace detail

/// Every way `spec` disagrees with the compile-time shape S (empty when it fits).
template <class S>
std::vector<std::string> shape_mismatches(const ModelSpec& spec) {
    std::vector<std::string> out;
    auto check = [&](const char* what, int fixed, int found, std::size_t branch) {
        if (fixed != Dynamic && fixed != found)
            out.push_back(detail::str_cat(what, " of branch ", branch, ": shape type has ", fixed, ", file has ", found));
    };
    for (std::size_t i = 0; i < spec.branches.size(); ++i) {
        check("D (model dim)", S::D, spec.branches[i].D, i);
        check("L (max_len)", S::L, spec.branches[i].L, i);
        check("H (num_heads)", S::H, spec.num_heads, i);
        check("P (pos_emb_dim)", S::P, spec.use_pos_emb ? spec.pos_emb_dim : 0, i);
    }
    auto check_units = [&](const char* what, bool fixed, const std::vector<int>& want, const std::vector<int>& found) {
        if (fixed && want != found)
            out.push_back(detail::str_cat(what, ": shape type has Units<", detail::units_str(want), ">, file has Units<",
                                          detail::units_str(found), ">"));
    };
    check_units("attention MLP widths", S::attention_units::fixed, S::attention_units::list(), spec.attention_units);
    check_units("DNN widths", S::dnn_units::fixed, S::dnn_units::list(), spec.dnn_units);
    if (S::X != Dynamic && S::X != spec.dnn_input_dim)
        out.push_back(detail::str_cat("X (DNN input width): shape type has ", S::X, ", file has ", spec.dnn_input_dim));
    return out;
}

/// The C++ shape type that matches `spec`, ready to paste (Dynamic where branches differ).
inline std::string shape_type_for(const ModelSpec& spec) {
    auto same = [&](auto get) {
        const int v = get(spec.branches[0]);
        for (const auto& b : spec.branches)
            if (get(b) != v) return std::string("dmin::Dynamic");
        return std::to_string(v);
    };
    return "dmin::Shape<" + same([](const BranchSpec& b) { return b.D; }) + ", " + same([](const BranchSpec& b) { return b.L; }) + ", " +
           std::to_string(spec.num_heads) + ", " + (spec.use_pos_emb ? std::to_string(spec.pos_emb_dim) : std::string("0")) +
           ", dmin::Units<" + detail::units_str(spec.attention_units) + ">, dmin::Units<" + detail::units_str(spec.dnn_units) + ">, " +
           std::to_string(spec.dnn_input_dim) + ">";
}

}  // namespace dmin
