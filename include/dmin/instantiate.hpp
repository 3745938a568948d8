// dmin/instantiate.hpp — include in exactly one translation unit of a program whose other translation
// units use dmin/extern_templates.hpp (or define DMIN_EXTERN_TEMPLATES): it defines what they declare.
#pragma once

#include "dmin/extern_templates.hpp"

#include <string>

namespace dmin {
DMIN_ISA_NAMESPACE_BEGIN
template Model<> load<Model<>>(const std::string& path, const LoadOptions& options);
DMIN_ISA_NAMESPACE_END
template class Scorer<Model<>>;
}  // namespace dmin
