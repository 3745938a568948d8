// The test programs' main(), the same for Catch2 2 and 3: Catch2 3 ignores CATCH_CONFIG_MAIN (its
// main() lives in Catch2WithMain, which the tests do not link), and Catch2 2 needs CATCH_CONFIG_RUNNER
// before its header to compile Catch::Session here.
#define CATCH_CONFIG_RUNNER
#include "catch.hpp"

int main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
