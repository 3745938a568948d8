// dmin/load.hpp — dmin::load: read and validate a weights file, let each layer prepare its weights, replay
// the stored reference pair, return a const Model.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dmin/error.hpp"
#include "dmin/io/json.hpp"
#include "dmin/io/safetensors.hpp"
#include "dmin/kernels/bf16.hpp"
#include "dmin/kernels/cpu_features.hpp"
#include "dmin/kernels/isa_features.hpp"
#include "dmin/model.hpp"
#include "dmin/selftest.hpp"

namespace dmin {

/// Options for dmin::load.
struct LoadOptions {
    /// Replay the reference pair stored in the file (one reference forward pass per stored sample) and
    /// throw if a prediction differs beyond its tolerance. A file without a pair loads unverified.
    bool self_test = true;
    /// Embedding tables larger than this many bytes are used in place through a read-only private
    /// memory mapping of the file instead of being copied (0 = map every table; SIZE_MAX = copy all).
    /// A mapped file must not be modified in place while the model lives (replacing it by rename is safe).
    std::uint64_t map_tables_larger_than = std::uint64_t{256} << 20;
    /// Precision of the per-candidate products (dmin::Precision): a run-time choice, so one binary and
    /// one Model type serve both; the bf16 pairs are packed at load beside the float32 weights (which the
    /// user phase and score_reference keep using) only when bf16 is chosen. A build whose bf16 products
    /// use vdpbf16ps (-mavx512bf16) throws dmin::Error here on a CPU without AVX512_BF16; other builds
    /// widen bf16 to float32 in registers and run anywhere.
    Precision precision = Precision::float32;
    /// With Precision::bf16: the DNN's layers on bf16 operands too, not only the target attention's.
    /// Off by default: the DNN's rounding reaches the logit undamped (no softmax or average over
    /// positions follows it), and on the FuxiCTR cases it moved scores by up to 6.6e-3 (mean 1.7e-3)
    /// against 9e-4 (mean 4e-5) with the attention alone (weights_format.md §7), for ~13% of the
    /// per-candidate FLOPs of the paper shape.
    bool bf16_dnn = false;
    /// Keep the categorical and sequence embedding tables in bf16 (2 bytes per value) instead of
    /// float32: half the RAM for huge tables, and a BF16 table larger than map_tables_larger_than is
    /// used in place from the file's mapping. An F32 table is rounded to nearest even at load (its
    /// float32 copy exists only while it is converted). Off by default: rounding the embeddings moves
    /// scores (weights_format.md §7 has the measured figures); a file exported in BF16 scores the same
    /// with and without it. Independent of `precision`, which is about the products.
    bool bf16_tables = false;
};

/// Sets `options`' precision by the name the CLI's --precision and Python's precision= take: "float32"
/// (or "f32"), "bf16" (the target attention's products), "bf16-dnn" (the DNN's too: bf16_dnn).
inline void set_precision(LoadOptions& options, const std::string& name) {
    if (name != "float32" && name != "f32" && name != "bf16" && name != "bf16-dnn")
        throw Error("precision must be float32, bf16 or bf16-dnn, not '" + name + "'");
    options.precision = name == "bf16" || name == "bf16-dnn" ? Precision::bf16 : Precision::float32;
    options.bf16_dnn = name == "bf16-dnn";
}

/// Sets LoadOptions::bf16_tables by the name the CLI's --tables and Python's tables= take: "float32"
/// or "bf16".
inline void set_tables(LoadOptions& options, const std::string& name) {
    if (name != "float32" && name != "bf16") throw Error("tables must be float32 or bf16, not '" + name + "'");
    options.bf16_tables = name == "bf16";
}

/// The name set_precision takes for `options`' precision.
inline const char* precision_name(const LoadOptions& options) {
    return options.precision == Precision::bf16 && options.bf16_dnn ? "bf16-dnn" : precision_name(options.precision);
}

DMIN_ISA_NAMESPACE_BEGIN

/// Every tensor a spec requires, with its shape, in a stable order: each layer names its own.
inline std::vector<ExpectedTensor> expected_tensors(const ModelSpec& s) {
    using S = dynamic_shape;
    std::vector<ExpectedTensor> out;
    layers::Embedding::expect(s, out);
    for (std::size_t i = 0; i < s.branches.size(); ++i) {
        if (s.use_behavior_refiner) layers::BehaviorRefiner<S>::expect(s, i, out);
        layers::InterestHeads<S>::expect(s, i, out);
        for (int h = 0; h < s.num_heads; ++h) layers::TargetAttention<S>::expect(s, i, h, out);
    }
    layers::Dnn<S>::expect(s, out);
    return out;
}

/// The steps of dmin::load, each on the Model under construction (Model's friend).
struct ModelLoader {
    template <class M>
    static M load(const std::string& path, const LoadOptions& options) {
        require_cpu();
        io::SafetensorsFile file(path);
        M m;
        m.precision_ = options.precision;
        m.bf16_tables_ = options.bf16_tables;
        if (m.precision_ == Precision::bf16) check_bf16_cpu();
        read_metadata<typename M::shape>(file, m);
        check_tensors(file, m.spec_);
        const auto half = read_half_tables(file, options, m);
        const nn::TensorSource tensors(read_tensors(file, options, half, m));
        build_layers(tensors, half, options, m);
        if (options.self_test && !m.reference_.empty()) self_test(m);
        return m;
    }

private:
    /// This build's instruction set on this CPU, or a dmin::Error now rather than SIGILL in a kernel.
    /// (Code before this call may already use the wider instructions if the compiler chose them; for a
    /// fleet of mixed CPUs use dmin/dispatch.hpp.) AVX512_BF16 is left to check_bf16_cpu: only the bf16
    /// products use it, so such a build still scores in float32 on a CPU without it.
    static void require_cpu() {
        if (const unsigned missing = kernels::missing_features() & ~kernels::Feature::avx512_bf16)
            throw Error(std::string("this program was compiled for instruction set ") + kernels::isa_name + ", but this CPU lacks " +
                        kernels::feature_names(missing) + "; build it for this CPU, or with several instruction sets (dmin/dispatch.hpp)");
    }

    /// vdpbf16ps compiled in needs it on this CPU: a clear error instead of SIGILL.
    static void check_bf16_cpu() {
        if (!kernels::kBf16Native) return;
        const auto cpu = kernels::cpu_features();
        if (!cpu.avx512_bf16)
            dmin::detail::fail("precision bf16: this dmin build (", kernels::isa_name, ") uses the AVX512_BF16 instruction vdpbf16ps, "
                               "which this CPU does not have (it has: ", kernels::feature_names(kernels::feature_bits(cpu)), "); load with float32 precision, or use a build "
                               "without -mavx512bf16 (bf16 then widens to float32 in registers)");
    }

    template <class S, class M>
    static void read_metadata(const io::SafetensorsFile& file, M& m) {
        const std::string& path = file.path();
        auto it = file.metadata().find("format");
        if (it == file.metadata().end() || it->second != "dmin") dmin::detail::fail(path, ": not a dmin weights file (__metadata__.format must be \"dmin\")");
        const std::string& v = file.meta("format_version");
        if (v != "1") dmin::detail::fail(path, ": format_version ", v, " is not supported by this dmin (expected 1)");
        m.spec_ = parse_spec(io::parse_strict(file.meta("spec"), path + ": spec"), path + ": spec");
        if (auto mism = shape_mismatches<S>(m.spec_); !mism.empty()) {
            std::string msg = path + ": the file does not fit the compile-time shape: ";
            for (std::size_t i = 0; i < mism.size(); ++i) msg += (i ? "; " : "") + mism[i];
            throw Error(msg + " (use " + shape_type_for(m.spec_) + " or dmin::dynamic_shape)");
        }
        if (auto r = file.metadata().find("reference"); r != file.metadata().end()) m.reference_ = r->second;
        if (auto voc = file.metadata().find("vocab"); voc != file.metadata().end()) {
            m.vocab_ = voc->second;
            m.vocabularies_ = Vocabularies(m.vocab_, m.spec_);
        }
    }

    /// Every expected tensor present with its shape; nothing extra. Reports all problems at once.
    static void check_tensors(const io::SafetensorsFile& file, const ModelSpec& s) {
        std::vector<std::string> problems;
        std::map<std::string, bool> wanted;
        for (const auto& e : expected_tensors(s)) {
            wanted[e.name] = true;
            const auto* t = file.find(e.name);
            if (!t) problems.push_back("missing tensor " + e.name + " (expected shape " + dmin::detail::shape_str(e.shape) + ")");
            else if (t->shape != e.shape)
                problems.push_back("tensor " + e.name + ": expected shape " + dmin::detail::shape_str(e.shape) + ", found " + dmin::detail::shape_str(t->shape));
        }
        for (const auto& t : file.tensors())
            if (!wanted.count(t.name)) problems.push_back("unexpected tensor " + t.name + " (not used by the spec)");
        if (problems.empty()) return;
        std::string msg = file.path() + ": ";
        for (std::size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
        throw Error(msg);
    }

    /// Large embedding tables: used in place from a private read-only mapping (when F32, aligned and the
    /// host is little-endian; a BF16 table is widened into memory unless kept in bf16, read_half_tables).
    /// Everything else is copied into 64-byte-aligned storage, where the layers' prepare() may rewrite it
    /// (transposition, folding, packing).
    static std::map<std::string, bool> tables_to_map(const io::SafetensorsFile& file, const ModelSpec& s, const LoadOptions& o) {
        std::map<std::string, bool> mapped;
        for (const auto& x : s.features) {
            const auto* t = file.find(x.table);
            if (x.type != FeatureType::numeric && !o.bf16_tables && !t->bf16 && t->bytes > o.map_tables_larger_than &&
                t->begin % alignof(float) == 0 && io::kHostLittleEndian)
                mapped[x.table] = true;
        }
        return mapped;
    }

    template <class M>
    static void map_file(const io::SafetensorsFile& file, M& m) {
        if (!m.mapping_) m.mapping_ = std::make_shared<const io::FileMapping>(file.path(), file.file_size());
    }

    /// The file's tensors as float32, by name, except the tables kept in bf16 (`half`), which are only
    /// counted.
    template <class M>
    static std::map<std::string, float*> read_tensors(const io::SafetensorsFile& file, const LoadOptions& options,
                                                      const std::map<std::string, const std::uint16_t*>& half, M& m) {
        const auto mapped = tables_to_map(file, m.spec_, options);
        if (!mapped.empty()) map_file(file, m);
        Arena measure;
        for (const auto& t : file.tensors())
            if (!mapped.count(t.name) && !half.count(t.name)) measure.take(static_cast<std::size_t>(t.numel()));
        m.store_ = AlignedBuffer(measure.used());
        Arena arena(m.store_);
        std::map<std::string, float*> ptr;
        std::ifstream in(file.path(), std::ios::binary);
        if (!in) dmin::detail::fail(file.path(), ": cannot open file");
        for (const auto& t : file.tensors()) {
            const bool buffer = t.name.size() > 12 && (t.name.rfind("running_mean") == t.name.size() - 12 ||
                                                       t.name.rfind("running_var") == t.name.size() - 11);
            m.file_weight_bytes_ += t.bytes;
            if (!buffer) m.parameter_count_ += static_cast<std::size_t>(t.numel());
            if (half.count(t.name)) continue;
            if (mapped.count(t.name)) {
                const auto* p = reinterpret_cast<const float*>(m.mapping_->data() + t.begin);
                file.check_finite(t.name, p, static_cast<std::size_t>(t.numel()));
                ptr[t.name] = const_cast<float*>(p);  // tables are only read (kept as const views); the mapping is PROT_READ
                m.mapped_bytes_ += t.bytes;
                continue;
            }
            float* dst = arena.take(static_cast<std::size_t>(t.numel()));
            file.read_f32(in, t, dst);
            ptr[t.name] = dst;
        }
        return ptr;
    }

    /// LoadOptions::bf16_tables: the categorical and sequence tables as bf16, by tensor name. A BF16
    /// table larger than map_tables_larger_than is used in place from the mapping (2-byte aligned, on a
    /// little-endian host); the others are copied (BF16) or rounded to nearest even (F32) into memory.
    template <class M>
    static std::map<std::string, const std::uint16_t*> read_half_tables(const io::SafetensorsFile& file, const LoadOptions& o, M& m) {
        std::map<std::string, const std::uint16_t*> half;
        if (!o.bf16_tables) return half;
        std::ifstream in(file.path(), std::ios::binary);
        if (!in) dmin::detail::fail(file.path(), ": cannot open file");
        for (const auto& x : m.spec_.features) {
            if (x.type == FeatureType::numeric || half.count(x.table)) continue;
            const io::TensorInfo& t = *file.find(x.table);
            const auto n = static_cast<std::size_t>(t.numel());
            if (t.bf16 && t.bytes > o.map_tables_larger_than && t.begin % alignof(std::uint16_t) == 0 && io::kHostLittleEndian) {
                map_file(file, m);
                const auto* p = reinterpret_cast<const std::uint16_t*>(m.mapping_->data() + t.begin);
                check_finite_bf16(file, t.name, p, n);
                m.mapped_bytes_ += t.bytes;
                half[t.name] = p;
                continue;
            }
            m.table_words_.emplace_back(n);  // a vector's buffer survives the outer vector's growth
            read_bf16(file, in, t, m.table_words_.back().data());
            half[t.name] = m.table_words_.back().data();
        }
        return half;
    }

    /// Tensor t as bf16 words: BF16 as stored, F32 rounded to nearest even. A finite F32 value beyond
    /// bf16's range is an error, not an infinity.
    static void read_bf16(const io::SafetensorsFile& file, std::ifstream& in, const io::TensorInfo& t, std::uint16_t* dst) {
        const auto n = static_cast<std::size_t>(t.numel());
        if (t.bf16) {
            in.seekg(static_cast<std::streamoff>(t.begin));
            in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(t.bytes));
            if (!in) dmin::detail::fail(file.path(), ": truncated while reading tensor ", t.name);
            if constexpr (!io::kHostLittleEndian)
                for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<std::uint16_t>((dst[i] >> 8) | (dst[i] << 8));
            check_finite_bf16(file, t.name, dst, n);
            return;
        }
        std::vector<float> f(n);
        file.read_f32(in, t, f.data());  // rejects non-finite values
        for (std::size_t i = 0; i < n; ++i) {
            dst[i] = kernels::to_bf16(f[i]);
            if ((dst[i] & 0x7F80u) == 0x7F80u)
                dmin::detail::fail(file.path(), ": tensor ", t.name, ": value ", f[i], " at flat index ", i,
                                   " is beyond bf16's range (LoadOptions::bf16_tables)");
        }
    }

    static void check_finite_bf16(const io::SafetensorsFile& file, const std::string& name, const std::uint16_t* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            if ((p[i] & 0x7F80u) == 0x7F80u)
                dmin::detail::fail(file.path(), ": tensor ", name, " holds a non-finite value (", kernels::from_bf16(p[i]), ") at flat index ", i);
    }

    static layers::BranchDims dims(const ModelSpec& s, std::size_t i) {
        layers::BranchDims d;
        d.D = s.branches[i].D;
        d.L = s.branches[i].L;
        d.H = s.num_heads;
        d.hd = d.D / d.H;
        d.P = s.use_pos_emb ? s.pos_emb_dim : 0;  // the width the layers use (Shape's P: 0 without)
        d.A1 = s.attention_units.empty() ? 1 : s.attention_units[0];
        return d;
    }

    /// Each layer prepares its weights from the file's tensors.
    template <class M>
    static void build_layers(const nn::TensorSource& w, const std::map<std::string, const std::uint16_t*>& half, const LoadOptions& options,
                             M& m) {
        using S = typename M::shape;
        const ModelSpec& s = m.spec_;
        WordStore* bf16 = m.precision_ == Precision::bf16 ? &m.packed_ : nullptr;
        m.embedding_ = layers::Embedding::prepare(s, w, half);
        Arena measure;
        for (std::size_t i = 0; i < s.branches.size(); ++i)
            for (int h = 0; h < s.num_heads; ++h) {
                float *k, *g0;
                layers::TargetAttention<S>::take_derived(measure, dims(s, i), &k, &g0);
            }
        m.derived_ = AlignedBuffer(measure.used());
        Arena derived(m.derived_);
        for (std::size_t i = 0; i < s.branches.size(); ++i) {
            BranchWeights b;
            static_cast<layers::BranchDims&>(b) = dims(s, i);
            b.refiner = s.use_behavior_refiner;
            if (b.refiner) b.ref = layers::BehaviorRefiner<S>::prepare(s, i, w);
            b.interest = layers::InterestHeads<S>::prepare(s, i, w);
            for (int h = 0; h < s.num_heads; ++h) b.target.push_back(layers::TargetAttention<S>::prepare(s, i, h, b, w, derived, bf16));
            m.branches_.push_back(std::move(b));
        }
        m.dnn_ = layers::Dnn<S>::prepare(s, w, m.embedding_, options.bf16_dnn ? bf16 : nullptr);
    }
};

/// Loads and validates a weights file into a Model (throws dmin::Error naming the tensor or field, what
/// was expected and what was found). The file must fit M's compile-time shape.
template <class M = Model<dynamic_shape>>
M load(const std::string& path, const LoadOptions& options = {}) {
    return ModelLoader::load<M>(path, options);
}

DMIN_ISA_NAMESPACE_END
}  // namespace dmin
