// Every way a weights file can be broken yields a dmin::Error that names the problem (weights_format.md §1).
#include "catch.hpp"

#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>

#include "test_util.hpp"

using dmin::io::json;

namespace {

/// A weights file split into its JSON header and raw data section, to be broken and written back.
struct RawFile {
    json header;
    std::string data;

    static RawFile read(const std::string& path) {
        const std::string bytes = dmin_test::slurp(path);
        const std::uint64_t n = dmin_test::header_length(bytes);
        return {json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
    }
    std::string write(const std::string& name, std::string header_text = "") const {
        if (header_text.empty()) header_text = header.dump();
        const std::string path = dmin_test::work_dir() + "/broken_" + name + ".safetensors";
        std::string out(8, '\0');
        const std::uint64_t n = header_text.size();
        for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
        out += header_text + data;
        std::FILE* f = std::fopen(path.c_str(), "wb");
        REQUIRE(f);
        std::fwrite(out.data(), 1, out.size(), f);
        std::fclose(f);
        return path;
    }
    json spec() const { return json::parse(header["__metadata__"]["spec"].get<std::string>()); }
    void set_spec(const json& s) { header["__metadata__"]["spec"] = s.dump(); }
};

const std::string kTable = "embedding_layer.embedding_layers.userid.weight";

std::string valid_file() { return dmin_test::work_dir() + "/fuxictr/tiny_seq_trained.safetensors"; }

void require_error(const std::string& path, const std::vector<std::string>& parts) {
    try {
        (void)dmin::load(path);
        FAIL("expected dmin::Error loading " << path);
    } catch (const dmin::Error& e) {
        for (const auto& p : parts) CHECK_THAT(e.what(), Catch::Contains(p));
    }
}

}  // namespace

TEST_CASE("the unmodified file loads and its round-trip through RawFile does too", "[loader]") {
    REQUIRE_NOTHROW(dmin::load(valid_file()));
    const auto raw = RawFile::read(valid_file());
    REQUIRE_NOTHROW(dmin::load(raw.write("roundtrip")));
}

TEST_CASE("truncated and absurd files", "[loader][errors]") {
    const std::string bytes = dmin_test::slurp(valid_file());
    const std::string dir = dmin_test::work_dir();
    dmin_test::write_bytes(dir + "/t_empty.safetensors", "");
    require_error(dir + "/t_empty.safetensors", {"truncated"});
    dmin_test::write_bytes(dir + "/t_4.safetensors", bytes.substr(0, 4));
    require_error(dir + "/t_4.safetensors", {"truncated"});
    dmin_test::write_bytes(dir + "/t_header.safetensors", bytes.substr(0, 100));
    require_error(dir + "/t_header.safetensors", {"truncated"});
    dmin_test::write_bytes(dir + "/t_data.safetensors", bytes.substr(0, bytes.size() - 10));
    require_error(dir + "/t_data.safetensors", {"data_offsets"});
    std::string huge = bytes;
    for (int i = 0; i < 8; ++i) huge[static_cast<std::size_t>(i)] = '\x7f';
    dmin_test::write_bytes(dir + "/t_hlen.safetensors", huge);
    require_error(dir + "/t_hlen.safetensors", {"header length"});
    std::string big_endian = bytes;  // the length written big-endian reads as an absurd little-endian number
    std::reverse(big_endian.begin(), big_endian.begin() + 8);
    dmin_test::write_bytes(dir + "/t_be.safetensors", big_endian);
    require_error(dir + "/t_be.safetensors", {"header length"});
    require_error(dir + "/does_not_exist.safetensors", {"cannot open"});
}

TEST_CASE("header-level corruption", "[loader][errors]") {
    auto raw = RawFile::read(valid_file());
    SECTION("not JSON") { require_error(raw.write("notjson", "{\"a\": [1, 2"), {"not valid JSON"}); }
    SECTION("duplicate key") {
        std::string h = raw.header.dump();
        const std::string entry = "\"" + kTable + "\":" + raw.header[kTable].dump();
        h.insert(1, entry + ",");
        require_error(raw.write("dupkey", h), {"duplicate key", kTable});
    }
    SECTION("unknown dtype") {
        raw.header[kTable]["dtype"] = "F16";
        require_error(raw.write("dtype"), {kTable, "dtype F16"});
    }
    SECTION("wrong shape for the same bytes") {
        raw.header[kTable]["shape"] = {8, 26};
        require_error(raw.write("shape"), {kTable, "expected shape [26, 8], found [8, 26]"});
    }
    SECTION("shape and byte range disagree") {
        raw.header[kTable]["shape"] = {26, 9};
        require_error(raw.write("shapebytes"), {kTable, "needs"});
    }
    SECTION("dims overflowing size_t") {
        raw.header[kTable]["shape"] = {std::uint64_t{1} << 62, std::uint64_t{1} << 62};
        require_error(raw.write("overflow"), {kTable, "overflows"});
    }
    SECTION("a 10^9-element shape") {
        raw.header[kTable]["shape"] = {1000000000};
        raw.header[kTable]["data_offsets"] = {0, 4000000000ull};
        require_error(raw.write("giga"), {kTable, "out of range"});
    }
    SECTION("overlapping byte ranges") {
        raw.header[kTable]["data_offsets"] = raw.header["embedding_layer.embedding_layers.pid.weight"]["data_offsets"];
        raw.header[kTable]["shape"] = raw.header["embedding_layer.embedding_layers.pid.weight"]["shape"];
        require_error(raw.write("overlap"), {"data_offsets"});
    }
    SECTION("trailing bytes after the last tensor") {
        raw.data += "abcd";
        require_error(raw.write("trailing"), {"trailing bytes"});
    }
    SECTION("missing entry field") {
        raw.header[kTable].erase("dtype");
        require_error(raw.write("nodtype"), {kTable, "missing field \"dtype\""});
    }
    SECTION("non-finite weight") {
        const auto off = raw.header[kTable]["data_offsets"][0].get<std::size_t>() + 4 * 9;
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::memcpy(&raw.data[off], &nan, 4);
        require_error(raw.write("nan"), {kTable, "non-finite", "flat index 9"});
        const float inf = std::numeric_limits<float>::infinity();
        std::memcpy(&raw.data[off], &inf, 4);
        require_error(raw.write("inf"), {kTable, "non-finite"});
    }
}

TEST_CASE("metadata and spec problems", "[loader][errors]") {
    auto raw = RawFile::read(valid_file());
    SECTION("not a dmin file") {
        raw.header["__metadata__"].erase("format");
        require_error(raw.write("noformat"), {"not a dmin weights file"});
    }
    SECTION("future format version") {
        raw.header["__metadata__"]["format_version"] = "2";
        require_error(raw.write("version"), {"format_version 2"});
    }
    SECTION("renamed tensor: missing and unexpected, both reported") {
        json e = raw.header[kTable];
        raw.header.erase(kTable);
        raw.header["embedding_layer.embedding_layers.userid.weigth"] = e;
        require_error(raw.write("renamed"), {"missing tensor " + kTable + " (expected shape [26, 8])", "unexpected tensor"});
    }
    SECTION("spec: DNN input width") {
        auto s = raw.spec();
        s["dnn_input_dim"] = 127;
        raw.set_spec(s);
        require_error(raw.write("dnnwidth"), {"dnn_input_dim", "imply 128", "found 127"});
    }
    SECTION("spec: vocab size disagrees with the table") {
        auto s = raw.spec();
        s["features"][0]["vocab_size"] = 27;
        raw.set_spec(s);
        require_error(raw.write("vocab"), {kTable, "expected shape [27, 8], found [26, 8]"});
    }
    SECTION("spec: unknown activation") {
        auto s = raw.spec();
        s["dnn_activations"][0] = "Swish";
        raw.set_spec(s);
        require_error(raw.write("act"), {"dnn_activations", "unknown activation \"Swish\""});
    }
    SECTION("spec: heads do not divide D") {
        auto s = raw.spec();
        s["num_heads"] = 3;
        raw.set_spec(s);
        require_error(raw.write("heads"), {"not divisible by num_heads 3"});
    }
    SECTION("spec: unknown feature in a branch") {
        auto s = raw.spec();
        s["branches"][0]["target"][0] = "nope";
        raw.set_spec(s);
        require_error(raw.write("branchfeat"), {"unknown feature \"nope\""});
    }
    SECTION("spec: duplicate key inside the spec string") {
        std::string text = raw.header["__metadata__"]["spec"].get<std::string>();
        text.insert(1, "\"num_heads\": 2, ");
        raw.header["__metadata__"]["spec"] = text;
        require_error(raw.write("specdup"), {"duplicate key \"num_heads\""});
    }
    SECTION("spec: missing field") {
        auto s = raw.spec();
        s.erase("embedding_dim");
        raw.set_spec(s);
        require_error(raw.write("specmissing"), {"missing field \"embedding_dim\""});
    }
}

TEST_CASE("the loaded model keeps its own copy of the weights", "[loader]") {
    auto raw = RawFile::read(valid_file());
    const std::string path = raw.write("copy");
    const auto model = dmin::load(path);
    const auto ref = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/tiny_seq_trained/inputs.json");
    const auto samples = dmin::samples_from_json(model, ref);
    dmin::Scorer<dmin::Model<>> scorer(model);
    const float before = scorer.predict(samples[0].view());
    // Overwrite the file on disk with zeros: the loaded model must not notice.
    std::string zeros = dmin_test::slurp(path);
    std::fill(zeros.begin() + 8 + static_cast<std::ptrdiff_t>(zeros.size() - raw.data.size() - 8), zeros.end(), '\0');
    dmin_test::write_bytes(path, zeros);
    CHECK(scorer.predict(samples[0].view()) == before);
}

TEST_CASE("tables used in place through a mapping give the same predictions as copied tables", "[loader][mmap]") {
    dmin::LoadOptions mapped_opts;
    mapped_opts.map_tables_larger_than = 0;
    const auto mapped = dmin::load(valid_file(), mapped_opts);
    const auto copied = dmin::load(valid_file());
    CHECK(mapped.mapped_bytes() > 0);
    CHECK(copied.mapped_bytes() == 0);
    CHECK(mapped.resident_bytes() < copied.resident_bytes());
    const auto ref = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/tiny_seq_trained/inputs.json");
    const auto samples = dmin::samples_from_json(copied, ref);
    dmin::Scorer<dmin::Model<>> a(mapped), b(copied);
    for (std::size_t i = 0; i < 40; ++i) CHECK(a.predict(samples[i].view()) == b.predict(samples[i].view()));
    // A NaN in a mapped table is still rejected.
    auto raw = RawFile::read(valid_file());
    const auto off = raw.header[kTable]["data_offsets"][0].get<std::size_t>() + 4 * 3;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(&raw.data[off], &nan, 4);
    const std::string path = raw.write("mapped_nan");
    try {
        (void)dmin::load(path, mapped_opts);
        FAIL("expected dmin::Error");
    } catch (const dmin::Error& e) {
        CHECK_THAT(e.what(), Catch::Contains(kTable) && Catch::Contains("non-finite"));
    }
}

TEST_CASE("raw-token vocabularies map with FuxiCTR's rules", "[vocab]") {
    auto raw = RawFile::read(valid_file());
    json vocab = {{"pid", {{"tokens", {{"__PAD__", 0}, {"web", 1}, {"app", 2}, {"__OOV__", 3}}}, {"oov_idx", 3}, {"pad_idx", 0}}},
                  {"adgroup_id", {{"tokens", {{"__PAD__", 0}, {"9001", 5}, {"9002", 7}, {"x9", 8}, {"__OOV__", 95}}}, {"oov_idx", 95}, {"pad_idx", 0}}}};
    raw.header["__metadata__"]["vocab"] = vocab.dump();
    const auto m = dmin::load(raw.write("vocab"));
    dmin::Sample s(m);
    s.set_raw("pid", "app");
    CHECK(s.ids()[static_cast<std::size_t>(m.slot(m.spec().feature_index("pid")).offset)] == 2);
    s.set_raw("pid", "tv");  // unknown → OOV
    CHECK(s.ids()[static_cast<std::size_t>(m.slot(m.spec().feature_index("pid")).offset)] == 3);
    s.set_raw("pid", "");  // missing → OOV for a categorical feature (FuxiCTR fill_na)
    CHECK(s.ids()[static_cast<std::size_t>(m.slot(m.spec().feature_index("pid")).offset)] == 3);
    s.set_raw("adgroup_id", std::int64_t{9002});  // 64-bit raw ids match decimal tokens
    CHECK(s.ids()[static_cast<std::size_t>(m.slot(m.spec().feature_index("adgroup_id")).offset)] == 7);
    s.set_raw("adgroup_id", std::int64_t{12345});
    CHECK(s.ids()[static_cast<std::size_t>(m.slot(m.spec().feature_index("adgroup_id")).offset)] == 95);
    // click_sequence shares adgroup_id's table, so it uses adgroup_id's vocabulary; "" is padding there.
    s.set_raw("click_sequence", std::vector<std::string>{"9001", "nope", "", "x9"});
    const auto off = static_cast<std::size_t>(m.slot(m.spec().feature_index("click_sequence")).offset);
    CHECK(std::vector<std::int64_t>(s.ids().begin() + static_cast<std::ptrdiff_t>(off), s.ids().begin() + static_cast<std::ptrdiff_t>(off) + 5) ==
          std::vector<std::int64_t>{5, 95, 0, 8, 0});
    CHECK_THROWS_WITH(s.set_raw("userid", "u1"), Catch::Contains("no vocabulary"));
    // Bad vocabularies are load errors.
    vocab["pid"]["tokens"]["web"] = 4;
    raw.header["__metadata__"]["vocab"] = vocab.dump();
    require_error(raw.write("badvocab"), {"vocab.pid", "\"web\"", "[0, 4)"});
    raw.header["__metadata__"]["vocab"] = json({{"colour", {{"tokens", json::object()}, {"oov_idx", 0}}}}).dump();
    require_error(raw.write("badvocab2"), {"unknown feature \"colour\""});
}

TEST_CASE("JSON samples may carry raw tokens when the model has a vocabulary", "[vocab]") {
    auto raw = RawFile::read(valid_file());
    const json vocab = {{"pid", {{"tokens", {{"__PAD__", 0}, {"web", 1}, {"app", 2}, {"__OOV__", 3}}}, {"oov_idx", 3}, {"pad_idx", 0}}},
                        {"adgroup_id", {{"tokens", {{"__PAD__", 0}, {"9001", 5}, {"__OOV__", 95}}}, {"oov_idx", 95}, {"pad_idx", 0}}}};
    raw.header["__metadata__"]["vocab"] = vocab.dump();
    const auto m = dmin::load(raw.write("vocab_json"));
    auto js = dmin_test::read_json(dmin_test::data_dir() + "/fuxictr/tiny_seq_trained/inputs.json").at("samples").at(0);
    auto by_index = js;
    js["pid"] = "app";
    js["click_sequence"] = {"9001", "unknown"};
    by_index["pid"] = 2;
    by_index["click_sequence"] = {5, 95};
    CHECK(dmin::sample_from_json(m, js).ids() == dmin::sample_from_json(m, by_index).ids());
    js["userid"] = "u1";  // no vocabulary for userid: still an error naming it
    CHECK_THROWS_WITH(dmin::sample_from_json(m, js), Catch::Contains("userid") && Catch::Contains("expected an integer id"));
}

TEST_CASE("spec consistency found by fuzzing: shared tables, overflowing widths", "[loader][errors]") {
    auto raw = RawFile::read(valid_file());
    SECTION("a feature sharing a table declares a larger vocabulary") {
        auto s = raw.spec();
        for (auto& f : s["features"])
            if (f["name"] == "click_sequence") f["vocab_size"] = 99;
        raw.set_spec(s);
        require_error(raw.write("sharedvocab"), {"shares table", "vocab_size 99", "adgroup_id"});
    }
    SECTION("widths that overflow int") {
        auto s = raw.spec();
        s["num_heads"] = 1024;
        s["embedding_dim"] = 65536;
        s["dnn_input_dim"] = 2147483647;
        raw.set_spec(s);
        try {
            (void)dmin::load(raw.write("overflow_width"));
            FAIL("expected dmin::Error");
        } catch (const dmin::Error&) {
        }
    }
}

TEST_CASE("a CPU without the instructions this program was compiled for gets a dmin::Error at load", "[errors][isa]") {
    // DMIN_CPU_DISABLE=all makes this machine report no AVX at all (kernels/cpu_features.hpp).
    struct ScopedEnv {
        ScopedEnv() { setenv("DMIN_CPU_DISABLE", "all", 1); }
        ~ScopedEnv() { unsetenv("DMIN_CPU_DISABLE"); }
    } off;
    const std::string file = dmin_test::work_dir() + "/fuxictr/tiny_seq_trained.safetensors";
    // AVX512_BF16 is not among them: only bf16 precision uses it, and checks it itself (test_bf16.cpp).
    const unsigned needs = dmin::kernels::compiled_features() & ~dmin::kernels::Feature::avx512_bf16;
    if (needs == 0 || !dmin::kernels::cpu_features().known) {  // an SSE2 or scalar build runs anywhere
        CHECK_NOTHROW(dmin::load(file));
        return;
    }
    CHECK_THROWS_WITH(dmin::load(file), Catch::Contains(std::string("compiled for instruction set ") + dmin::kernels::isa_name) &&
                                            Catch::Contains("this CPU lacks " + dmin::kernels::feature_names(needs)));
}
