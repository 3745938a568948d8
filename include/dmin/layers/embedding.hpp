// dmin/layers/embedding.hpp — the embedding layer: tables (shared by name), where each feature sits in a
// sample, lookups of categorical ids, numeric values times their embedding, tuple groups gathered into rows.
#pragma once

#include "dmin/kernels/isa.hpp"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dmin/candidates.hpp"
#include "dmin/error.hpp"
#include "dmin/kernels/bf16.hpp"
#include "dmin/kernels/rowops.hpp"
#include "dmin/nn/mlp_block.hpp"
#include "dmin/spec.hpp"

namespace dmin {

/// Where a feature's value lives in a sample: ids[] for categorical / sequence, values[] for numeric.
struct FeatureSlot {
    int offset = 0;        ///< into ids (categorical: 1 id; sequence: max_len ids) or values (numeric: 1)
    int cand_offset = -1;  ///< candidate features: offset into a candidate row (ids or values)
};

namespace layers {
DMIN_ISA_NAMESPACE_BEGIN

/// The one id-range check: every id a request or candidate carries must index its table.
inline void check_id(const FeatureSpec& x, std::int64_t id) {
    if (id < 0 || id >= x.vocab_size) detail::fail("feature ", x.name, ": id ", id, " out of range [0, ", x.vocab_size, ")");
}

/// An embedding table as the layers read it: float32 rows, or with LoadOptions::bf16_tables bf16 rows
/// (categorical and sequence tables only), widened to float32 as they are gathered. Widening is exact,
/// so a bf16 table changes scores only by the rounding of its stored values; everything downstream of
/// the gather is the same float32 (or bf16-precision) code.
struct Table {
    const float* f32 = nullptr;
    const std::uint16_t* bf16 = nullptr;

    /// Row `id` of `width` values into dst.
    void row(std::int64_t id, int width, float* dst) const {
        if (bf16) kernels::widen_bf16(bf16 + id * width, width, dst);
        else kernels::copy_floats(f32 + id * width, width, dst);
    }
};

/// One field of a branch's target tuple: its table, its slot in a candidate row (−1: a request feature,
/// at request_offset of the request's ids) and its offset in the target embedding t.
struct TargetField {
    Table table;
    int cand_offset, request_offset, dst;
};

/// Embedding tables and the sample layout: which table each feature reads, where its value sits.
struct EmbeddingWeights {
    std::vector<Table> tables;  ///< per feature: [vocab, dim] row-major, or the numeric weight [dim] (float32)
    std::vector<FeatureSlot> slots;
    std::vector<std::vector<TargetField>> targets;  ///< per branch
    int num_ids = 0, num_values = 0, num_cand_ids = 0, num_cand_values = 0;
    int E = 0;  ///< embedding_dim: the width of one field of a tuple group
};

/// The embedding layer. Stateless: a request's ids and values are the caller's.
class Embedding {
public:
    /// The tables a spec requires (a shared table once).
    static void expect(const ModelSpec& s, std::vector<ExpectedTensor>& out) {
        std::map<std::string, bool> seen;
        for (const auto& f : s.features) {
            if (seen.count(f.table)) continue;
            seen[f.table] = true;
            if (f.type == FeatureType::numeric) out.push_back({f.table, {f.dim, 1}});
            else out.push_back({f.table, {f.vocab_size, f.dim}});
        }
    }

    /// `half`: the tables the loader kept in bf16 (LoadOptions::bf16_tables), by tensor name; the rest
    /// come from `w` in float32.
    static EmbeddingWeights prepare(const ModelSpec& s, const nn::TensorSource& w, const std::map<std::string, const std::uint16_t*>& half) {
        EmbeddingWeights e;
        e.E = s.embedding_dim;
        for (const auto& x : s.features) {
            const auto h = half.find(x.table);
            e.tables.push_back(h != half.end() ? Table{nullptr, h->second} : Table{w.get(x.table), nullptr});
            FeatureSlot slot;
            const bool cand = x.role == Role::candidate;
            if (x.type == FeatureType::numeric) {
                slot.offset = e.num_values++;
                if (cand) slot.cand_offset = e.num_cand_values++;
            } else {
                slot.offset = e.num_ids;
                e.num_ids += x.type == FeatureType::sequence ? x.max_len : 1;
                if (cand) slot.cand_offset = e.num_cand_ids++;
            }
            e.slots.push_back(slot);
        }
        for (const auto& b : s.branches) {
            e.targets.emplace_back();
            for (std::size_t k = 0; k < b.target.size(); ++k) {
                const auto& sl = e.slots[static_cast<std::size_t>(b.target[k])];
                e.targets.back().push_back({e.tables[static_cast<std::size_t>(b.target[k])], sl.cand_offset, sl.offset, static_cast<int>(k) * e.E});
            }
        }
        return e;
    }

    /// Branch i's target embedding t (D floats: the target fields' embeddings, concatenated) for one
    /// candidate row `cid`; a target declared as a request feature takes the request's id.
    static void gather_target(const EmbeddingWeights& w, std::size_t i, const std::int64_t* cid, const std::int64_t* request_ids,
                              float* t) {
        for (const auto& tf : w.targets[i]) {
            const auto id = tf.cand_offset >= 0 ? cid[tf.cand_offset] : request_ids[tf.request_offset];
            tf.table.row(id, w.E, t + tf.dst);
        }
    }

    /// Target embeddings of branch i for `rows` lanes, candidate-major ([rows][D], row c at t + c·D):
    /// candidates first .. first+n-1, and the lanes past n repeat the last one so that a full-width
    /// lane kernel reads only real embeddings.
    static void gather_target_rows(const EmbeddingWeights& w, std::size_t i, const Candidates& cands, std::size_t first, int n,
                                   int rows, const std::int64_t* request_ids, int D, float* t) {
        for (int c = 0; c < rows; ++c) {
            const std::size_t cand = first + static_cast<std::size_t>(std::min(c, n - 1));
            gather_target(w, i, cands.ids + cand * cands.id_stride, request_ids, t + static_cast<std::ptrdiff_t>(c) * D);
        }
    }

    /// A tuple group's embedding for a sequence of L positions: row l is the concatenation of the
    /// group's fields at position l ([L, D] row-major, D = E·fields). `ids` is a request's id array.
    static void gather_sequence(const EmbeddingWeights& w, const BranchSpec& b, const std::int64_t* ids, int L, float* rows) {
        const int E = w.E, D = b.D;
        for (std::size_t k = 0; k < b.sequence.size(); ++k) {
            const int f = b.sequence[k];
            const Table& tab = w.tables[static_cast<std::size_t>(f)];
            const int off = w.slots[static_cast<std::size_t>(f)].offset;
            for (int l = 0; l < L; ++l) tab.row(ids[off + l], E, rows + static_cast<std::ptrdiff_t>(l) * D + static_cast<std::ptrdiff_t>(k) * E);
        }
    }

    /// Sequence positions of branch b that are not padding (id 0 in the group's first field), in order;
    /// pad[l] = 1 at padding positions, 0 elsewhere. Returns their count.
    static int valid_positions(const EmbeddingWeights& w, const BranchSpec& b, const std::int64_t* ids, int L, int* valid,
                               float* pad) {
        const int off = w.slots[static_cast<std::size_t>(b.sequence[0])].offset;
        int nv = 0;
        for (int l = 0; l < L; ++l) {
            const bool is_pad = ids[off + l] == 0;
            pad[l] = is_pad ? 1.0f : 0.0f;
            if (!is_pad) valid[nv++] = l;
        }
        return nv;
    }

    /// Copies a request's user/context features (ids of categorical and sequence features, numeric
    /// values) into ids/values, checking each: an id outside [0, vocab) or a non-finite value throws.
    static void read_request(const ModelSpec& s, const EmbeddingWeights& w, const SampleView& sample, std::int64_t* ids, float* values) {
        for (std::size_t f = 0; f < s.features.size(); ++f) {
            const auto& x = s.features[f];
            if (x.role == Role::candidate) continue;
            const int at = w.slots[f].offset;
            if (x.type == FeatureType::numeric) {
                const float v = sample.values[at];
                if (!std::isfinite(v)) detail::fail("feature ", x.name, ": numeric value ", v, " is not finite");
                values[at] = v;
                continue;
            }
            const int n = x.type == FeatureType::sequence ? x.max_len : 1;
            for (int k = 0; k < n; ++k) {
                check_id(x, sample.ids[at + k]);
                ids[at + k] = sample.ids[at + k];
            }
        }
    }

    /// The candidate-role features of a full sample as one candidate row (ids, values: the row).
    static void candidate_row(const ModelSpec& s, const EmbeddingWeights& w, const SampleView& sample, std::int64_t* ids, float* values) {
        for (std::size_t f = 0; f < s.features.size(); ++f) {
            if (s.features[f].role != Role::candidate) continue;
            const auto& sl = w.slots[f];
            if (s.features[f].type == FeatureType::numeric) values[sl.cand_offset] = sample.values[sl.offset];
            else ids[sl.cand_offset] = sample.ids[sl.offset];
        }
    }

    /// Checks a candidate view (pointers, strides) and, with `rows`, every row's candidate features,
    /// naming the candidate and the feature.
    static void check_candidates(const ModelSpec& s, const EmbeddingWeights& w, const Candidates& cands, bool rows) {
        const auto nid = static_cast<std::size_t>(w.num_cand_ids), nval = static_cast<std::size_t>(w.num_cand_values);
        if (cands.count == 0) return;
        if (nid > 0 && !cands.ids) detail::fail("candidates: ids is null");
        if (nval > 0 && !cands.values) detail::fail("candidates: values is null");
        if (cands.id_stride < nid) detail::fail("candidates: id_stride ", cands.id_stride, " is smaller than the ", nid, " ids of a row");
        if (cands.value_stride < nval)
            detail::fail("candidates: value_stride ", cands.value_stride, " is smaller than the ", nval, " values of a row");
        if (!rows) return;
        for (std::size_t c = 0; c < cands.count; ++c)
            for (std::size_t f = 0; f < s.features.size(); ++f) {
                const auto& x = s.features[f];
                if (x.role != Role::candidate) continue;
                const auto off = static_cast<std::size_t>(w.slots[f].cand_offset);
                try {
                    if (x.type != FeatureType::numeric) check_id(x, cands.ids[c * cands.id_stride + off]);
                    else if (const float v = cands.values[c * cands.value_stride + off]; !std::isfinite(v))
                        detail::fail("feature ", x.name, ": numeric value ", v, " is not finite");
                } catch (const Error& e) {
                    detail::fail("candidate ", c, ", ", e.what());
                }
            }
    }

    /// One field's embedding into dst (width = the feature's dim): a categorical row, or a numeric
    /// value times its weight vector (always float32). Per-candidate rows are short: Table::row copies
    /// with copy_floats, which avoids a memmove call.
    static void field(const Table& table, bool numeric, std::int64_t id, float value, int width, float* dst) {
        if (numeric)
            for (int d = 0; d < width; ++d) dst[d] = value * table.f32[d];
        else
            table.row(id, width, dst);
    }
};

DMIN_ISA_NAMESPACE_END
}  // namespace layers
}  // namespace dmin
