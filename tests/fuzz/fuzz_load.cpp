// Fuzz target (a): the weights-file parser and loader. The input is a whole weights file; it is
// written to an in-memory file and loaded twice: with the default options plus the self-test (which
// replays the reference pair stored in the file through samples_from_json and both scoring paths),
// with every table memory-mapped (LoadOptions::map_tables_larger_than = 0), and in bf16 with the DNN's
// products too ("bf16-dnn": the packing of every per-candidate weight, the self-test's bf16 tolerance)
// and the tables kept in bf16 (LoadOptions::bf16_tables, mapped in place where the file's are BF16).
// A model that loads is then scored on an all-zero request.
// Only dmin::Error / std::bad_alloc may come out; the weights themselves are arbitrary (finite)
// numbers here, so outputs are not checked, only that nothing crashes.
// Read-whole oracle: a file that loads has a header that is one JSON object followed by nothing but
// space padding, and its spec, vocabularies and (once the self-test read it) reference pair are each
// one JSON document read whole (dmin_fuzz::check_read_whole, a scan independent of dmin's parser).
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

/// The read-whole oracle for a file that loaded (so it holds 8 + header-length bytes at least).
void check_loaded_whole(const std::uint8_t* data, std::size_t size, const dmin::Model<>& m, bool reference_read) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
    dmin_fuzz::fuzz_check(size >= 8 && n <= size - 8, "dmin loaded a file shorter than its header length");
    const std::string header(reinterpret_cast<const char*>(data) + 8, static_cast<std::size_t>(n));
    dmin_fuzz::check_read_whole("the weights-file header", header, /*spaces_only=*/true);
    // The header passed the scan above, so nlohmann reads it whole; no-throw form all the same.
    const auto h = dmin::io::json::parse(header, nullptr, /*allow_exceptions=*/false);
    const auto meta = h.is_object() ? h.find("__metadata__") : h.end();
    dmin_fuzz::fuzz_check(meta != h.end() && meta->is_object(), "dmin loaded a file without __metadata__");
    for (const char* key : {"spec", "vocab"})
        if (const auto it = meta->find(key); it != meta->end() && it->is_string() && !it->get_ref<const std::string&>().empty())
            dmin_fuzz::check_read_whole("the metadata entry \"" + std::string(key) + "\"", it->get_ref<const std::string&>());
    if (reference_read && !m.reference_json().empty()) dmin_fuzz::check_read_whole("the reference pair", m.reference_json());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const dmin_fuzz::MemFile file(data, size);
    // Default options, then the self-test (what LoadOptions::self_test does, called separately so the
    // harness can skip scorers of absurd size first).
    dmin_fuzz::accepted("load", [&] {
        const auto m = dmin::load(file.path());
        const bool small = dmin_fuzz::scorer_floats(m.spec()) <= 3e7;
        if (small && !m.reference_json().empty()) (void)dmin::self_test(m);
        check_loaded_whole(data, size, m, /*reference_read=*/small);
        if (small) exercise(m);
    });
    dmin::LoadOptions mapped;
    mapped.map_tables_larger_than = 0;
    dmin_fuzz::accepted("load(map all tables)", [&] {
        const auto m = dmin::load(file.path(), mapped);
        exercise(m);
    });
    // bf16 with the DNN's products too (every weight the per-candidate products read is packed) and the
    // embedding tables kept in bf16: a BF16 file's mapped in place, an F32 file's rounded at load.
    dmin::LoadOptions bf16;
    dmin::set_precision(bf16, "bf16-dnn");
    bf16.bf16_tables = true;
    bf16.map_tables_larger_than = 0;
    dmin_fuzz::accepted("load(bf16-dnn)", [&] {
        const auto m = dmin::load(file.path(), bf16);
        if (dmin_fuzz::scorer_floats(m.spec()) > 3e7) return;
        if (!m.reference_json().empty()) (void)dmin::self_test(m);
        exercise(m);
    });
    return 0;
}
