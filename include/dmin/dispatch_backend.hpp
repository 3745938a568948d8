// dmin/dispatch_backend.hpp — one instruction set's build of dmin for dmin/dispatch.hpp. Include it in
// a translation unit compiled with that set's flags and expand DMIN_DISPATCH_BACKEND once there
// (cmake/dmin_multi_isa.cmake generates such units).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "dmin/dispatch.hpp"
#include "dmin/flops.hpp"
#include "dmin/kernels/isa.hpp"
#include "dmin/kernels/isa_features.hpp"
#include "dmin/load.hpp"
#include "dmin/scorer.hpp"
#include "dmin/selftest.hpp"

namespace dmin::dispatch {
// In the instruction set's namespace: every backend's classes, vtables and functions are its own.
DMIN_ISA_NAMESPACE_BEGIN

class ScorerBackend final : public ScorerImpl {
public:
    explicit ScorerBackend(const ::dmin::Model<>& model) : s_(model) {}
    void set_user(const SampleView& sample) override { s_.set_user(sample); }
    void score(const Candidates& cands, float* out) override { s_.score(cands, out); }
    float predict(const SampleView& sample) override { return s_.predict(sample); }
    Candidates candidate_from(const SampleView& sample) override { return s_.candidate_from(sample); }
    Explanation explain(const Candidates& cands, std::size_t c) override { return s_.explain(cands, c); }

private:
    ::dmin::Scorer<::dmin::Model<>> s_;
};

class ModelBackend final : public ModelImpl {
public:
    explicit ModelBackend(::dmin::Model<>&& model) : m_(std::move(model)) {
        f_.spec = &m_.spec();
        f_.slots = &m_.embedding().slots;
        f_.vocabularies = &m_.vocabularies();
        f_.reference_json = &m_.reference_json();
        f_.vocab_json = &m_.vocab_json();
        f_.num_ids = m_.num_ids(), f_.num_values = m_.num_values();
        f_.num_candidate_ids = m_.num_candidate_ids(), f_.num_candidate_values = m_.num_candidate_values();
        f_.resident_bytes = m_.resident_bytes(), f_.mapped_bytes = m_.mapped_bytes();
        f_.file_weight_bytes = m_.file_weight_bytes(), f_.parameter_count = m_.parameter_count();
        f_.precision = m_.precision();
    }
    const ModelFacts& facts() const override { return f_; }
    std::unique_ptr<ScorerImpl> scorer() const override { return std::make_unique<ScorerBackend>(m_); }
    SelfTestReport replay_reference() const override { return ::dmin::replay_reference(m_); }
    FlopCount count_flops(int valid) const override { return ::dmin::count_flops(m_, valid); }

private:
    const ::dmin::Model<> m_;  // facts point into it: ModelBackend is neither copied nor moved
    ModelFacts f_;
};

inline std::unique_ptr<ModelImpl> load_backend(const std::string& path, const LoadOptions& options) {
    return std::make_unique<ModelBackend>(::dmin::load(path, options));
}

DMIN_ISA_NAMESPACE_END
}  // namespace dmin::dispatch

/// Defines the backend object `var` for this translation unit's instruction set: user-facing `name`
/// (a string literal) and preference `rank`. Constant-initialised, so the front end may read it on any CPU.
#define DMIN_DISPATCH_BACKEND(var, name, rank)                                                                     \
    extern const ::dmin::dispatch::Backend var;                                                                    \
    const ::dmin::dispatch::Backend var {                                                                          \
        name, DMIN_ISA_STR(DMIN_ISA_NS), ::dmin::kernels::compiled_features(), rank, &::dmin::dispatch::load_backend \
    }
