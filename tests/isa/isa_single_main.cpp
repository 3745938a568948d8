// A program built for one instruction set alone (isa_score.cpp with that set's flags): the mixed-ISA
// test's reference. Usage: dmin_isa_single_NAME OUT MODEL... writes one line per model (to_line).
#include <exception>
#include <fstream>
#include <iostream>

#include "isa_score.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " OUT MODEL...\n";
        return 2;
    }
    try {
        std::ofstream out(argv[1]);
        for (int i = 2; i < argc; ++i) out << dmin_isa_test::to_line(dmin_isa_test::DMIN_ISA_ENTRY(argv[i])) << '\n';
        return out ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << argv[0] << ": " << e.what() << '\n';
        return 1;
    }
}
