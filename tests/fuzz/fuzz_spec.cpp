// Fuzz target (a'): the model spec, structure-aware. The input is the spec JSON text (weights_format.md
// §3). When parse_spec accepts it, the harness writes a well-formed weights file holding exactly the
// tensors expected_tensors() asks for (small finite values, positive variances) and loads it with
// and without memory-mapped tables, then scores requests with the smallest and the largest valid ids.
//
// Oracle, on top of "only dmin::Error / std::bad_alloc": a spec that parse_spec accepts, written with
// exactly its expected tensors (no two with the same name), must load; every feature of a loaded
// model must look up a table of its own [vocab_size, dim] (or [dim, 1]) shape, so that no valid id
// can read outside it; scoring valid requests gives probabilities in [0, 1] (finite for regression).
// Specs whose tensors or scorer buffers would exceed a few tens of MB are skipped (harness limit).
// A spec text parse_strict accepts must have been read whole (dmin_fuzz::check_read_whole); the
// harness's own steps (building the file, dumping its header) cannot throw.
#include "fuzz_common.hpp"

#include <map>
#include <set>

namespace {

using dmin::FeatureType;
using dmin::Role;

std::string le64(std::uint64_t n) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    return s;
}

bool ends_with(const std::string& s, const char* suffix) {
    const std::size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

template <class F>
void score_both_ends(const dmin::Model<>& m, F&& id_for) {
    const auto& spec = m.spec();
    dmin::Scorer<dmin::Model<>> sc(m);
    dmin_fuzz::ZeroRequest req(m, 3);
    for (std::size_t f = 0; f < spec.features.size(); ++f) {
        const auto& x = spec.features[f];
        const auto& sl = m.slot(static_cast<int>(f));
        if (x.type == FeatureType::numeric) continue;
        const int n = x.type == FeatureType::sequence ? x.max_len : 1;
        for (int k = 0; k < n; ++k) req.ids[static_cast<std::size_t>(sl.offset + k)] = id_for(x);
        if (sl.cand_offset >= 0)
            for (std::size_t c = 0; c < req.n; ++c) req.cand_ids[c * req.ni + static_cast<std::size_t>(sl.cand_offset)] = id_for(x);
    }
    std::vector<float> out(3);
    sc.set_user(req.view());
    sc.score(req.candidates(), out.data());
    dmin_fuzz::check_outputs(m, out.data(), 3, "score");
    sc.score_reference(req.candidates(), out.data());
    dmin_fuzz::check_outputs(m, out.data(), 3, "score_reference");
    const auto e = sc.explain(req.candidates(), 1);
    dmin_fuzz::check_outputs(m, &e.probability, 1, "explain");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    dmin::io::json doc;
    if (!dmin_fuzz::accepted("parse_strict", [&] { doc = dmin::io::parse_strict(text, "spec"); })) return 0;
    dmin_fuzz::check_read_whole("a spec", text);
    dmin::ModelSpec spec;
    if (!dmin_fuzz::accepted("parse_spec", [&] { spec = dmin::parse_spec(doc, "spec"); })) return 0;
    std::vector<dmin::ExpectedTensor> expected;
    if (!dmin_fuzz::accepted("expected_tensors", [&] { expected = dmin::expected_tensors(spec); })) return 0;

    // Harness limits: small files and scorers only.
    double total = 0;
    for (const auto& e : expected) {
        double n = 1;
        for (auto d : e.shape) {
            if (d < 0) dmin_fuzz::die("expected_tensors produced a negative dimension for " + e.name);
            n *= static_cast<double>(d);
        }
        total += n;
    }
    if (total > 4e6 || dmin_fuzz::scorer_floats(spec) > 3e7) return 0;

    // The weights file: header with the expected tensors back to back, 64-byte aligned data section.
    dmin::io::json header = dmin::io::json::object();
    std::set<std::string> names;
    bool unique = true;
    std::string payload;
    std::map<std::string, std::vector<std::int64_t>> shape_of;
    for (const auto& e : expected) {
        if (!names.insert(e.name).second) {
            unique = false;
            continue;
        }
        std::size_t n = 1;
        for (auto d : e.shape) n *= static_cast<std::size_t>(d);
        const std::size_t begin = payload.size();
        const bool variance = ends_with(e.name, "running_var");
        for (std::size_t i = 0; i < n; ++i) {
            const auto h = static_cast<std::uint32_t>((i + begin) * 2654435761u) >> 20;  // 0..4095
            const float v = variance ? 0.5f + static_cast<float>(h) / 4096.0f : (static_cast<float>(h) - 2048.0f) / 20480.0f;
            char b[4];
            std::memcpy(b, &v, 4);
            payload.append(b, 4);
        }
        header[e.name] = {{"dtype", "F32"}, {"shape", e.shape}, {"data_offsets", {begin, payload.size()}}};
        shape_of[e.name] = e.shape;
    }
    header["__metadata__"] = {{"format", "dmin"}, {"format_version", "1"}, {"spec", text}};
    // The spec text and the names in it passed the read-whole check above, so they are valid UTF-8
    // and the header holds them verbatim; safe_dump cannot throw either way.
    std::string h = dmin_fuzz::safe_dump(header);
    while ((8 + h.size()) % 64 != 0) h += ' ';
    const dmin_fuzz::MemFile file(le64(h.size()) + h + payload);

    for (const std::uint64_t map_above : {std::uint64_t{256} << 20, std::uint64_t{0}}) {
        dmin::LoadOptions opts;
        opts.map_tables_larger_than = map_above;
        dmin::Model<> m;
        const bool loaded = dmin_fuzz::accepted("load", [&] { m = dmin::load(file.path(), opts); });
        if (!loaded) {
            // Only a name collision between two expected tensors may stop a consistent file from loading.
            if (unique) {
                try {
                    (void)dmin::load(file.path(), opts);
                } catch (const std::exception& e) {
                    dmin_fuzz::die(std::string("a spec accepted by parse_spec, with exactly its expected tensors, does not load: ") + e.what());
                }
            }
            continue;
        }
        // Every feature must address a table of its own shape: otherwise valid ids read out of bounds.
        for (const auto& x : m.spec().features) {
            const auto it = shape_of.find(x.table);
            dmin_fuzz::fuzz_check(it != shape_of.end(), "feature " + x.name + " names table " + x.table + " that is not in the file");
            const std::vector<std::int64_t> want =
                x.type == FeatureType::numeric ? std::vector<std::int64_t>{x.dim, 1} : std::vector<std::int64_t>{x.vocab_size, x.dim};
            if (it->second != want && !dmin_fuzz::oracle_enabled("shared-table")) return 0;  // would read out of bounds
            dmin_fuzz::fuzz_check(it->second == want, "loader accepted feature " + x.name + " (" + dmin::to_string(x.type) +
                                                         ", shape " + dmin::detail::shape_str(want) + ") on table " + x.table +
                                                         " of shape " + dmin::detail::shape_str(it->second));
        }
        // Valid requests on a loaded model: nothing but std::bad_alloc may come out.
        try {
            score_both_ends(m, [](const dmin::FeatureSpec&) { return std::int64_t{0}; });
            score_both_ends(m, [](const dmin::FeatureSpec& x) { return x.vocab_size - 1; });
        } catch (const std::bad_alloc&) {
        } catch (const std::exception& e) {
            dmin_fuzz::die(std::string("scoring a valid request threw: ") + e.what());
        }
    }
    return 0;
}
