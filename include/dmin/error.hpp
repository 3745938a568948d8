// dmin/error.hpp — the one exception type dmin throws, with helpers that build its messages.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace dmin {

/// Thrown for every user-visible failure: bad weights file, spec mismatch, bad request.
/// The message names the tensor / field / feature, what was expected and what was found.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {

template <class... Args>
std::string str_cat(const Args&... args) {
    std::ostringstream os;
    (os << ... << args);
    return os.str();
}

template <class T>
std::string shape_str(const std::vector<T>& shape) {
    std::ostringstream os;
    os << '[';
    for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
    os << ']';
    return os.str();
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
    throw Error(str_cat(args...));
}

}  // namespace detail
}  // namespace dmin
