// dmin/vocab.hpp — raw-token vocabularies (weights_format.md §5): map the ids a service has to model indices.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dmin/error.hpp"
#include "dmin/io/json.hpp"
#include "dmin/spec.hpp"

namespace dmin {

/// One feature's token → index map with FuxiCTR's rules: an unknown token maps to the OOV index;
/// a missing (empty) token maps to the OOV index for a categorical feature (FuxiCTR's fill_na) and to
/// the padding index inside a sequence.
class Vocabulary {
public:
    Vocabulary() = default;
    Vocabulary(const io::json& entry, const FeatureSpec& f, const std::string& where) {
        const io::Fields e{entry, where};
        const auto& tokens = e.at("tokens");
        if (!tokens.is_object()) e.bad("tokens", "an object {token: index}");
        oov_ = e.integer("oov_idx", 0, f.vocab_size - 1);
        pad_ = e.has("pad_idx") ? e.integer("pad_idx", 0, f.vocab_size - 1) : 0;
        for (auto it = tokens.begin(); it != tokens.end(); ++it) {
            if (!it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::int64_t>() >= f.vocab_size)
                detail::fail(where, ".tokens[\"", it.key(), "\"]: expected an index in [0, ", f.vocab_size, "), found ", it->dump());
            const auto idx = it->get<std::int64_t>();
            by_string_.emplace(it.key(), idx);
            std::int64_t as_int = 0;
            const char* b = it.key().data();
            const char* en = b + it.key().size();
            const auto r = std::from_chars(b, en, as_int);
            if (r.ec == std::errc() && r.ptr == en && std::to_string(as_int) == it.key()) by_int_.emplace(as_int, idx);
        }
    }

    /// Index of a raw string token; "" counts as missing.
    std::int64_t index(std::string_view token, bool in_sequence = false) const {
        if (token.empty()) return in_sequence ? pad_ : oov_;
        const auto it = by_string_.find(std::string(token));
        return it == by_string_.end() ? oov_ : it->second;
    }
    /// Index of a raw 64-bit integer token (matched against tokens that are decimal integers).
    std::int64_t index(std::int64_t token) const {
        const auto it = by_int_.find(token);
        return it == by_int_.end() ? oov_ : it->second;
    }
    std::int64_t oov_index() const noexcept { return oov_; }
    std::int64_t pad_index() const noexcept { return pad_; }
    std::size_t size() const noexcept { return by_string_.size(); }

private:
    std::unordered_map<std::string, std::int64_t> by_string_;
    std::unordered_map<std::int64_t, std::int64_t> by_int_;
    std::int64_t oov_ = 0, pad_ = 0;
};

/// Vocabularies of a model, per feature index (features sharing a table share its vocabulary).
class Vocabularies {
public:
    Vocabularies() = default;
    Vocabularies(const std::string& text, const ModelSpec& spec) {
        if (text.empty()) return;
        const auto doc = io::parse_strict(text, "vocab");
        if (!doc.is_object()) detail::fail("vocab: expected an object {feature: {tokens, oov_idx, pad_idx}}");
        std::vector<int> owner(spec.features.size(), -1);
        for (auto it = doc.begin(); it != doc.end(); ++it) {
            const int f = spec.feature_index(it.key());
            if (f < 0) detail::fail("vocab: unknown feature \"", it.key(), "\"");
            const auto& x = spec.features[static_cast<std::size_t>(f)];
            if (x.type == FeatureType::numeric) detail::fail("vocab: feature ", x.name, " is numeric");
            owner[static_cast<std::size_t>(f)] = static_cast<int>(vocabs_.size());
            vocabs_.emplace_back(*it, x, "vocab." + x.name);
        }
        // A feature without its own vocabulary uses the one of a feature sharing its table.
        for (std::size_t f = 0; f < spec.features.size(); ++f)
            if (owner[f] < 0)
                for (std::size_t g = 0; g < spec.features.size(); ++g)
                    if (owner[g] >= 0 && spec.features[g].table == spec.features[f].table) owner[f] = owner[g];
        owner_ = std::move(owner);
    }
    bool empty() const noexcept { return vocabs_.empty(); }
    /// The vocabulary of feature f, or null.
    const Vocabulary* of(int f) const {
        if (f < 0 || static_cast<std::size_t>(f) >= owner_.size() || owner_[static_cast<std::size_t>(f)] < 0) return nullptr;
        return &vocabs_[static_cast<std::size_t>(owner_[static_cast<std::size_t>(f)])];
    }

private:
    std::vector<Vocabulary> vocabs_;
    std::vector<int> owner_;
};

}  // namespace dmin
