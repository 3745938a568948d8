// Every JSON document dmin reads is read to its last byte (issue 23): a NUL byte, invalid UTF-8 (inside
// strings too) or anything but whitespace after the document is a dmin::Error naming the byte offset.
// nlohmann/json alone stops at a NUL as if the input ended there, so these are dmin's own checks.
#include "catch.hpp"

#include <cstdio>
#include <utility>
#include <string>

#include "test_util.hpp"

using dmin::io::json;
using namespace std::string_literals;  // "...\0..."s keeps the NUL and what follows

namespace {

/// The error parse_strict gives for `text`, or "" if it accepts it.
std::string strict_error(const std::string& text) {
    try {
        (void)dmin::io::parse_strict(text, "doc");
        return "";
    } catch (const dmin::Error& e) {
        return e.what();
    }
}

void require_rejected(const std::string& text, const std::string& says) {
    const std::string err = strict_error(text);
    INFO("input: " << json(text).dump(-1, ' ', true, json::error_handler_t::replace));
    REQUIRE_FALSE(err.empty());
    CHECK_THAT(err, Catch::Contains(says));
}

std::string world_model() {
    return dmin_test::env_or("DMIN_EXAMPLES_DIR", DMIN_EXAMPLES_DIR) + "/models/multi_interest_world.safetensors"s;
}

/// The shipped model's bytes, its header length and its header text.
struct Weights {
    std::string bytes = dmin_test::slurp(world_model());
    std::uint64_t n = read_length();
    std::string header() const { return bytes.substr(8, n); }
    /// The file with its header replaced by `h` (same length or not), written to the work directory.
    std::string with_header(const std::string& name, const std::string& h) const {
        std::string out(8, '\0');
        for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
        out += h + bytes.substr(8 + n);
        const std::string path = dmin_test::work_dir() + "/strict_" + name + ".safetensors";
        std::FILE* f = std::fopen(path.c_str(), "wb");
        REQUIRE(f);
        std::fwrite(out.data(), 1, out.size(), f);
        std::fclose(f);
        return path;
    }
    /// The header with `raw` (bytes, not JSON-escaped) as the value of a new metadata entry "note",
    /// padded back to its original length (or longer). The first byte of `raw` is at header offset 25.
    std::string with_note(const std::string& raw) const {
        std::string h = header();
        const std::string prefix = "{\"__metadata__\":{\"note\":\"";
        REQUIRE(h.compare(0, 17, prefix, 0, 17) == 0);  // the writer puts __metadata__ first
        h = prefix + raw + "\"," + h.substr(17);
        while (!h.empty() && h.back() == ' ') h.pop_back();
        while (h.size() < n) h += ' ';
        return h;
    }

private:
    std::uint64_t read_length() const { return dmin_test::header_length(bytes); }
};

void require_load_error(const std::string& path, const std::string& says) {
    try {
        (void)dmin::load(path, dmin::LoadOptions{/*self_test=*/true});
        FAIL("expected dmin::Error loading " << path);
    } catch (const dmin::Error& e) {
        CHECK_THAT(e.what(), Catch::Contains(says));
    }
}

}  // namespace

// ---- parse_strict, byte by byte ----------------------------------------------------------------

TEST_CASE("strict JSON: a NUL byte and garbage after the document (issue 23's request)", "[strict-json]") {
    require_rejected("{\"samples\":[]}\0\x8f\xffgarbage"s, "doc: NUL byte at offset 14");
}

TEST_CASE("strict JSON: a NUL byte inside a string", "[strict-json]") {
    require_rejected("{\"a\":\"x\0y\"}"s, "NUL byte at offset 7");
}

TEST_CASE("strict JSON: a NUL byte before the document", "[strict-json]") {
    require_rejected("\0{}"s, "NUL byte at offset 0");
}

TEST_CASE("strict JSON: a NUL byte in the trailing whitespace", "[strict-json]") {
    require_rejected("{}  \0"s, "NUL byte at offset 4");
}

TEST_CASE("strict JSON: anything but whitespace after the document", "[strict-json]") {
    require_rejected("{\"a\":1} x", "byte 0x78 at offset 8 after the end of the JSON document");
    require_rejected("[1,2]\n,", "byte 0x2C at offset 6 after the end");
}

TEST_CASE("strict JSON: a second document after the first", "[strict-json]") {
    require_rejected("{\"a\":1}{\"b\":2}", "byte 0x7B at offset 7 after the end");
}

TEST_CASE("strict JSON: garbage after a top-level scalar", "[strict-json]") {
    require_rejected("1 2", "not valid JSON at offset");
}

TEST_CASE("strict JSON: whitespace after the document is fine", "[strict-json]") {
    CHECK(strict_error("{\"a\":1} \t\r\n ").empty());
    CHECK(strict_error("  [1]").empty());
}

TEST_CASE("strict JSON: valid UTF-8 is accepted, up to U+10FFFF", "[strict-json]") {
    // é (2 bytes), € (3), U+FFFF, U+E000 (just past the surrogates), 😀 (4), U+10FFFF
    const std::string text = "{\"k\xC3\xA9y\":\"\xE2\x82\xAC \xEF\xBF\xBF \xEE\x80\x80 \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF\"}";
    REQUIRE(strict_error(text).empty());
    CHECK(dmin::io::parse_strict(text, "doc").at("k\xC3\xA9y").get<std::string>().size() == 21);
}

TEST_CASE("strict JSON: an overlong UTF-8 encoding", "[strict-json]") {
    require_rejected("{\"a\":\"\xC0\xAF\"}", "invalid UTF-8 at offset 6 (byte 0xC0: an overlong encoding)");
    require_rejected("{\"a\":\"\xE0\x80\xAF\"}", "offset 6 (byte 0xE0: an overlong encoding)");
    require_rejected("{\"a\":\"\xF0\x80\x80\xAF\"}", "offset 6 (byte 0xF0: an overlong encoding)");
    require_rejected("{\"a\":\"\xC1\xBF\"}", "an overlong encoding");  // U+007F in two bytes
}

TEST_CASE("strict JSON: a UTF-16 surrogate encoded in UTF-8", "[strict-json]") {
    require_rejected("{\"a\":\"\xED\xA0\x80\"}", "invalid UTF-8 at offset 6 (byte 0xED: an encoded UTF-16 surrogate");  // U+D800
    require_rejected("{\"a\":\"\xED\xBF\xBF\"}", "an encoded UTF-16 surrogate");                                        // U+DFFF
}

TEST_CASE("strict JSON: a code point beyond U+10FFFF", "[strict-json]") {
    require_rejected("{\"a\":\"\xF4\x90\x80\x80\"}", "invalid UTF-8 at offset 6 (byte 0xF4: a code point beyond U+10FFFF)");
    require_rejected("{\"a\":\"\xF7\xBF\xBF\xBF\"}", "a code point beyond U+10FFFF");
}

TEST_CASE("strict JSON: a truncated UTF-8 sequence", "[strict-json]") {
    require_rejected("{\"a\":\"\xE2\x82\"}", "invalid UTF-8 at offset 6 (byte 0xE2: a truncated multi-byte sequence)");
    require_rejected("{\"a\":\"\xF0\x9F\x98\"}", "a truncated multi-byte sequence");
    require_rejected("{\"a\":\"x\"} \xC3", "invalid UTF-8 at offset 10 (byte 0xC3: a truncated multi-byte sequence)");
}

TEST_CASE("strict JSON: a stray continuation byte", "[strict-json]") {
    require_rejected("{\"a\":\"\x8F\"}", "invalid UTF-8 at offset 6 (byte 0x8F: a continuation byte without a lead byte)");
    require_rejected("{\"\xC3\xA9\xA9\":1}", "offset 4 (byte 0xA9: a continuation byte without a lead byte)");
}

TEST_CASE("strict JSON: bytes that never occur in UTF-8", "[strict-json]") {
    require_rejected("{\"a\":\"\xFF\"}", "offset 6 (byte 0xFF: a byte that never occurs in UTF-8)");
    require_rejected("{\"a\":\"\xF8\x88\x80\x80\x80\"}", "byte 0xF8: a byte that never occurs in UTF-8");
}

TEST_CASE("strict JSON: invalid UTF-8 outside strings", "[strict-json]") {
    require_rejected("{\"a\":1}\xA0", "invalid UTF-8 at offset 7");
}

// ---- through the loader: the weights-file header --------------------------------------------------

TEST_CASE("weights header: the shipped model with NUL and garbage after its JSON (issue 23)", "[strict-json][loader]") {
    const Weights w;
    std::string h = w.header();
    const std::size_t end = h.find_last_not_of(' ') + 1;
    REQUIRE(h.size() - end >= 3);  // the padding holds the three bytes, the header length stays
    h.replace(end, 3, "\0\x8f\xff"s);
    require_load_error(w.with_header("nul_after_header", h), "strict_nul_after_header.safetensors: header: NUL byte at offset " + std::to_string(end));
}

TEST_CASE("weights header: space padding after the JSON is fine", "[strict-json][loader]") {
    const Weights w;
    REQUIRE(w.header().back() == ' ');
    CHECK_NOTHROW(dmin::load(w.with_header("padded", w.header() + "        ")));
}

TEST_CASE("weights header: only spaces may follow the JSON, not other whitespace", "[strict-json][loader]") {
    const Weights w;
    std::string h = w.header();
    const std::size_t end = h.find_last_not_of(' ') + 1;
    h[end + 1] = '\n';
    require_load_error(w.with_header("newline_padding", h),
                       "header: byte 0x0A at offset " + std::to_string(end + 1) + " after the end of the JSON document (only space padding");
}

TEST_CASE("weights header: garbage after the JSON inside the header length", "[strict-json][loader]") {
    const Weights w;
    std::string h = w.header();
    const std::size_t end = h.find_last_not_of(' ') + 1;
    h[end + 2] = 'x';
    require_load_error(w.with_header("garbage_padding", h), "byte 0x78 at offset " + std::to_string(end + 2));
}

TEST_CASE("weights header: invalid UTF-8 inside a metadata string", "[strict-json][loader]") {
    const Weights w;
    const std::pair<const char*, const char*> cases[] = {
        {"\xC0\xAF", "an overlong encoding"},
        {"\xED\xA0\x80", "an encoded UTF-16 surrogate"},
        {"\xF4\x90\x80\x80", "a code point beyond U+10FFFF"},
        {"\xE2\x82", "a truncated multi-byte sequence"},
        {"\x8F", "a continuation byte without a lead byte"},
    };
    for (const auto& [bytes, problem] : cases) {
        INFO(problem);
        require_load_error(w.with_header("bad_utf8", w.with_note(bytes)), "header: invalid UTF-8 at offset 25");
        require_load_error(w.with_header("bad_utf8", w.with_note(bytes)), problem);
    }
    CHECK_NOTHROW(dmin::load(w.with_header("good_utf8", w.with_note("\xE2\x82\xAC"))));  // € is fine
}

TEST_CASE("weights header: a NUL byte inside a metadata string", "[strict-json][loader]") {
    const Weights w;
    require_load_error(w.with_header("nul_in_note", w.with_note("a\0b"s)), "header: NUL byte at offset 26");
}

// ---- through the loader: the JSON documents stored in the metadata ------------------------------

namespace {

/// The shipped model with `tail` appended to the JSON text stored in metadata entry `key` (JSON-escaped
/// there, as a writer would store it): the path written and the offset of the tail in that text.
std::pair<std::string, std::size_t> with_appended(const std::string& name, const std::string& key, const std::string& tail) {
    const Weights w;
    json h = json::parse(w.header());
    auto& entry = h["__metadata__"][key];
    const std::size_t at = entry.get<std::string>().size();
    entry = entry.get<std::string>() + tail;
    return {w.with_header(name, h.dump()), at};
}

}  // namespace

TEST_CASE("spec: a NUL byte and garbage after the stored spec", "[strict-json][loader]") {
    const auto [path, at] = with_appended("spec_nul", "spec", "\0\x01garbage"s);
    require_load_error(path, ": spec: NUL byte at offset " + std::to_string(at));
}

TEST_CASE("spec: a second object after the stored spec", "[strict-json][loader]") {
    const auto [path, at] = with_appended("spec_two_docs", "spec", "{}");
    require_load_error(path, ": spec: byte 0x7B at offset " + std::to_string(at) + " after the end of the JSON document");
}

TEST_CASE("reference: a NUL byte and garbage after the stored reference pair", "[strict-json][loader]") {
    const auto [path, at] = with_appended("reference_nul", "reference", "\0garbage"s);
    require_load_error(path, "reference: NUL byte at offset " + std::to_string(at));
}

TEST_CASE("vocabularies: NUL, trailing garbage and invalid UTF-8", "[strict-json]") {
    const auto model = dmin::load(world_model());
    const auto vocab_error = [&](const std::string& text) -> std::string {
        try {
            dmin::Vocabularies v(text, model.spec());
            return "";
        } catch (const dmin::Error& e) {
            return e.what();
        }
    };
    CHECK(vocab_error("{}").empty());
    CHECK_THAT(vocab_error("{}\0{\"x\":1}"s), Catch::Contains("vocab: NUL byte at offset 2"));
    CHECK_THAT(vocab_error("{} []"), Catch::Contains("vocab: byte 0x5B at offset 3 after the end of the JSON document"));
    CHECK_THAT(vocab_error("{\"\xED\xB0\x80\":{}}"), Catch::Contains("vocab: invalid UTF-8 at offset 2"));
}
