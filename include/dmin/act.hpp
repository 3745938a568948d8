// dmin/act.hpp — the activations FuxiCTR's get_activation can build: names and per-unit parameters (no code
// that depends on the instruction set; the kernels evaluate them, dmin/kernels/activation.hpp).
#pragma once

#include <string>

#include "dmin/error.hpp"

namespace dmin {

enum class Act {
    none, relu, sigmoid, tanh, softmax, prelu, dice,
    leaky_relu, elu, selu, celu, gelu, silu, mish, softplus, softsign, hardswish, hardsigmoid,
    hardtanh, relu6, logsigmoid, tanhshrink, softshrink, hardshrink, identity, rrelu
};

struct ActName { Act act; const char* name; };
inline constexpr ActName kActNames[] = {
    {Act::relu, "ReLU"}, {Act::sigmoid, "Sigmoid"}, {Act::tanh, "Tanh"}, {Act::softmax, "Softmax"},
    {Act::prelu, "PReLU"}, {Act::dice, "Dice"}, {Act::leaky_relu, "LeakyReLU"}, {Act::elu, "ELU"},
    {Act::selu, "SELU"}, {Act::celu, "CELU"}, {Act::gelu, "GELU"}, {Act::silu, "SiLU"}, {Act::mish, "Mish"},
    {Act::softplus, "Softplus"}, {Act::softsign, "Softsign"}, {Act::hardswish, "Hardswish"},
    {Act::hardsigmoid, "Hardsigmoid"}, {Act::hardtanh, "Hardtanh"}, {Act::relu6, "ReLU6"},
    {Act::logsigmoid, "LogSigmoid"}, {Act::tanhshrink, "Tanhshrink"}, {Act::softshrink, "Softshrink"},
    {Act::hardshrink, "Hardshrink"}, {Act::identity, "Identity"}, {Act::rrelu, "RReLU"},
};

inline const char* to_string(Act a) {
    if (a == Act::none) return "none";
    for (const auto& n : kActNames)
        if (n.act == a) return n.name;
    return "?";
}

/// Parses a canonical activation name (weights_format.md §3). `where` names the field for errors.
inline Act parse_act(const std::string& s, const std::string& where) {
    for (const auto& n : kActNames)
        if (s == n.name) return n.act;
    detail::fail(where, ": unknown activation \"", s, "\"");
}

/// Per-unit parameters of the parametric activations (null for the others).
/// PReLU: slope = weight. Dice (BatchNorm folded at load): p = sigmoid(scale*x + shift), slope = alpha.
struct ActParams {
    const float* slope = nullptr;
    const float* scale = nullptr;
    const float* shift = nullptr;
};

}  // namespace dmin
