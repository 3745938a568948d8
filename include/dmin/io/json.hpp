// dmin/io/json.hpp — strict JSON parsing (duplicate keys rejected) and typed field access with named errors.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "dmin/error.hpp"

namespace dmin::detail {

/// Checks the UTF-8 sequence starting at s[i] (a byte >= 0x80) against RFC 3629: shortest form only,
/// no UTF-16 surrogates, nothing beyond U+10FFFF. Returns what is wrong, or nullptr and its length in `len`.
/// Written out by hand so that the rule dmin enforces is visible here, not inherited from a parser.
inline const char* utf8_problem(const std::string& s, std::size_t i, std::size_t& len) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char lead = byte(i);
    std::uint32_t cp = 0, smallest = 0;
    if ((lead & 0xE0) == 0xC0) {
        len = 2; cp = lead & 0x1Fu; smallest = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
        len = 3; cp = lead & 0x0Fu; smallest = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
        len = 4; cp = lead & 0x07u; smallest = 0x10000;
    } else {
        return (lead & 0xC0) == 0x80 ? "a continuation byte without a lead byte" : "a byte that never occurs in UTF-8";
    }
    for (std::size_t k = 1; k < len; ++k) {
        if (i + k >= s.size() || (byte(i + k) & 0xC0) != 0x80) return "a truncated multi-byte sequence";
        cp = (cp << 6) | (byte(i + k) & 0x3Fu);
    }
    if (cp < smallest) return "an overlong encoding";
    if (cp >= 0xD800 && cp <= 0xDFFF) return "an encoded UTF-16 surrogate (U+D800 to U+DFFF)";
    if (cp > 0x10FFFF) return "a code point beyond U+10FFFF";
    return nullptr;
}

inline std::string hex_byte(unsigned char b) {
    const char* digits = "0123456789ABCDEF";
    return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

inline bool json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace dmin::detail

namespace dmin::io {

using json = nlohmann::json;

/// What may follow the top-level JSON value: JSON whitespace (a request, a spec), or only spaces (the
/// weights-file header, which the writer pads with 0x20 up to the data section; weights_format.md §1).
enum class Trailing { whitespace, spaces };

/// Checks every byte of `text` before nlohmann sees it: nlohmann stops at a NUL byte as if the input
/// ended there, and would accept `{}` followed by NUL and anything. Rejects, naming the byte offset:
/// a NUL byte, invalid UTF-8 (inside strings too), nesting deeper than `max_depth` (nlohmann's parser
/// recurses per level: stack safety), and anything but `trailing` after a top-level object or array.
inline void check_json_bytes(const std::string& text, const std::string& what, int max_depth, Trailing trailing) {
    std::string open;             // the brackets still open, innermost last
    std::size_t doc_end = 0;      // offset just past the top-level object/array, once it closed
    bool in_string = false, escaped = false, matched = true;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char ch = text[i];
        if (ch == '\0') detail::fail(what, ": NUL byte at offset ", i);
        if (static_cast<unsigned char>(ch) >= 0x80) {
            std::size_t len = 1;
            if (const char* problem = detail::utf8_problem(text, i, len))
                detail::fail(what, ": invalid UTF-8 at offset ", i, " (byte ", detail::hex_byte(static_cast<unsigned char>(ch)), ": ", problem, ")");
            i += len - 1;
            escaped = false;  // "\" before a multi-byte character (invalid JSON, nlohmann says so) escapes nothing more
            continue;
        }
        if (doc_end > 0) {
            const bool ok = trailing == Trailing::spaces ? ch == ' ' : detail::json_space(ch);
            if (!ok)
                detail::fail(what, ": byte ", detail::hex_byte(static_cast<unsigned char>(ch)), " at offset ", i,
                             " after the end of the JSON document (only ",
                             trailing == Trailing::spaces ? "space padding" : "whitespace", " may follow it)");
            continue;
        }
        if (in_string) {
            if (escaped) escaped = false;
            else if (ch == '\\') escaped = true;
            else if (ch == '"') in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            open += ch;
            if (static_cast<int>(open.size()) > max_depth) detail::fail(what, ": nesting deeper than ", max_depth, " levels");
        } else if ((ch == ']' || ch == '}') && !open.empty()) {
            // A mismatched bracket is a syntax error nlohmann reports; stop looking for the end then.
            matched = matched && open.back() == (ch == ']' ? '[' : '{');
            open.pop_back();
            if (open.empty() && matched) doc_end = i + 1;
        }
    }
}

/// Parses `text` as JSON strictly to its last byte: check_json_bytes() first, then nlohmann with
/// duplicate keys rejected at any depth (nlohmann keeps the last one silently). `what` names the
/// document in error messages; every rejection is a dmin::Error.
inline json parse_strict(const std::string& text, const std::string& what, int max_depth = 64,
                         Trailing trailing = Trailing::whitespace) {
    check_json_bytes(text, what, max_depth, trailing);
    std::vector<std::set<std::string>> seen;
    auto cb = [&](int /*depth*/, json::parse_event_t ev, json& parsed) -> bool {
        switch (ev) {
            case json::parse_event_t::object_start: seen.emplace_back(); break;
            case json::parse_event_t::object_end: if (!seen.empty()) seen.pop_back(); break;
            case json::parse_event_t::key: {
                const auto& k = parsed.get_ref<const std::string&>();
                if (!seen.empty() && !seen.back().insert(k).second)
                    detail::fail(what, ": duplicate key \"", k, "\"");
                break;
            }
            default: break;
        }
        return true;
    };
    try {
        return json::parse(text, cb);
    } catch (const json::parse_error& e) {
        // e.byte counts from 1 and is one past the last byte read.
        detail::fail(what, ": not valid JSON at offset ", e.byte > 0 ? e.byte - 1 : 0, " (", e.what(), ")");
    } catch (const json::exception& e) {
        detail::fail(what, ": not valid JSON (", e.what(), ")");
    }
}

/// Typed access to `obj[key]` with an error naming `where.key`, the expected type and what was found.
struct Fields {
    const json& obj;
    std::string where;

    bool has(const char* key) const { return obj.contains(key) && !obj.at(key).is_null(); }

    const json& at(const char* key) const {
        if (!obj.is_object() || !obj.contains(key)) detail::fail(where, ": missing field \"", key, "\"");
        return obj.at(key);
    }
    [[noreturn]] void bad(const char* key, const char* expected) const {
        detail::fail(where, ".", key, ": expected ", expected, ", found ", at(key).dump());
    }
    std::string str(const char* key) const {
        const auto& v = at(key);
        if (!v.is_string()) bad(key, "a string");
        return v.get<std::string>();
    }
    std::string str_or(const char* key, const std::string& dflt) const { return has(key) ? str(key) : dflt; }
    bool boolean(const char* key) const {
        const auto& v = at(key);
        if (!v.is_boolean()) bad(key, "true or false");
        return v.get<bool>();
    }
    bool boolean_or(const char* key, bool dflt) const { return has(key) ? boolean(key) : dflt; }
    std::int64_t integer(const char* key, std::int64_t lo, std::int64_t hi) const {
        const auto& v = at(key);
        if (!v.is_number_integer()) bad(key, "an integer");
        const auto x = v.get<std::int64_t>();
        if (x < lo || x > hi) detail::fail(where, ".", key, ": expected an integer in [", lo, ", ", hi, "], found ", x);
        return x;
    }
    double number(const char* key) const {
        const auto& v = at(key);
        if (!v.is_number()) bad(key, "a number");
        return v.get<double>();
    }
    double number_or(const char* key, double dflt) const { return has(key) ? number(key) : dflt; }
    std::vector<int> int_list(const char* key, int lo, int hi) const {
        const auto& v = at(key);
        if (!v.is_array()) bad(key, "a list of integers");
        std::vector<int> out;
        for (const auto& e : v) {
            if (!e.is_number_integer() || e.get<std::int64_t>() < lo || e.get<std::int64_t>() > hi)
                detail::fail(where, ".", key, ": expected integers in [", lo, ", ", hi, "], found ", v.dump());
            out.push_back(e.get<int>());
        }
        return out;
    }
};

}  // namespace dmin::io
