// Fuzz target (a): the weights-file parser and loader. The input is a whole weights file; it is
// written to an in-memory file and loaded twice: with the default options plus the self-test (which
// replays the reference pair stored in the file through samples_from_json and both scoring paths),
// and with every table memory-mapped (LoadOptions::map_tables_larger_than = 0). A model that loads
// is then scored on an all-zero request.
// Only dmin::Error / std::bad_alloc may come out; the weights themselves are arbitrary (finite)
// numbers here, so outputs are not checked, only that nothing crashes.
#include "fuzz_common.hpp"

namespace {

void exercise(const dmin::Model<>& m) {
    if (dmin_fuzz::scorer_floats(m.spec()) > 3e7) return;  // harness limit (see fuzz_common.hpp)
    dmin::Scorer<dmin::Model<>> sc(m);
    const dmin_fuzz::ZeroRequest req(m, 3);
    std::vector<float> out(3);
    sc.set_user(req.view());
    sc.score(req.candidates(), out.data());
    sc.score_reference(req.candidates(), out.data());
    (void)sc.explain(req.candidates(), 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const dmin_fuzz::MemFile file(data, size);
    // Default options, then the self-test (what LoadOptions::self_test does, called separately so the
    // harness can skip scorers of absurd size first).
    dmin_fuzz::accepted("load", [&] {
        const auto m = dmin::load(file.path());
        if (dmin_fuzz::scorer_floats(m.spec()) > 3e7) return;
        if (!m.reference_json().empty()) (void)dmin::self_test(m);
        exercise(m);
    });
    dmin::LoadOptions mapped;
    mapped.map_tables_larger_than = 0;
    dmin_fuzz::accepted("load(map all tables)", [&] {
        const auto m = dmin::load(file.path(), mapped);
        exercise(m);
    });
    return 0;
}
