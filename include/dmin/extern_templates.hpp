// dmin/extern_templates.hpp — keep the loader and the scorer out of every translation unit but one.
#pragma once

// A service's translation unit that includes <dmin/dmin.hpp> and calls load, set_user and score
// otherwise generates code for all of them: the JSON and spec parsing, the layers' preparation, every
// kernel. Most of its compile time and memory go there, once per translation unit. With this header
// (or DMIN_EXTERN_TEMPLATES defined before <dmin/dmin.hpp>), those instantiations for the default
// model type are declared extern: the translation unit only calls them. Exactly one translation unit
// of the program must then include <dmin/instantiate.hpp>, which defines them.
//
// Both sides must be compiled for the same instruction set: Model<> is a type of the translation unit's
// ISA namespace (dmin/kernels/isa.hpp), so a mismatch leaves an undefined symbol at link time rather
// than mixing code for two instruction sets. Models with a compile-time Shape are not covered: they are
// instantiated where they are used, as without this header.

#include "dmin/load.hpp"

#include <string>

namespace dmin {
DMIN_ISA_NAMESPACE_BEGIN
extern template Model<> load<Model<>>(const std::string& path, const LoadOptions& options);
DMIN_ISA_NAMESPACE_END
extern template class Scorer<Model<>>;
}  // namespace dmin
