// dmin/dispatch.hpp — one program for a mixed fleet: dmin compiled for several instruction sets, and
// dmin::dispatch::load picks the best one the running CPU supports.
#pragma once

// How it works. Every instruction-set-dependent symbol of dmin lives in an inline namespace named
// after the instruction set (dmin/kernels/isa.hpp), so the same headers compiled with different -m
// flags give differently named code that links into one program. Each such translation unit (a
// "backend", dmin/dispatch_backend.hpp) publishes one constant-initialised dispatch::Backend: its
// name, the CPU features its code needs, and its load function. This header is the front end, compiled
// for the baseline instruction set: it reads the backends' data (no backend code runs for that),
// compares their needs with cpuid (kernels/cpu_features.hpp), and only then calls the chosen
// backend's load. The model and the scorer it returns forward to that backend through virtual calls,
// once per request and per block of candidates, never per candidate.
//
// cmake/dmin_multi_isa.cmake (dmin_add_isa_backends) builds the backends and the list of them that
// linked_backends() returns. The program's own code that includes this header must be compiled for
// the baseline (no -march=native): it runs before any CPU check.

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dmin/candidates.hpp"
#include "dmin/error.hpp"
#include "dmin/flops.hpp"
#include "dmin/kernels/isa_features.hpp"
#include "dmin/load.hpp"  // LoadOptions, and the instruction-set-neutral ModelSpec, FeatureSlot, Vocabularies
#include "dmin/selftest.hpp"

namespace dmin::dispatch {

using kernels::Feature;
using kernels::feature_bits;
using kernels::feature_names;

/// What the front end reads of a loaded model: filled by the backend from its Model<>, all of it
/// instruction-set-neutral types.
struct ModelFacts {
    const ModelSpec* spec = nullptr;
    const std::vector<FeatureSlot>* slots = nullptr;
    const Vocabularies* vocabularies = nullptr;
    const std::string* reference_json = nullptr;
    const std::string* vocab_json = nullptr;
    int num_ids = 0, num_values = 0, num_candidate_ids = 0, num_candidate_values = 0;
    std::size_t resident_bytes = 0, mapped_bytes = 0, file_weight_bytes = 0, parameter_count = 0;
    Precision precision = Precision::float32;
};

/// One thread's scorer, as a backend implements it (dmin::Scorer<Model<>> of its instruction set).
class ScorerImpl {
public:
    virtual ~ScorerImpl() = default;
    virtual void set_user(const SampleView& sample) = 0;
    virtual void score(const Candidates& cands, float* out) = 0;
    virtual float predict(const SampleView& sample) = 0;
    virtual Candidates candidate_from(const SampleView& sample) = 0;
    virtual Explanation explain(const Candidates& cands, std::size_t c) = 0;
};

/// A loaded model, as a backend implements it.
class ModelImpl {
public:
    virtual ~ModelImpl() = default;
    virtual const ModelFacts& facts() const = 0;
    virtual std::unique_ptr<ScorerImpl> scorer() const = 0;
    virtual SelfTestReport replay_reference() const = 0;
    virtual FlopCount count_flops(int valid) const = 0;
};

/// One instruction set's build of dmin in this program. Constant-initialised (DMIN_DISPATCH_BACKEND),
/// so reading it runs none of the backend's code.
struct Backend {
    const char* name;   ///< what DMIN_ISA and load's `isa` argument name: "avx512_bf16", "avx512", "avx2", "scalar"
    const char* isa;    ///< the inline namespace its code lives in (kernels/isa.hpp), e.g. "avx512bw"
    unsigned needs;     ///< Feature bits the CPU must have
    int rank;           ///< preference when several run: the highest
    std::unique_ptr<ModelImpl> (*load)(const std::string& path, const LoadOptions& options);
};

struct BackendList {
    const Backend* const* items = nullptr;
    std::size_t count = 0;
};

/// The backends linked into this program. Defined by the registry translation unit that
/// dmin_add_isa_backends (CMake) generates; a program that calls dispatch::load without it fails to
/// link with this name undefined.
BackendList linked_backends();

/// The backend to use: the one named `forced` if not empty, else the highest-ranked one whose needs
/// the CPU features `cpu` meet. Throws dmin::Error naming the linked backends and the missing features
/// instead of letting a CPU run code it lacks instructions for.
inline const Backend& choose(const BackendList& list, unsigned cpu, const std::string& forced) {
    std::string linked;
    const Backend* best = nullptr;
    for (std::size_t i = 0; i < list.count; ++i) {
        const Backend& b = *list.items[i];
        linked += (linked.empty() ? "" : ", ") + std::string(b.name);
        if (!forced.empty() && forced != b.name) continue;
        if ((b.needs & cpu) != b.needs) {
            if (!forced.empty())
                throw Error("instruction set " + forced + ": this CPU lacks " + feature_names(b.needs & ~cpu) + " (it has: " + feature_names(cpu) + ")");
            continue;
        }
        if (!best || b.rank > best->rank) best = &b;
    }
    if (best) return *best;
    if (!forced.empty()) throw Error("instruction set " + forced + ": not linked into this program (linked: " + linked + ")");
    throw Error("no instruction set linked into this program runs on this CPU (it has: " + feature_names(cpu) + "; linked: " +
                (linked.empty() ? "none" : linked) + ")");
}

/// A model loaded by the backend that suits this CPU. Immutable and shared by threads, like Model<>;
/// offers what Sample, CandidateBatch and samples_from_json read of a model.
class Model {
public:
    Model(std::unique_ptr<const ModelImpl> impl, const Backend& backend) : impl_(std::move(impl)), backend_(&backend) {}

    /// The backend's name ("avx512", "avx2", ...) and instruction-set namespace.
    const char* isa() const noexcept { return backend_->name; }
    const Backend& backend() const noexcept { return *backend_; }

    const ModelSpec& spec() const noexcept { return *facts().spec; }
    const FeatureSlot& slot(int f) const { return (*facts().slots)[static_cast<std::size_t>(f)]; }
    int num_ids() const noexcept { return facts().num_ids; }
    int num_values() const noexcept { return facts().num_values; }
    int num_candidate_ids() const noexcept { return facts().num_candidate_ids; }
    int num_candidate_values() const noexcept { return facts().num_candidate_values; }
    const std::string& reference_json() const noexcept { return *facts().reference_json; }
    const std::string& vocab_json() const noexcept { return *facts().vocab_json; }
    const Vocabularies& vocabularies() const noexcept { return *facts().vocabularies; }
    std::size_t resident_bytes() const noexcept { return facts().resident_bytes; }
    std::size_t mapped_bytes() const noexcept { return facts().mapped_bytes; }
    std::size_t file_weight_bytes() const noexcept { return facts().file_weight_bytes; }
    std::size_t parameter_count() const noexcept { return facts().parameter_count; }
    Precision precision() const noexcept { return facts().precision; }

    const ModelImpl& impl() const noexcept { return *impl_; }

private:
    const ModelFacts& facts() const noexcept { return impl_->facts(); }

    std::unique_ptr<const ModelImpl> impl_;
    const Backend* backend_;
};

/// Loads path with the backend choose() picks among linked_backends() for this CPU: the one named
/// `isa`, else the one the environment variable DMIN_ISA names (to test a lower set on a capable
/// machine), else the best.
inline Model load(const std::string& path, const LoadOptions& options = {}, std::string isa = {}) {
    if (const char* env = std::getenv("DMIN_ISA"); isa.empty() && env) isa = env;
    const Backend& b = choose(linked_backends(), feature_bits(kernels::cpu_features()), isa);
    return Model(b.load(path, options), b);
}

/// dmin::Scorer's interface on the chosen backend: one per thread, no allocation in set_user/score.
class Scorer {
public:
    explicit Scorer(const Model& model) : impl_(model.impl().scorer()) {}

    void set_user(const SampleView& sample) { impl_->set_user(sample); }
    void score(const Candidates& cands, float* out) { impl_->score(cands, out); }
    float predict(const SampleView& sample) { return impl_->predict(sample); }
    Candidates candidate_from(const SampleView& sample) { return impl_->candidate_from(sample); }
    Explanation explain(const Candidates& cands, std::size_t c) { return impl_->explain(cands, c); }

private:
    std::unique_ptr<ScorerImpl> impl_;
};

/// The stored reference pair replayed by the model's backend (dmin::replay_reference).
inline SelfTestReport replay_reference(const Model& model) { return model.impl().replay_reference(); }

/// dmin::count_flops of the model's backend.
inline FlopCount count_flops(const Model& model, int valid) { return model.impl().count_flops(valid); }

}  // namespace dmin::dispatch
