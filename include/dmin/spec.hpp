// dmin/spec.hpp — the model spec stored in a weights file (weights_format.md §3), parsed and validated.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dmin/act.hpp"
#include "dmin/error.hpp"
#include "dmin/io/json.hpp"

namespace dmin {

enum class FeatureType { categorical, numeric, sequence };
/// Who supplies a feature at serving time: the request (user, context) or each candidate.
enum class Role { user, context, candidate };

inline const char* to_string(FeatureType t) {
    switch (t) {
        case FeatureType::categorical: return "categorical";
        case FeatureType::numeric: return "numeric";
        case FeatureType::sequence: return "sequence";
    }
    return "?";
}
inline const char* to_string(Role r) {
    switch (r) {
        case Role::user: return "user";
        case Role::context: return "context";
        case Role::candidate: return "candidate";
    }
    return "?";
}

struct FeatureSpec {
    std::string name;
    FeatureType type = FeatureType::categorical;
    Role role = Role::user;
    std::int64_t vocab_size = 0;  ///< categorical / sequence
    int dim = 0;
    int max_len = 0;              ///< sequence only
    std::int64_t oov_idx = -1;    ///< -1: unknown
    std::string table;            ///< tensor name looked up (shared tables: the owner's key)
    bool in_dnn = true;
};

struct BranchSpec {
    std::vector<int> target;    ///< feature indices, tuple order
    std::vector<int> sequence;  ///< feature indices, tuple order; sequence[0] decides padding
    int D = 0;                  ///< model dim = E * k
    int L = 0;                  ///< max_len
};

struct ModelSpec {
    std::string task = "binary_classification";
    int embedding_dim = 0;
    std::vector<FeatureSpec> features;
    std::vector<BranchSpec> branches;
    int num_heads = 1;
    bool use_behavior_refiner = true;
    bool layer_norm = true;
    bool use_pos_emb = true;
    int pos_emb_dim = 0;
    bool strict_refiner_mask = false;
    std::vector<int> attention_units;
    std::vector<Act> attention_acts;
    double attention_dropout = 0;
    std::vector<int> dnn_units;
    std::vector<Act> dnn_acts;
    double net_dropout = 0;
    bool batch_norm = false;
    bool bn_only_once = false;
    bool sum_pooling = false;
    int dnn_input_dim = 0;
    io::json provenance;

    bool regression() const { return task == "regression"; }
    int feature_index(const std::string& name) const {
        for (std::size_t i = 0; i < features.size(); ++i)
            if (features[i].name == name) return static_cast<int>(i);
        return -1;
    }
    /// The DNN input width implied by the spec (weights_format.md §3), in 64 bits (no overflow).
    std::int64_t implied_dnn_input_dim() const {
        std::int64_t f = 0;
        for (const auto& b : branches) f += std::int64_t{num_heads} * b.D + (sum_pooling ? 2 * std::int64_t{b.D} : 0);
        for (const auto& x : features)
            if (x.in_dnn && x.type != FeatureType::sequence) f += x.dim;
        return f;
    }
};

namespace detail {

inline std::vector<Act> parse_acts(const io::Fields& f, const char* key, std::size_t n) {
    const auto& v = f.at(key);
    if (!v.is_array() || v.size() != n)
        detail::fail(f.where, ".", key, ": expected a list of ", n, " activation names (or null), found ", v.dump());
    std::vector<Act> out;
    for (const auto& e : v) {
        if (e.is_null()) { out.push_back(Act::none); continue; }
        if (!e.is_string()) detail::fail(f.where, ".", key, ": expected activation names, found ", e.dump());
        out.push_back(parse_act(e.get<std::string>(), f.where + "." + key));
    }
    return out;
}

/// One entry of `features`, checked against the features before it (names, shared tables).
inline FeatureSpec parse_feature(const io::json& j, const std::string& list_where, std::size_t i, const ModelSpec& s) {
    FeatureSpec x;
    x.name = io::Fields{j, list_where + "[" + std::to_string(i) + "]"}.str("name");
    // Named by feature name from here on: a user finds "features[item_id]" faster than "features[7]".
    const io::Fields fn{j, list_where + "[" + x.name + "]"};
    if (s.feature_index(x.name) >= 0) fail(fn.where, ": duplicate feature name");
    const std::string type = fn.str("type");
    if (type == "categorical") x.type = FeatureType::categorical;
    else if (type == "numeric") x.type = FeatureType::numeric;
    else if (type == "sequence") x.type = FeatureType::sequence;
    else fail(fn.where, ".type: expected categorical, numeric or sequence, found \"", type, "\"");
    const std::string role = fn.str_or("role", "user");
    if (role == "user") x.role = Role::user;
    else if (role == "context") x.role = Role::context;
    else if (role == "candidate") x.role = Role::candidate;
    else fail(fn.where, ".role: expected user, context or candidate, found \"", role, "\"");
    x.dim = static_cast<int>(fn.integer("dim", 1, 1 << 16));
    if (x.type != FeatureType::numeric) {
        x.vocab_size = fn.integer("vocab_size", 1, std::int64_t{1} << 40);
        if (fn.has("oov_idx")) x.oov_idx = fn.integer("oov_idx", 0, x.vocab_size - 1);
    }
    if (x.type == FeatureType::sequence) {
        x.max_len = static_cast<int>(fn.integer("max_len", 1, 1 << 16));
        if (x.role == Role::candidate) fail(fn.where, ".role: a sequence feature cannot be a candidate feature");
    }
    x.table = fn.str_or("table", "embedding_layer.embedding_layers." + x.name + ".weight");
    x.in_dnn = fn.boolean_or("in_dnn", true);
    // Features sharing a table must agree on its shape, or lookups could leave it.
    for (const auto& y : s.features)
        if (y.table == x.table &&
            ((y.type == FeatureType::numeric) != (x.type == FeatureType::numeric) || y.vocab_size != x.vocab_size || y.dim != x.dim))
            fail(fn.where, ": shares table ", x.table, " with feature ", y.name, " but declares vocab_size ", x.vocab_size, ", dim ",
                 x.dim, " (", y.name, ": vocab_size ", y.vocab_size, ", dim ", y.dim, ")");
    return x;
}

/// A branch's `target` or `sequence` list: feature names resolved to indices.
inline std::vector<int> branch_members(const io::Fields& bf, const char* key, const ModelSpec& s) {
    std::vector<int> out;
    const auto& v = bf.at(key);
    if (!v.is_array() || v.empty()) bf.bad(key, "a non-empty list of feature names");
    for (const auto& e : v) {
        if (!e.is_string()) bf.bad(key, "a non-empty list of feature names");
        const int k = s.feature_index(e.get<std::string>());
        if (k < 0) fail(bf.where, ".", key, ": unknown feature \"", e.get<std::string>(), "\"");
        out.push_back(k);
    }
    return out;
}

/// Every field of a branch's tuple groups must be an embedding_dim-wide field of the right kind; the
/// sequence fields share one max_len.
inline void check_branch_fields(const BranchSpec& b, const std::string& bw, const ModelSpec& s) {
    for (int t : b.target) {
        const auto& x = s.features[static_cast<std::size_t>(t)];
        if (x.type != FeatureType::categorical) fail(bw, ".target: feature ", x.name, " must be categorical, found ", to_string(x.type));
        if (x.dim != s.embedding_dim) fail(bw, ".target: feature ", x.name, " has dim ", x.dim, ", expected embedding_dim ", s.embedding_dim);
    }
    const int first_len = s.features[static_cast<std::size_t>(b.sequence[0])].max_len;
    for (int q : b.sequence) {
        const auto& x = s.features[static_cast<std::size_t>(q)];
        if (x.type != FeatureType::sequence) fail(bw, ".sequence: feature ", x.name, " must be a sequence, found ", to_string(x.type));
        if (x.dim != s.embedding_dim) fail(bw, ".sequence: feature ", x.name, " has dim ", x.dim, ", expected embedding_dim ", s.embedding_dim);
        if (x.max_len != first_len)
            fail(bw, ".sequence: feature ", x.name, " has max_len ", x.max_len, ", but the group's first field has ", first_len);
    }
}

/// One entry of `branches` (needs the features and num_heads parsed).
inline BranchSpec parse_branch(const io::json& j, const std::string& bw, const ModelSpec& s) {
    const io::Fields bf{j, bw};
    BranchSpec b;
    b.target = branch_members(bf, "target", s);
    b.sequence = branch_members(bf, "sequence", s);
    if (b.target.size() != b.sequence.size()) fail(bw, ": target has ", b.target.size(), " fields but sequence has ", b.sequence.size());
    check_branch_fields(b, bw, s);
    if (static_cast<std::int64_t>(s.embedding_dim) * static_cast<std::int64_t>(b.target.size()) > (1 << 16))
        fail(bw, ": model dim ", s.embedding_dim, " x ", b.target.size(), " exceeds dmin's limit of 65536");
    b.D = s.embedding_dim * static_cast<int>(b.target.size());
    b.L = s.features[static_cast<std::size_t>(b.sequence[0])].max_len;
    if (b.D % s.num_heads != 0) fail(bw, ": model dim ", b.D, " is not divisible by num_heads ", s.num_heads);
    return b;
}

/// The switches and layer widths after the features and branches.
inline void parse_layers(const io::Fields& f, ModelSpec& s) {
    s.use_behavior_refiner = f.boolean_or("use_behavior_refiner", true);
    s.layer_norm = f.boolean_or("layer_norm", true);
    s.use_pos_emb = f.boolean_or("use_pos_emb", true);
    s.pos_emb_dim = s.use_pos_emb ? static_cast<int>(f.integer("pos_emb_dim", 1, 1 << 16)) : 0;
    const std::string mask = f.str_or("refiner_mask", "additive");
    if (mask != "additive" && mask != "strict") fail(f.where, ".refiner_mask: expected additive or strict, found \"", mask, "\"");
    s.strict_refiner_mask = mask == "strict";
    s.attention_units = f.int_list("attention_hidden_units", 1, 1 << 16);
    if (s.attention_units.empty()) fail(f.where, ".attention_hidden_units: dmin needs at least one hidden layer");
    s.attention_acts = parse_acts(f, "attention_activations", s.attention_units.size());
    s.attention_dropout = f.number_or("attention_dropout", 0.0);
    s.dnn_units = f.int_list("dnn_hidden_units", 1, 1 << 20);
    s.dnn_acts = parse_acts(f, "dnn_activations", s.dnn_units.size());
    s.net_dropout = f.number_or("net_dropout", 0.0);
    s.batch_norm = f.boolean_or("batch_norm", false);
    s.bn_only_once = f.boolean_or("bn_only_once", false);
    s.sum_pooling = f.boolean_or("enable_sum_pooling", false);
}

}  // namespace detail

/// Parses and validates the spec JSON. Throws dmin::Error naming the field on any inconsistency.
inline ModelSpec parse_spec(const io::json& j, const std::string& where = "spec") {
    using detail::fail;
    const io::Fields f{j, where};
    if (!j.is_object()) fail(where, ": expected a JSON object");
    ModelSpec s;
    if (f.has("model") && f.str("model") != "DMIN") fail(where, ".model: expected \"DMIN\", found \"", f.str("model"), "\"");
    s.task = f.str_or("task", "binary_classification");
    if (s.task != "binary_classification" && s.task != "regression")
        fail(where, ".task: expected binary_classification or regression, found \"", s.task, "\"");
    s.embedding_dim = static_cast<int>(f.integer("embedding_dim", 1, 1 << 16));

    const auto& feats = f.at("features");
    if (!feats.is_array() || feats.empty()) fail(where, ".features: expected a non-empty list");
    for (std::size_t i = 0; i < feats.size(); ++i) s.features.push_back(detail::parse_feature(feats[i], where + ".features", i, s));

    s.num_heads = static_cast<int>(f.integer("num_heads", 1, 1024));
    const auto& brs = f.at("branches");
    if (!brs.is_array() || brs.empty()) fail(where, ".branches: expected a non-empty list");
    for (std::size_t i = 0; i < brs.size(); ++i)
        s.branches.push_back(detail::parse_branch(brs[i], where + ".branches[" + std::to_string(i) + "]", s));

    detail::parse_layers(f, s);
    s.dnn_input_dim = static_cast<int>(f.integer("dnn_input_dim", 1, 1 << 24));
    if (s.dnn_input_dim != s.implied_dnn_input_dim())
        fail(where, ".dnn_input_dim: the features and branches imply ", s.implied_dnn_input_dim(), ", found ", s.dnn_input_dim);
    if (j.contains("provenance")) s.provenance = j.at("provenance");
    return s;
}

}  // namespace dmin
