// dmin/dmin.hpp — umbrella header: include this to load DMIN models and score candidates.
#pragma once

#define DMIN_VERSION_MAJOR 0
#define DMIN_VERSION_MINOR 1
#define DMIN_VERSION_PATCH 0

#include "dmin/error.hpp"
#include "dmin/spec.hpp"
#include "dmin/shape.hpp"
#include "dmin/candidates.hpp"
#include "dmin/model.hpp"
#include "dmin/sample.hpp"
#include "dmin/scorer.hpp"
#include "dmin/selftest.hpp"
#include "dmin/load.hpp"
#include "dmin/flops.hpp"

// Opt-in: the loader and the scorer of Model<> compiled in one translation unit only (see there).
#if defined(DMIN_EXTERN_TEMPLATES)
#include "dmin/extern_templates.hpp"
#endif
