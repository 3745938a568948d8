// tests/catch.hpp — Catch2 2.13 (Debian 12) or 3.x (Debian 13), whichever is installed, with the
// Catch2 2 names the tests use. Every test file includes this instead of a Catch2 header.
#pragma once

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>

#include <string>

// Catch2 3 moved Approx into namespace Catch and the string matchers into Catch::Matchers, where
// Contains became ContainsSubstring (Matchers::Contains now means "a range holds an element").
// Declaring the 2.x names here keeps one spelling in the tests for both versions.
using Catch::Approx;
namespace Catch {
inline Matchers::StringContainsMatcher Contains(const std::string& s, CaseSensitive cs = CaseSensitive::Yes) {
    return Matchers::ContainsSubstring(s, cs);
}
using Matchers::Equals;
using Matchers::StartsWith;
}  // namespace Catch
#else
#include <catch2/catch.hpp>
#endif
