// Loads a model through dmin::dispatch with the backends the installed package's
// dmin_add_isa_backends linked in, and replays its self-test on the chosen one.
#include <dmin/dispatch.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    try {
        const auto model = dmin::dispatch::load(argv[1], dmin::LoadOptions{true});
        std::printf("consumer_dispatch: loaded on %s, self-test passed\n", model.isa());
        return std::string(model.isa()) == "scalar" ? 0 : 1;
    } catch (const dmin::Error& e) {
        std::fprintf(stderr, "consumer_dispatch: %s\n", e.what());
        return 1;
    }
}
