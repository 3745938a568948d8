// Loads a model with the installed dmin and replays its self-test: proves headers, dependencies and
// the CMake package work together outside the source tree.
#include <dmin/dmin.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    try {
        const auto model = dmin::load(argv[1], dmin::LoadOptions{true});
        std::printf("consumer: loaded %zu parameters, self-test passed\n", model.parameter_count());
        return 0;
    } catch (const dmin::Error& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
}
