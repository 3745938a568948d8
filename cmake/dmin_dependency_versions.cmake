# The dependency versions dmin is built and tested with, found the same way by the main build, the
# reliability sub-build and the fuzz build. xsimd and Catch2 are looked up without a version because
# their package version files accept only their own major version (xsimd 13 refuses a request for
# 8.1); the accepted range is checked here instead.
#   xsimd   8.1 (Debian 12) to 13.x (Debian 13): API differences in include/dmin/kernels/xsimd_compat.hpp
#   Catch2  2.13 (Debian 12) and 3.x (Debian 13): tests/catch.hpp picks the header

macro(dmin_find_xsimd)
  find_package(xsimd REQUIRED)
  if(xsimd_VERSION VERSION_LESS 8.1 OR xsimd_VERSION VERSION_GREATER_EQUAL 14)
    message(FATAL_ERROR "dmin needs xsimd 8.1 to 13.x; found ${xsimd_VERSION}")
  endif()
  # Debian's xsimd 8.1 export names an "xtl" link dependency that xsimd itself never needs.
  if(NOT TARGET xtl)
    add_library(xtl INTERFACE IMPORTED)
  endif()
endmacro()

macro(dmin_find_catch2)
  find_package(Catch2 REQUIRED)
  if(Catch2_VERSION VERSION_LESS 2.13 OR Catch2_VERSION VERSION_GREATER_EQUAL 4)
    message(FATAL_ERROR "dmin's tests need Catch2 2.13 or 3.x; found ${Catch2_VERSION}")
  endif()
  # Catch2::Catch2 is the header-only library in 2.x and the compiled one without main() in 3.x; the
  # tests link it either way and bring their own main (tests/test_main.cpp).
endmacro()
