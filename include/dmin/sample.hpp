// dmin/sample.hpp — owning samples in the model's layout, built by feature name or from JSON, with validation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dmin/error.hpp"
#include "dmin/io/json.hpp"
#include "dmin/model.hpp"
#include "dmin/scorer.hpp"

namespace dmin {

/// What to do with a sequence longer than max_len (FuxiCTR's preprocessing truncates:
/// padding "post" keeps the first max_len ids, "pre" keeps the last).
enum class OverlongPolicy { error, keep_first, keep_last };

/// One sample (user, context and candidate features) in a model's layout; the convenience path.
class Sample {
public:
    template <class M>
    explicit Sample(const M& model)
        : spec_(&model.spec()), vocabs_(&model.vocabularies()), ids_(static_cast<std::size_t>(model.num_ids()), 0),
          values_(static_cast<std::size_t>(model.num_values()), 0.0f), set_(model.spec().features.size(), false) {
        for (std::size_t f = 0; f < spec_->features.size(); ++f) slots_.push_back(model.slot(static_cast<int>(f)));
    }

    /// Sets a categorical id. Throws on unknown feature, wrong type, id outside [0, vocab).
    Sample& set(const std::string& name, std::int64_t id) {
        const auto f = index(name);
        const auto& x = spec_->features[f];
        if (x.type == FeatureType::numeric) return set_value(name, static_cast<double>(id));
        if (x.type != FeatureType::categorical) detail::fail("feature ", name, ": expected a list of ids (", to_string(x.type), ")");
        check_id(x, id);
        ids_[static_cast<std::size_t>(slots_[f].offset)] = id;
        set_[f] = true;
        return *this;
    }
    /// Sets a numeric value. Throws on NaN / Inf.
    Sample& set_value(const std::string& name, double v) {
        const auto f = index(name);
        const auto& x = spec_->features[f];
        if (x.type != FeatureType::numeric) detail::fail("feature ", name, ": expected an integer id (", to_string(x.type), ")");
        if (!std::isfinite(v)) detail::fail("feature ", name, ": numeric value ", v, " is not finite");
        values_[static_cast<std::size_t>(slots_[f].offset)] = static_cast<float>(v);
        set_[f] = true;
        return *this;
    }
    /// Sets a sequence: shorter lists are padded with 0 at the end; longer ones follow `policy`.
    Sample& set(const std::string& name, const std::vector<std::int64_t>& seq, OverlongPolicy policy = OverlongPolicy::error) {
        const auto f = index(name);
        const auto& x = spec_->features[f];
        if (x.type != FeatureType::sequence) detail::fail("feature ", name, ": expected a single value (", to_string(x.type), ")");
        const auto L = static_cast<std::size_t>(x.max_len);
        std::size_t from = 0;
        if (seq.size() > L) {
            if (policy == OverlongPolicy::error)
                detail::fail("feature ", name, ": sequence of length ", seq.size(), " exceeds max_len ", L);
            if (policy == OverlongPolicy::keep_last) from = seq.size() - L;
        }
        const std::size_t n = std::min(L, seq.size());
        for (std::size_t k = 0; k < L; ++k) {
            const std::int64_t id = k < n ? seq[from + k] : 0;
            check_id(x, id);
            ids_[static_cast<std::size_t>(slots_[f].offset) + k] = id;
        }
        set_[f] = true;
        return *this;
    }

    /// Sets a categorical feature from a raw token through the model's vocabulary (FuxiCTR's rules:
    /// unknown or empty → OOV index). Throws if the model carries no vocabulary for the feature.
    Sample& set_raw(const std::string& name, std::string_view token) {
        return set(name, vocab(name).index(token, false));
    }
    Sample& set_raw(const std::string& name, std::int64_t token) { return set(name, vocab(name).index(token)); }
    /// Sets a sequence from raw tokens (unknown → OOV, empty → padding), then as set(name, ids, policy).
    Sample& set_raw(const std::string& name, const std::vector<std::string>& tokens, OverlongPolicy policy = OverlongPolicy::error) {
        const auto& v = vocab(name);
        std::vector<std::int64_t> ids;
        ids.reserve(tokens.size());
        for (const auto& t : tokens) ids.push_back(v.index(t, true));
        return set(name, ids, policy);
    }

    /// Throws naming the first feature never set.
    void require_complete() const {
        for (std::size_t f = 0; f < set_.size(); ++f)
            if (!set_[f]) detail::fail("feature ", spec_->features[f].name, ": missing");
    }

    SampleView view() const { return {ids_.data(), values_.data()}; }
    const std::vector<std::int64_t>& ids() const { return ids_; }
    const std::vector<float>& values() const { return values_; }

private:
    std::size_t index(const std::string& name) const {
        for (std::size_t f = 0; f < spec_->features.size(); ++f)
            if (spec_->features[f].name == name) return f;
        detail::fail("unknown feature \"", name, "\"");
    }
    const Vocabulary& vocab(const std::string& name) const {
        const auto* v = vocabs_->of(static_cast<int>(index(name)));
        if (!v) detail::fail("feature ", name, ": the model carries no vocabulary for raw tokens (export with --vocab)");
        return *v;
    }
    static void check_id(const FeatureSpec& x, std::int64_t id) {
        if (id < 0 || id >= x.vocab_size) detail::fail("feature ", x.name, ": id ", id, " out of range [0, ", x.vocab_size, ")");
    }

    const ModelSpec* spec_;
    const Vocabularies* vocabs_;
    std::vector<FeatureSlot> slots_;
    std::vector<std::int64_t> ids_;
    std::vector<float> values_;
    std::vector<bool> set_;
};

/// N candidates' rows (the candidate-role features) built by feature name; the convenience path
/// for dmin::Scorer::score. view() is valid while the batch lives and is not resized.
class CandidateBatch {
public:
    template <class M>
    CandidateBatch(const M& model, std::size_t n)
        : spec_(&model.spec()), vocabs_(&model.vocabularies()), n_(n),
          id_stride_(static_cast<std::size_t>(std::max(1, model.num_candidate_ids()))),
          value_stride_(static_cast<std::size_t>(std::max(1, model.num_candidate_values()))),
          ids_(n * id_stride_, 0), values_(n * value_stride_, 0.0f) {
        for (std::size_t f = 0; f < spec_->features.size(); ++f) offsets_.push_back(model.slot(static_cast<int>(f)).cand_offset);
    }

    /// Sets candidate c's categorical feature `name` (must have role candidate; id in [0, vocab)).
    CandidateBatch& set(std::size_t c, const std::string& name, std::int64_t id) {
        const auto& [f, off] = locate(c, name, FeatureType::categorical);
        if (id < 0 || id >= f.vocab_size) detail::fail("candidate ", c, ", feature ", name, ": id ", id, " out of range [0, ", f.vocab_size, ")");
        ids_[c * id_stride_ + off] = id;
        return *this;
    }
    /// Sets candidate c's numeric feature `name` (finite).
    CandidateBatch& set_value(std::size_t c, const std::string& name, double v) {
        const auto off = locate(c, name, FeatureType::numeric).second;
        if (!std::isfinite(v)) detail::fail("candidate ", c, ", feature ", name, ": numeric value ", v, " is not finite");
        values_[c * value_stride_ + off] = static_cast<float>(v);
        return *this;
    }
    /// Sets candidate c's categorical feature from a raw token through the model's vocabulary.
    CandidateBatch& set_raw(std::size_t c, const std::string& name, std::string_view token) {
        return set(c, name, vocab(name).index(token, false));
    }
    CandidateBatch& set_raw(std::size_t c, const std::string& name, std::int64_t token) {
        return set(c, name, vocab(name).index(token));
    }

    std::size_t size() const noexcept { return n_; }
    Candidates view() const { return Candidates{n_, ids_.data(), id_stride_, values_.data(), value_stride_}; }

private:
    std::pair<const FeatureSpec&, std::size_t> locate(std::size_t c, const std::string& name, FeatureType type) const {
        if (c >= n_) detail::fail("candidate ", c, " out of range (", n_, " candidates)");
        const int f = spec_->feature_index(name);
        if (f < 0) detail::fail("unknown feature \"", name, "\"");
        const auto& x = spec_->features[static_cast<std::size_t>(f)];
        if (x.role != Role::candidate) detail::fail("feature ", name, ": not a candidate feature (role ", to_string(x.role), ")");
        if (x.type != type) detail::fail("feature ", name, ": is ", to_string(x.type));
        return {x, static_cast<std::size_t>(offsets_[static_cast<std::size_t>(f)])};
    }
    const Vocabulary& vocab(const std::string& name) const {
        const auto* v = vocabs_->of(spec_->feature_index(name));
        if (!v) detail::fail("feature ", name, ": the model carries no vocabulary for raw tokens (export with --vocab)");
        return *v;
    }

    const ModelSpec* spec_;
    const Vocabularies* vocabs_;
    std::size_t n_, id_stride_, value_stride_;
    std::vector<std::int64_t> ids_;
    std::vector<float> values_;
    std::vector<int> offsets_;
};

/// Builds a Sample from a JSON object {feature: id | number | [ids]}. When the model carries a
/// vocabulary for a feature, string values (or lists of strings) are raw tokens mapped through it.
/// Errors name the feature; callers prefix the sample index.
template <class M>
Sample sample_from_json(const M& model, const io::json& obj, OverlongPolicy policy = OverlongPolicy::error) {
    if (!obj.is_object()) detail::fail("expected an object {feature: value}, found ", obj.type_name());
    Sample s(model);
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        const int f = model.spec().feature_index(it.key());
        if (f < 0) detail::fail("unknown feature \"", it.key(), "\"");
        const auto& x = model.spec().features[static_cast<std::size_t>(f)];
        const auto& v = *it;
        switch (x.type) {
            case FeatureType::categorical:
                if (v.is_string() && model.vocabularies().of(f)) {  // raw token through the vocabulary
                    s.set_raw(x.name, v.get<std::string>());
                    break;
                }
                if (!v.is_number_integer()) detail::fail("feature ", x.name, ": expected an integer id, found ", v.dump());
                s.set(x.name, v.get<std::int64_t>());
                break;
            case FeatureType::numeric:
                if (!v.is_number()) detail::fail("feature ", x.name, ": expected a number, found ", v.dump());
                s.set_value(x.name, v.get<double>());
                break;
            case FeatureType::sequence: {
                if (!v.is_array()) detail::fail("feature ", x.name, ": expected a list of ids, found ", v.dump());
                if (!v.empty() && v[0].is_string() && model.vocabularies().of(f)) {  // raw tokens
                    std::vector<std::string> tokens;
                    for (const auto& e : v) {
                        if (!e.is_string()) detail::fail("feature ", x.name, ": expected a list of raw tokens, found ", e.dump());
                        tokens.push_back(e.get<std::string>());
                    }
                    s.set_raw(x.name, tokens, policy);
                    break;
                }
                std::vector<std::int64_t> ids;
                for (const auto& e : v) {
                    if (!e.is_number_integer()) detail::fail("feature ", x.name, ": expected a list of integer ids, found ", e.dump());
                    ids.push_back(e.get<std::int64_t>());
                }
                s.set(x.name, ids, policy);
                break;
            }
        }
    }
    s.require_complete();
    return s;
}

/// Parses {"samples": [...]} into samples; errors are prefixed with "sample <i>: ".
template <class M>
std::vector<Sample> samples_from_json(const M& model, const io::json& doc, OverlongPolicy policy = OverlongPolicy::error) {
    if (!doc.is_object() || !doc.contains("samples") || !doc.at("samples").is_array())
        detail::fail("input: expected {\"samples\": [ {feature: value, ...}, ... ]}");
    std::vector<Sample> out;
    std::size_t i = 0;
    for (const auto& e : doc.at("samples")) {
        try {
            out.push_back(sample_from_json(model, e, policy));
        } catch (const Error& err) {
            detail::fail("sample ", i, ": ", err.what());
        }
        ++i;
    }
    return out;
}

}  // namespace dmin
