// The model and scorer the dmin command-line tool runs on. With DMIN_CLI_DISPATCH (the default build on
// x86-64) the tool is one binary for a mixed fleet: dmin::dispatch picks the instruction set at load
// (DMIN_ISA forces one). Without it, the tool is built for one instruction set (-march=native), the
// fastest on the machine that builds it.
#pragma once

#include <dmin/dmin.hpp>

#include <string>

#if defined(DMIN_CLI_DISPATCH)
#include <dmin/dispatch.hpp>

namespace dmin_cli {
using Model = dmin::dispatch::Model;
using Scorer = dmin::dispatch::Scorer;
inline Model load(const std::string& path, const dmin::LoadOptions& options = {}) { return dmin::dispatch::load(path, options); }
inline dmin::SelfTestReport replay_reference(const Model& m) { return dmin::dispatch::replay_reference(m); }
inline dmin::FlopCount count_flops(const Model& m, int valid) { return dmin::dispatch::count_flops(m, valid); }

/// "avx512 (namespace avx512bw; linked: scalar, avx2, avx512)".
inline std::string isa(const Model& m) {
    std::string linked;
    const auto list = dmin::dispatch::linked_backends();
    for (std::size_t i = 0; i < list.count; ++i) linked += (i ? ", " : "") + std::string(list.items[i]->name);
    return std::string(m.isa()) + " (namespace " + m.backend().isa + "; linked: " + linked + ")";
}
}  // namespace dmin_cli
#else
namespace dmin_cli {
using Model = dmin::Model<>;
using Scorer = dmin::Scorer<Model>;
inline Model load(const std::string& path, const dmin::LoadOptions& options = {}) { return dmin::load(path, options); }
inline dmin::SelfTestReport replay_reference(const Model& m) { return dmin::replay_reference(m); }
inline dmin::FlopCount count_flops(const Model& m, int valid) { return dmin::count_flops(m, valid); }
inline std::string isa(const Model&) { return std::string(dmin::kernels::isa_name) + " (single-instruction-set build)"; }
}  // namespace dmin_cli
#endif
