// dmin/model.hpp — dmin::Model<Shape>: the immutable, thread-shareable DMIN network loaded from a weights file.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dmin/aligned.hpp"
#include "dmin/error.hpp"
#include "dmin/io/json.hpp"
#include "dmin/io/safetensors.hpp"
#include "dmin/nn/mlp.hpp"
#include "dmin/shape.hpp"
#include "dmin/spec.hpp"
#include "dmin/vocab.hpp"

namespace dmin {

// The weights hold nn::Linear and nn::Mlp, whose code depends on the instruction set (kernels/isa.hpp).
DMIN_ISA_NAMESPACE_BEGIN

/// Weights of one behavior refiner (nn.MultiheadAttention + LayerNorm + FFN), all Linear transposed.
struct RefinerWeights {
    nn::Linear in_proj, out_proj, ffn1, ffn2;
    const float* ln_gamma = nullptr;  ///< null when layer_norm is off
    const float* ln_beta = nullptr;
};

/// Weights of one interest head: extractor tail (W_o, LayerNorm, FFN) and its target attention unit.
struct HeadWeights {
    nn::Linear w_o, ffn1, ffn2;
    const float* ln_gamma = nullptr;
    const float* ln_beta = nullptr;
    const float* pos_emb = nullptr;  ///< [L, P] or null
    nn::Linear w_proj;               ///< [(D+P) → D]; transposed rows 0..D-1 act on t, D.. on pos_emb
    /// The attention MLP over FuxiCTR's [q, z, q−z, q⊙z] (4D) → … → 1. Its first layer's transposed
    /// weights are rewritten at load time from [Wa; Wb; Wc; Wd]^T to [Wa+Wc; Wb−Wc; Wd; Wc]^T, the form
    /// the factorisation uses (no second copy; Wb−Wc and Wd adjacent, so the per-user terms are one
    /// product): fed [q, z, q⊙z, 0] it computes FuxiCTR's layer exactly
    /// (q·Wa + z·Wb + (q−z)·Wc = q·(Wa+Wc) + z·(Wb−Wc)), up to the rounding of the sums.
    nn::Mlp attn;
    // Factorised target attention (DESIGN §2):
    float* k = nullptr;          ///< [L, D]  k_l = W_p·p_l + b_proj (0 without position embedding)
    const float* wac = nullptr;  ///< [D, A1] (W_a + W_c)^T (a view into attn's first layer)
    const float* wbcd = nullptr;  ///< [2D, A1] [(W_b − W_c)^T; W_d^T] (a view into attn's first layer)
    const float* wd = nullptr;    ///< [D, A1] W_d^T (rows D..2D of wbcd)
    float* g0 = nullptr;         ///< [L, A1] k_l·(W_a + W_c)^T + b_1
};

/// One DMIN branch: a target group, a sequence group, refiner, extractor and H heads.
struct BranchWeights {
    int D = 0, L = 0, H = 0, hd = 0, P = 0, A1 = 0;
    bool refiner = false;
    RefinerWeights ref;
    nn::Linear qkv;  ///< extractor W_qkv (no bias)
    std::vector<HeadWeights> heads;
};

DMIN_ISA_NAMESPACE_END

/// Where a feature's value lives in a sample: ids[] for categorical / sequence, values[] for numeric.
struct FeatureSlot {
    int offset = 0;  ///< into ids (categorical: 1 id; sequence: max_len ids) or values (numeric: 1)
    int cand_offset = -1;  ///< candidate features: offset into a candidate row (ids or values)
};

/// One DNN input piece in FuxiCTR concat order, and where it goes in dmin's permuted input
/// (candidate-dependent pieces first, then request-only pieces).
struct DnnPiece {
    enum Kind { interest, sum_pool, target_x_sum_pool, feature } kind = feature;
    int branch = 0, head = 0, feature_index = 0;
    int width = 0;
    bool per_candidate = false;
    int offset = 0;  ///< in the permuted DNN input
};

/// A sample in the fast path: ids (int64) and numeric values (float) in the model's layout
/// (Model::slot()). Sequences occupy exactly max_len ids, 0 = padding.
struct SampleView {
    const std::int64_t* ids = nullptr;
    const float* values = nullptr;
};

/// Options for dmin::load.
struct LoadOptions {
    /// Replay the reference pair stored in the file and throw if a prediction differs beyond tolerance.
    bool self_test = false;
    /// Embedding tables larger than this many bytes are used in place through a read-only private
    /// memory mapping of the file instead of being copied (0 = map every table; SIZE_MAX = copy all).
    /// A mapped file must not be modified in place while the model lives (replacing it by rename is safe).
    std::uint64_t map_tables_larger_than = std::uint64_t{256} << 20;
};

DMIN_ISA_NAMESPACE_BEGIN
template <class S = dynamic_shape>
class Model;

template <class M = Model<dynamic_shape>>
M load(const std::string& path, const LoadOptions& options = {});
DMIN_ISA_NAMESPACE_END

/// Replays the reference pair stored in the model's file; throws dmin::Error beyond its tolerance and
/// returns the largest |Δp| otherwise. Defined in dmin/selftest.hpp (included by dmin/dmin.hpp).
template <class M>
double self_test(const M& model);

DMIN_ISA_NAMESPACE_BEGIN
/// Immutable DMIN network. Construct with dmin::load<Model<S>>(path). All member functions are const
/// and safe to call from many threads at once; per-request state lives in dmin::Scorer.
template <class S>
class Model {
public:
    using shape = S;

    /// Column-panel width of the DNN's layers (nn::Linear::panel): four zmm vectors, the register tile
    /// of a 32-candidate block (and two tiles of ymm vectors).
    static constexpr int kDnnPanel = 64;

    const ModelSpec& spec() const noexcept { return spec_; }
    const std::vector<BranchWeights>& branches() const noexcept { return branches_; }
    const nn::Mlp& dnn() const noexcept { return dnn_; }
    const std::vector<DnnPiece>& dnn_pieces() const noexcept { return pieces_; }
    int dnn_candidate_width() const noexcept { return dnn_cand_width_; }

    /// Embedding table of feature f ([vocab, dim] row-major), or the numeric weight [dim].
    const float* table(int f) const { return tables_[static_cast<std::size_t>(f)]; }
    const FeatureSlot& slot(int f) const { return slots_[static_cast<std::size_t>(f)]; }
    int num_ids() const noexcept { return num_ids_; }
    int num_values() const noexcept { return num_values_; }
    int num_candidate_ids() const noexcept { return num_cand_ids_; }
    int num_candidate_values() const noexcept { return num_cand_values_; }

    /// The reference pair stored in the file (weights_format.md §4), as JSON text.
    const std::string& reference_json() const noexcept { return reference_; }
    /// Optional vocabularies (weights_format.md §5), as JSON text ("" when absent).
    const std::string& vocab_json() const noexcept { return vocab_; }
    /// Raw token → index maps parsed from vocab_json() (empty when the file has none).
    const Vocabularies& vocabularies() const noexcept { return vocabularies_; }
    /// Bytes of weights held (file tensors plus load-time derived tensors).
    std::size_t resident_bytes() const noexcept { return (store_.size() + derived_.size()) * sizeof(float); }
    /// Bytes of embedding tables used in place from a memory mapping of the file (not in resident_bytes()).
    std::size_t mapped_bytes() const noexcept { return mapped_bytes_; }
    std::size_t file_weight_bytes() const noexcept { return file_weight_bytes_; }
    /// Trainable parameters (BatchNorm/Dice running statistics excluded; shared tables once), as FuxiCTR counts.
    std::size_t parameter_count() const noexcept { return parameter_count_; }

private:
    template <class M>
    friend M load(const std::string&, const LoadOptions&);

    ModelSpec spec_;
    AlignedBuffer store_;    // file tensors (Linear weights transposed, BatchNorm folded in place)
    AlignedBuffer derived_;  // factorised target-attention tensors
    std::vector<const float*> tables_;
    std::vector<FeatureSlot> slots_;
    std::vector<BranchWeights> branches_;
    nn::Mlp dnn_;
    std::vector<DnnPiece> pieces_;
    int dnn_cand_width_ = 0;
    int num_ids_ = 0, num_values_ = 0, num_cand_ids_ = 0, num_cand_values_ = 0;
    std::string reference_, vocab_;
    std::size_t file_weight_bytes_ = 0, parameter_count_ = 0, mapped_bytes_ = 0;
    std::shared_ptr<const io::FileMapping> mapping_;  // large tables used in place
    Vocabularies vocabularies_;
};
DMIN_ISA_NAMESPACE_END

// ---------------------------------------------------------------------------------------------
// Expected tensors: the single place that turns a spec into FuxiCTR state_dict names and shapes.

struct ExpectedTensor {
    std::string name;
    std::vector<std::int64_t> shape;
};

namespace detail {

inline std::string mlp_key(const std::string& prefix, int index, const char* leaf) {
    return prefix + ".mlp." + std::to_string(index) + "." + leaf;
}

/// Layer indices of a FuxiCTR MLP_Block (weights_format.md §3, "MLP rule").
struct MlpLayout {
    int input_bn = -1;  ///< bn_only_once BatchNorm index or -1
    struct H { int linear, bn, act; };
    std::vector<H> hidden;
    int out_linear = 0;
};

inline MlpLayout mlp_layout(const std::vector<int>& units, const std::vector<Act>& acts, double dropout, bool bn,
                            bool bn_once) {
    MlpLayout l;
    int n = 0;
    if (bn && bn_once) l.input_bn = n++;
    for (std::size_t k = 0; k < units.size(); ++k) {
        MlpLayout::H h{n++, -1, -1};
        if (bn && !bn_once) h.bn = n++;
        if (acts[k] != Act::none) h.act = n++;
        if (dropout > 0) ++n;
        l.hidden.push_back(h);
    }
    l.out_linear = n;
    return l;
}

inline void expect_mlp(std::vector<ExpectedTensor>& out, const std::string& prefix, int in,
                       const std::vector<int>& units, const std::vector<Act>& acts, double dropout, bool bn, bool bn_once) {
    const auto lay = mlp_layout(units, acts, dropout, bn, bn_once);
    auto bn_keys = [&](int idx, int w) {
        for (const char* leaf : {"weight", "bias", "running_mean", "running_var"}) out.push_back({mlp_key(prefix, idx, leaf), {w}});
    };
    if (lay.input_bn >= 0) bn_keys(lay.input_bn, in);
    int prev = in;
    for (std::size_t k = 0; k < units.size(); ++k) {
        const int u = units[k];
        out.push_back({mlp_key(prefix, lay.hidden[k].linear, "weight"), {u, prev}});
        out.push_back({mlp_key(prefix, lay.hidden[k].linear, "bias"), {u}});
        if (lay.hidden[k].bn >= 0) bn_keys(lay.hidden[k].bn, u);
        if (acts[k] == Act::prelu) out.push_back({mlp_key(prefix, lay.hidden[k].act, "weight"), {u}});
        if (acts[k] == Act::dice)
            for (const char* leaf : {"alpha", "bn.running_mean", "bn.running_var"})
                out.push_back({mlp_key(prefix, lay.hidden[k].act, leaf), {u}});
        prev = u;
    }
    out.push_back({mlp_key(prefix, lay.out_linear, "weight"), {1, prev}});
    out.push_back({mlp_key(prefix, lay.out_linear, "bias"), {1}});
}

inline std::string refiner_prefix(std::size_t i) { return "behavior_refiner." + std::to_string(i); }
inline std::string extractor_prefix(std::size_t i) { return "multi_interest_extractor." + std::to_string(i); }

}  // namespace detail

/// Every tensor a spec requires, with its shape, in a stable order.
inline std::vector<ExpectedTensor> expected_tensors(const ModelSpec& s) {
    std::vector<ExpectedTensor> out;
    std::map<std::string, bool> tables;
    for (const auto& f : s.features) {
        if (tables.count(f.table)) continue;
        tables[f.table] = true;
        if (f.type == FeatureType::numeric) out.push_back({f.table, {f.dim, 1}});
        else out.push_back({f.table, {f.vocab_size, f.dim}});
    }
    for (std::size_t i = 0; i < s.branches.size(); ++i) {
        const int D = s.branches[i].D, L = s.branches[i].L, H = s.num_heads, P = s.pos_emb_dim;
        if (s.use_behavior_refiner) {
            const auto p = detail::refiner_prefix(i);
            out.push_back({p + ".attention.in_proj_weight", {3 * D, D}});
            out.push_back({p + ".attention.in_proj_bias", {3 * D}});
            out.push_back({p + ".attention.out_proj.weight", {D, D}});
            out.push_back({p + ".attention.out_proj.bias", {D}});
            out.push_back({p + ".ffn.0.weight", {2 * D, D}});
            out.push_back({p + ".ffn.0.bias", {2 * D}});
            out.push_back({p + ".ffn.2.weight", {D, 2 * D}});
            out.push_back({p + ".ffn.2.bias", {D}});
            if (s.layer_norm) {
                out.push_back({p + ".layer_norm.weight", {D}});
                out.push_back({p + ".layer_norm.bias", {D}});
            }
        }
        const auto p = detail::extractor_prefix(i);
        out.push_back({p + ".W_qkv.weight", {3 * D, D}});
        for (int h = 0; h < H; ++h) {
            const auto hs = std::to_string(h);
            out.push_back({p + ".W_o." + hs + ".weight", {D, D / H}});
            if (s.layer_norm) {
                out.push_back({p + ".layer_norm." + hs + ".weight", {D}});
                out.push_back({p + ".layer_norm." + hs + ".bias", {D}});
            }
            out.push_back({p + ".ffn." + hs + ".0.weight", {2 * D, D}});
            out.push_back({p + ".ffn." + hs + ".0.bias", {2 * D}});
            out.push_back({p + ".ffn." + hs + ".2.weight", {D, 2 * D}});
            out.push_back({p + ".ffn." + hs + ".2.bias", {D}});
            const auto ta = p + ".target_attention." + hs;
            if (s.use_pos_emb) {
                out.push_back({ta + ".pos_emb", {L, P}});
                out.push_back({ta + ".W_proj.weight", {D, D + P}});
                out.push_back({ta + ".W_proj.bias", {D}});
            }
            detail::expect_mlp(out, ta + ".attn_mlp", 4 * D, s.attention_units, s.attention_acts, s.attention_dropout, false,
                               false);
        }
    }
    detail::expect_mlp(out, "dnn", s.dnn_input_dim, s.dnn_units, s.dnn_acts, s.net_dropout, s.batch_norm, s.bn_only_once);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Loading.

namespace detail {
DMIN_ISA_NAMESPACE_BEGIN

/// In-place transpose of a row-major [rows, cols] matrix into [cols, rows].
inline void transpose_in_place(float* p, int rows, int cols) {
    std::vector<float> tmp(p, p + static_cast<std::ptrdiff_t>(rows) * cols);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) p[static_cast<std::ptrdiff_t>(c) * rows + r] = tmp[static_cast<std::size_t>(r) * cols + c];
}

class Wiring {
public:
    Wiring(std::map<std::string, float*> t) : t_(std::move(t)) {}
    float* get(const std::string& name) const { return t_.at(name); }
    /// A Linear from PyTorch weight [out, in] (+ bias), transposed in place to [in, out].
    nn::Linear linear(const std::string& w, const std::string& b, int in, int out) const {
        nn::Linear l{in, out, get(w), b.empty() ? nullptr : get(b)};
        transpose_in_place(l.wt, out, in);
        return l;
    }

private:
    std::map<std::string, float*> t_;
};

/// Running variances must be >= 0: a negative one would turn the folded weights into NaN.
inline void check_variance(const std::string& name, const float* var, int n) {
    for (int j = 0; j < n; ++j)
        if (!(var[j] >= 0.0f)) fail("tensor ", name, ": running variance ", var[j], " at index ", j, " is negative");
}

/// Folds an eval-mode BatchNorm1d that follows `lin` into it: W'^T[:, j] = W^T[:, j]·s_j, b' = (b − μ)·s + β.
inline void fold_bn_after(nn::Linear& lin, const Wiring& w, const std::string& prefix, int idx, double eps) {
    const float* g = w.get(mlp_key(prefix, idx, "weight"));
    const float* be = w.get(mlp_key(prefix, idx, "bias"));
    const float* mu = w.get(mlp_key(prefix, idx, "running_mean"));
    const float* var = w.get(mlp_key(prefix, idx, "running_var"));
    check_variance(mlp_key(prefix, idx, "running_var"), var, lin.out);
    for (int j = 0; j < lin.out; ++j) {
        const double s = g[j] / std::sqrt(static_cast<double>(var[j]) + eps);
        for (int k = 0; k < lin.in; ++k) lin.wt[static_cast<std::ptrdiff_t>(k) * lin.out + j] *= static_cast<float>(s);
        lin.b[j] = static_cast<float>((lin.b[j] - mu[j]) * s + be[j]);
    }
}

/// Folds an eval-mode BatchNorm1d on the input of `lin` (bn_only_once): x' = x·s + t.
inline void fold_bn_before(nn::Linear& lin, const Wiring& w, const std::string& prefix, int idx, double eps) {
    const float* g = w.get(mlp_key(prefix, idx, "weight"));
    const float* be = w.get(mlp_key(prefix, idx, "bias"));
    const float* mu = w.get(mlp_key(prefix, idx, "running_mean"));
    const float* var = w.get(mlp_key(prefix, idx, "running_var"));
    check_variance(mlp_key(prefix, idx, "running_var"), var, lin.in);
    std::vector<double> bias(lin.b, lin.b + lin.out);
    for (int k = 0; k < lin.in; ++k) {
        const double s = g[k] / std::sqrt(static_cast<double>(var[k]) + eps);
        const double t = be[k] - mu[k] * s;
        float* row = lin.wt + static_cast<std::ptrdiff_t>(k) * lin.out;
        for (int j = 0; j < lin.out; ++j) {
            bias[static_cast<std::size_t>(j)] += t * row[j];
            row[j] = static_cast<float>(row[j] * s);
        }
    }
    for (int j = 0; j < lin.out; ++j) lin.b[j] = static_cast<float>(bias[static_cast<std::size_t>(j)]);
}

inline nn::Mlp build_mlp(const Wiring& w, const std::string& prefix, int in, const std::vector<int>& units,
                         const std::vector<Act>& acts, double dropout, bool bn, bool bn_once) {
    const auto lay = mlp_layout(units, acts, dropout, bn, bn_once);
    nn::Mlp m;
    int prev = in;
    for (std::size_t k = 0; k < units.size(); ++k) {
        nn::Hidden h;
        const int idx = lay.hidden[k].linear;
        h.lin = w.linear(mlp_key(prefix, idx, "weight"), mlp_key(prefix, idx, "bias"), prev, units[k]);
        if (k == 0 && lay.input_bn >= 0) fold_bn_before(h.lin, w, prefix, lay.input_bn, 1e-5);
        if (lay.hidden[k].bn >= 0) fold_bn_after(h.lin, w, prefix, lay.hidden[k].bn, 1e-5);
        h.act = acts[k];
        if (h.act == Act::prelu) h.params.slope = w.get(mlp_key(prefix, lay.hidden[k].act, "weight"));
        if (h.act == Act::dice) {
            // p = sigmoid((x − μ)/sqrt(var + 1e-9)) = sigmoid(scale·x + shift); stored over μ and var.
            float* mu = w.get(mlp_key(prefix, lay.hidden[k].act, "bn.running_mean"));
            float* var = w.get(mlp_key(prefix, lay.hidden[k].act, "bn.running_var"));
            check_variance(mlp_key(prefix, lay.hidden[k].act, "bn.running_var"), var, units[k]);
            for (int j = 0; j < units[k]; ++j) {
                const double scale = 1.0 / std::sqrt(static_cast<double>(var[j]) + 1e-9);
                var[j] = static_cast<float>(scale);
                mu[j] = static_cast<float>(-mu[j] * scale);
            }
            h.params.scale = var;
            h.params.shift = mu;
            h.params.slope = w.get(mlp_key(prefix, lay.hidden[k].act, "alpha"));
        }
        m.hidden.push_back(h);
        prev = units[k];
    }
    m.head = w.linear(mlp_key(prefix, lay.out_linear, "weight"), mlp_key(prefix, lay.out_linear, "bias"), prev, 1);
    return m;
}

DMIN_ISA_NAMESPACE_END
}  // namespace detail

DMIN_ISA_NAMESPACE_BEGIN
template <class M>
M load(const std::string& path, const LoadOptions& options) {
    using S = typename M::shape;
    using detail::fail;
    io::SafetensorsFile file(path);
    {
        auto it = file.metadata().find("format");
        if (it == file.metadata().end() || it->second != "dmin")
            fail(path, ": not a dmin weights file (__metadata__.format must be \"dmin\")");
        const std::string& v = file.meta("format_version");
        if (v != "1") fail(path, ": format_version ", v, " is not supported by this dmin (expected 1)");
    }
    M m;
    m.spec_ = parse_spec(io::parse_strict(file.meta("spec"), path + ": spec"), path + ": spec");
    const ModelSpec& s = m.spec_;
    if (auto mism = shape_mismatches<S>(s); !mism.empty()) {
        std::string msg = path + ": the file does not fit the compile-time shape: ";
        for (std::size_t i = 0; i < mism.size(); ++i) msg += (i ? "; " : "") + mism[i];
        throw Error(msg + " (use " + shape_type_for(s) + " or dmin::dynamic_shape)");
    }
    if (auto it = file.metadata().find("reference"); it != file.metadata().end()) m.reference_ = it->second;
    if (auto it = file.metadata().find("vocab"); it != file.metadata().end()) {
        m.vocab_ = it->second;
        m.vocabularies_ = Vocabularies(m.vocab_, m.spec_);
    }

    // Every expected tensor present with its shape; nothing extra. Report all problems at once.
    const auto expected = expected_tensors(s);
    std::vector<std::string> problems;
    std::map<std::string, bool> wanted;
    for (const auto& e : expected) {
        wanted[e.name] = true;
        const auto* t = file.find(e.name);
        if (!t) problems.push_back("missing tensor " + e.name + " (expected shape " + detail::shape_str(e.shape) + ")");
        else if (t->shape != e.shape)
            problems.push_back("tensor " + e.name + ": expected shape " + detail::shape_str(e.shape) + ", found " +
                               detail::shape_str(t->shape));
    }
    for (const auto& t : file.tensors())
        if (!wanted.count(t.name)) problems.push_back("unexpected tensor " + t.name + " (not used by the spec)");
    if (!problems.empty()) {
        std::string msg = path + ": ";
        for (std::size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
        throw Error(msg);
    }

    // Large embedding tables: used in place from a private read-only mapping. Everything else is
    // copied into 64-byte-aligned storage (Linear weights are transposed and BatchNorm folded in place).
    std::map<std::string, bool> mapped;
    for (const auto& x : s.features) {
        const auto* t = file.find(x.table);
        if (x.type != FeatureType::numeric && t->bytes > options.map_tables_larger_than && t->begin % alignof(float) == 0 &&
            io::kHostLittleEndian)
            mapped[x.table] = true;
    }
    if (!mapped.empty()) m.mapping_ = std::make_shared<const io::FileMapping>(path, file.file_size());
    Arena measure;
    for (const auto& t : file.tensors())
        if (!mapped.count(t.name)) measure.take(static_cast<std::size_t>(t.numel()));
    m.store_ = AlignedBuffer(measure.used());
    Arena arena(m.store_);
    std::map<std::string, float*> ptr;
    {
        std::ifstream in(path, std::ios::binary);
        if (!in) fail(path, ": cannot open file");
        for (const auto& t : file.tensors()) {
            const bool buffer = t.name.size() > 12 && (t.name.rfind("running_mean") == t.name.size() - 12 ||
                                                       t.name.rfind("running_var") == t.name.size() - 11);
            m.file_weight_bytes_ += t.bytes;
            if (!buffer) m.parameter_count_ += static_cast<std::size_t>(t.numel());
            if (mapped.count(t.name)) {
                const auto* p = reinterpret_cast<const float*>(m.mapping_->data() + t.begin);
                file.check_finite(t.name, p, static_cast<std::size_t>(t.numel()));
                ptr[t.name] = const_cast<float*>(p);  // tables are only read; the mapping is PROT_READ
                m.mapped_bytes_ += t.bytes;
                continue;
            }
            float* dst = arena.take(static_cast<std::size_t>(t.numel()));
            file.read_f32(in, t, dst);
            ptr[t.name] = dst;
        }
    }
    const detail::Wiring w(std::move(ptr));

    // Features: tables and sample layout.
    for (std::size_t f = 0; f < s.features.size(); ++f) {
        const auto& x = s.features[f];
        m.tables_.push_back(w.get(x.table));
        FeatureSlot slot;
        const bool cand = x.role == Role::candidate;
        if (x.type == FeatureType::numeric) {
            slot.offset = m.num_values_++;
            if (cand) slot.cand_offset = m.num_cand_values_++;
        } else {
            slot.offset = m.num_ids_;
            m.num_ids_ += x.type == FeatureType::sequence ? x.max_len : 1;
            if (cand) slot.cand_offset = m.num_cand_ids_++;
        }
        m.slots_.push_back(slot);
    }

    // Branches.
    const int H = s.num_heads, P = s.pos_emb_dim;
    Arena dmeasure;
    for (const auto& b : s.branches) {
        const int A1 = s.attention_units.empty() ? 1 : s.attention_units[0];
        for (int h = 0; h < H; ++h) {
            dmeasure.take(static_cast<std::size_t>(b.L) * b.D);
            dmeasure.take(static_cast<std::size_t>(b.L) * A1);
        }
    }
    m.derived_ = AlignedBuffer(dmeasure.used());
    Arena darena(m.derived_);
    for (std::size_t i = 0; i < s.branches.size(); ++i) {
        const auto& bs = s.branches[i];
        BranchWeights b;
        b.D = bs.D;
        b.L = bs.L;
        b.H = H;
        b.hd = bs.D / H;
        b.P = P;
        b.refiner = s.use_behavior_refiner;
        const int D = b.D;
        if (b.refiner) {
            const auto p = detail::refiner_prefix(i);
            b.ref.in_proj = w.linear(p + ".attention.in_proj_weight", p + ".attention.in_proj_bias", D, 3 * D);
            b.ref.out_proj = w.linear(p + ".attention.out_proj.weight", p + ".attention.out_proj.bias", D, D);
            b.ref.ffn1 = w.linear(p + ".ffn.0.weight", p + ".ffn.0.bias", D, 2 * D);
            b.ref.ffn2 = w.linear(p + ".ffn.2.weight", p + ".ffn.2.bias", 2 * D, D);
            if (s.layer_norm) {
                b.ref.ln_gamma = w.get(p + ".layer_norm.weight");
                b.ref.ln_beta = w.get(p + ".layer_norm.bias");
            }
        }
        const auto p = detail::extractor_prefix(i);
        b.qkv = w.linear(p + ".W_qkv.weight", "", D, 3 * D);
        for (int h = 0; h < H; ++h) {
            const auto hs = std::to_string(h);
            HeadWeights hw;
            hw.w_o = w.linear(p + ".W_o." + hs + ".weight", "", b.hd, D);
            if (s.layer_norm) {
                hw.ln_gamma = w.get(p + ".layer_norm." + hs + ".weight");
                hw.ln_beta = w.get(p + ".layer_norm." + hs + ".bias");
            }
            hw.ffn1 = w.linear(p + ".ffn." + hs + ".0.weight", p + ".ffn." + hs + ".0.bias", D, 2 * D);
            hw.ffn2 = w.linear(p + ".ffn." + hs + ".2.weight", p + ".ffn." + hs + ".2.bias", 2 * D, D);
            const auto ta = p + ".target_attention." + hs;
            if (s.use_pos_emb) {
                hw.pos_emb = w.get(ta + ".pos_emb");
                hw.w_proj = w.linear(ta + ".W_proj.weight", ta + ".W_proj.bias", D + P, D);
            }
            hw.attn = detail::build_mlp(w, ta + ".attn_mlp", 4 * D, s.attention_units, s.attention_acts, s.attention_dropout,
                                        false, false);
            // Factorisation: a1(l, c) = u_c·(Wa+Wc)^T + (u_c ⊙ z_l)·Wd^T + g_l.
            const int A1 = hw.attn.hidden.empty() ? 1 : hw.attn.hidden[0].lin.out;
            b.A1 = A1;
            hw.k = darena.take(static_cast<std::size_t>(b.L) * D);
            hw.g0 = darena.take(static_cast<std::size_t>(b.L) * A1);
            if (!hw.attn.hidden.empty()) {
                float* w1 = hw.attn.hidden[0].lin.wt;  // [4D, A1]: Wa, Wb, Wc, Wd (transposed) → Wa+Wc, Wb−Wc, Wd, Wc
                const std::ptrdiff_t blk = static_cast<std::ptrdiff_t>(D) * A1;
                for (std::ptrdiff_t e = 0; e < blk; ++e) {
                    const float wc = w1[2 * blk + e];
                    w1[e] += wc;
                    w1[blk + e] -= wc;
                    w1[2 * blk + e] = w1[3 * blk + e];
                    w1[3 * blk + e] = wc;
                }
                hw.wac = w1;
                hw.wbcd = w1 + blk;
                hw.wd = w1 + 2 * blk;
                if (hw.pos_emb) {  // k_l = p_l·Wp^T + b_proj
                    kernels::gemm(b.L, D, P, hw.pos_emb, P, hw.w_proj.wt + static_cast<std::ptrdiff_t>(D) * D, D, hw.k, D,
                                  hw.w_proj.b, kernels::Init::bias);
                }
                kernels::gemm(b.L, A1, D, hw.k, D, hw.wac, A1, hw.g0, A1, hw.attn.hidden[0].lin.b, kernels::Init::bias);
            }
            b.heads.push_back(std::move(hw));
        }
        m.branches_.push_back(std::move(b));
    }

    // DNN: pieces in FuxiCTR order, then candidate pieces first in the permuted input.
    for (std::size_t i = 0; i < s.branches.size(); ++i) {
        const int D = s.branches[i].D;
        for (int h = 0; h < H; ++h) m.pieces_.push_back({DnnPiece::interest, static_cast<int>(i), h, 0, D, true, 0});
        if (s.sum_pooling) {
            m.pieces_.push_back({DnnPiece::sum_pool, static_cast<int>(i), 0, 0, D, false, 0});
            m.pieces_.push_back({DnnPiece::target_x_sum_pool, static_cast<int>(i), 0, 0, D, true, 0});
        }
    }
    for (std::size_t f = 0; f < s.features.size(); ++f) {
        const auto& x = s.features[f];
        if (x.type == FeatureType::sequence || !x.in_dnn) continue;
        m.pieces_.push_back({DnnPiece::feature, 0, 0, static_cast<int>(f), x.dim, x.role == Role::candidate, 0});
    }
    m.dnn_ = detail::build_mlp(w, "dnn", s.dnn_input_dim, s.dnn_units, s.dnn_acts, s.net_dropout, s.batch_norm,
                               s.bn_only_once);
    {
        int off = 0;
        for (int pass = 0; pass < 2; ++pass)
            for (auto& pc : m.pieces_)
                if (pc.per_candidate == (pass == 0)) {
                    pc.offset = off;
                    off += pc.width;
                    if (pass == 0) m.dnn_cand_width_ = off;
                }
        // Permute the rows of the first layer's W^T the same way.
        nn::Linear& first = m.dnn_.hidden.empty() ? m.dnn_.head : m.dnn_.hidden[0].lin;
        std::vector<float> tmp(first.wt, first.wt + static_cast<std::ptrdiff_t>(first.in) * first.out);
        int src = 0;
        for (const auto& pc : m.pieces_) {
            std::copy(tmp.begin() + static_cast<std::ptrdiff_t>(src) * first.out,
                      tmp.begin() + static_cast<std::ptrdiff_t>(src + pc.width) * first.out,
                      first.wt + static_cast<std::ptrdiff_t>(pc.offset) * first.out);
            src += pc.width;
        }
        for (auto& hl : m.dnn_.hidden) hl.lin.pack_panels(M::kDnnPanel);
    }
    if (options.self_test) self_test(m);
    return m;
}
DMIN_ISA_NAMESPACE_END

}  // namespace dmin
