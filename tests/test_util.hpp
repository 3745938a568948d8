// Shared helpers for dmin's Catch2 tests: data locations, reference files, tolerances.
#pragma once

#include <dmin/dmin.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace dmin_test {

inline std::string env_or(const char* name, const char* dflt) {
    const char* v = std::getenv(name);
    return v ? v : dflt;
}
/// Source-tree test data (tests/data).
inline std::string data_dir() { return env_or("DMIN_TEST_DATA", DMIN_TEST_DATA_DEFAULT); }
/// Generated at test time by the CTest fixtures (random models, exported FuxiCTR cases).
inline std::string work_dir() { return env_or("DMIN_TEST_WORK", DMIN_TEST_WORK_DEFAULT); }

inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

inline dmin::io::json read_json(const std::string& path) { return dmin::io::json::parse(slurp(path)); }

/// The project's tolerance: |got − want| ≤ 1e-5 + 1e-5·|want| (REFERENCE_SEMANTICS Q16).
inline bool close(double got, double want, double tol = 1e-5) { return std::fabs(got - want) <= tol + tol * std::fabs(want); }

}  // namespace dmin_test
