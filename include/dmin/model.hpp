// dmin/model.hpp — dmin::Model<Shape>: the immutable, thread-shareable DMIN network: its spec and each
// layer's const weights. Built by dmin::load (dmin/load.hpp); nothing here computes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dmin/aligned.hpp"
#include "dmin/io/safetensors.hpp"
#include "dmin/kernels/isa.hpp"
#include "dmin/layers/dnn.hpp"
#include "dmin/layers/embedding.hpp"
#include "dmin/layers/interest_heads.hpp"
#include "dmin/layers/self_attention.hpp"
#include "dmin/layers/target_attention.hpp"
#include "dmin/shape.hpp"
#include "dmin/spec.hpp"
#include "dmin/vocab.hpp"

namespace dmin {

/// The precision of the per-candidate products (LoadOptions::precision). float32: every product in
/// float32. bf16: the target attention's layers (and the DNN's with LoadOptions::bf16_dnn) multiply bf16
/// operands (weights packed at load, activations rounded where they enter a product) with float32
/// accumulation; everything else, and the user phase, stays float32 (weights_format.md §7).
enum class Precision { float32, bf16 };

inline const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "float32"; }

/// The bound bf16 scoring keeps to against float32 scoring, per candidate (max) and over a case (mean):
/// tests/test_bf16.cpp asserts it on every FuxiCTR case, random reference configuration and the world
/// model (weights_format.md §7 has the measured figures).
inline constexpr double kBf16MaxAbsDiff = 2e-3;
inline constexpr double kBf16MeanAbsDiff = 2e-4;
/// The wider bound of LoadOptions::bf16_dnn (the DNN's products in bf16 too), on trained models: the
/// DNN's rounding reaches the logit undamped (weights_format.md §7). tests/test_bf16.cpp asserts it on
/// every FuxiCTR case.
inline constexpr double kBf16DnnMaxAbsDiff = 1e-2;
inline constexpr double kBf16DnnMeanAbsDiff = 3e-3;
/// The bound of LoadOptions::bf16_tables (the embedding tables rounded to bf16, the products in float32)
/// against float32 tables, per candidate (max) and over a case (mean). Wider than bf16 precision's: every
/// embedding, the user's sequence included, carries its rounding into every layer, where bf16 precision
/// rounds only the per-candidate products' operands. tests/test_bf16.cpp asserts it on every FuxiCTR case
/// and the world model (weights_format.md §7 has the measured figures).
inline constexpr double kBf16TablesMaxAbsDiff = 5e-3;
inline constexpr double kBf16TablesMeanAbsDiff = 1e-3;
/// The self-test's tolerance for the fast path in bf16 mode (and for both paths with bf16 tables). Wider than the bound: the self-test runs on
/// whatever model a file holds, and untrained random weights (benchmark models) have attention logits
/// large enough to move a score by up to ~7e-3 in bf16. A broken packing moves scores by far more.
inline constexpr double kBf16SelfTestTolerance = 2e-2;

// The weights hold nn::Linear and nn::Mlp, whose code depends on the instruction set (kernels/isa.hpp),
// and Model<S> carries the instruction set into every template instantiated with it (Scorer<Model<S>>).
DMIN_ISA_NAMESPACE_BEGIN

/// One DMIN branch (a target group and a sequence group): its sizes and its layers' weights.
struct BranchWeights : layers::BranchDims {
    bool refiner = false;
    layers::RefinerWeights ref;
    layers::InterestHeadsWeights interest;
    std::vector<layers::TargetAttentionWeights> target;  ///< per head
};

struct ModelLoader;  // dmin/load.hpp

/// Immutable DMIN network. Construct with dmin::load<Model<S>>(path) (dmin/load.hpp). All member
/// functions are const and safe to call from many threads at once; per-request state lives in dmin::Scorer.
template <class S = dynamic_shape>
class Model {
public:
    using shape = S;

    const ModelSpec& spec() const noexcept { return spec_; }
    const std::vector<BranchWeights>& branches() const noexcept { return branches_; }
    const layers::EmbeddingWeights& embedding() const noexcept { return embedding_; }
    const layers::DnnWeights& dnn() const noexcept { return dnn_; }

    /// Embedding table of feature f ([vocab, dim] row-major, float32 or with LoadOptions::bf16_tables
    /// bf16), or the numeric weight [dim].
    const layers::Table& table(int f) const { return embedding_.tables[static_cast<std::size_t>(f)]; }
    const FeatureSlot& slot(int f) const { return embedding_.slots[static_cast<std::size_t>(f)]; }
    int num_ids() const noexcept { return embedding_.num_ids; }
    int num_values() const noexcept { return embedding_.num_values; }
    int num_candidate_ids() const noexcept { return embedding_.num_cand_ids; }
    int num_candidate_values() const noexcept { return embedding_.num_cand_values; }

    /// The reference pair stored in the file (weights_format.md §4), as JSON text ("" when absent).
    const std::string& reference_json() const noexcept { return reference_; }
    /// Optional vocabularies (weights_format.md §5), as JSON text ("" when absent).
    const std::string& vocab_json() const noexcept { return vocab_; }
    /// Raw token → index maps parsed from vocab_json() (empty when the file has none).
    const Vocabularies& vocabularies() const noexcept { return vocabularies_; }
    /// The precision chosen at load (LoadOptions::precision).
    Precision precision() const noexcept { return precision_; }
    /// Whether the categorical and sequence tables are kept in bf16 (LoadOptions::bf16_tables).
    bool bf16_tables() const noexcept { return bf16_tables_; }
    /// Bytes of weights held (file tensors, load-time derived tensors, bf16 packed weights and tables).
    std::size_t resident_bytes() const noexcept {
        std::size_t words = 0;
        for (const auto& t : table_words_) words += t.size();
        return (store_.size() + derived_.size()) * sizeof(float) + packed_.bytes() + words * sizeof(std::uint16_t);
    }
    /// Bytes of embedding tables used in place from a memory mapping of the file (not in resident_bytes()).
    std::size_t mapped_bytes() const noexcept { return mapped_bytes_; }
    std::size_t file_weight_bytes() const noexcept { return file_weight_bytes_; }
    /// Trainable parameters (BatchNorm/Dice running statistics excluded; shared tables once), as FuxiCTR counts.
    std::size_t parameter_count() const noexcept { return parameter_count_; }

private:
    friend struct ModelLoader;

    ModelSpec spec_;
    AlignedBuffer store_;    // file tensors (each layer's prepare() rewrites its own in place)
    AlignedBuffer derived_;  // load-time derived tensors (the target attention's k and g0)
    WordStore packed_;       // bf16 precision: the per-candidate products' weights as bf16 pairs (empty in float32)
    std::vector<std::vector<std::uint16_t>> table_words_;  // LoadOptions::bf16_tables: tables kept in bf16 (not mapped)
    Precision precision_ = Precision::float32;
    bool bf16_tables_ = false;
    layers::EmbeddingWeights embedding_;
    std::vector<BranchWeights> branches_;
    layers::DnnWeights dnn_;
    std::string reference_, vocab_;
    std::size_t file_weight_bytes_ = 0, parameter_count_ = 0, mapped_bytes_ = 0;
    std::shared_ptr<const io::FileMapping> mapping_;  // large tables used in place
    Vocabularies vocabularies_;
};

DMIN_ISA_NAMESPACE_END
}  // namespace dmin
