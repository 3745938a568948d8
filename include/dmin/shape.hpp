// dmin/shape.hpp — compile-time model shapes (dmin::Shape<D, L, H, P>) and the runtime-sized dynamic_shape.
#pragma once

#include <Eigen/Core>

#include <string>
#include <vector>

#include "dmin/error.hpp"
#include "dmin/spec.hpp"

namespace dmin {

inline constexpr int Dynamic = Eigen::Dynamic;

/// Sizes fixed at compile time: D = model dim of every branch, L = max_len, H = heads, P = pos_emb_dim.
/// Any of them may be dmin::Dynamic. Widths of the MLPs and vocabularies are always runtime.
template <int D_, int L_, int H_, int P_ = Dynamic>
struct Shape {
    static constexpr int D = D_;
    static constexpr int L = L_;
    static constexpr int H = H_;
    static constexpr int P = P_;
    static constexpr int hd = (D_ == Dynamic || H_ == Dynamic) ? Dynamic : D_ / H_;
    static constexpr int D2 = D_ == Dynamic ? Dynamic : 2 * D_;
    static constexpr bool is_dynamic = D_ == Dynamic && L_ == Dynamic && H_ == Dynamic && P_ == Dynamic;
};

/// Every size taken from the weights file.
using dynamic_shape = Shape<Dynamic, Dynamic, Dynamic, Dynamic>;

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
        check("P (pos_emb_dim)", S::P, spec.pos_emb_dim, i);
    }
    return out;
}

/// The C++ shape type that matches `spec`, ready to paste (dynamic where branches differ).
inline std::string shape_type_for(const ModelSpec& spec) {
    auto same = [&](auto get) {
        const int v = get(spec.branches[0]);
        for (const auto& b : spec.branches)
            if (get(b) != v) return std::string("dmin::Dynamic");
        return std::to_string(v);
    };
    return "dmin::Shape<" + same([](const BranchSpec& b) { return b.D; }) + ", " +
           same([](const BranchSpec& b) { return b.L; }) + ", " + std::to_string(spec.num_heads) + ", " +
           (spec.use_pos_emb ? std::to_string(spec.pos_emb_dim) : std::string("0")) + ">";
}

/// Compile-time value if fixed, else the runtime one.
template <int Fixed>
constexpr int dim_or(int runtime) {
    if constexpr (Fixed == Dynamic) return runtime;
    else return Fixed;
}

}  // namespace dmin
