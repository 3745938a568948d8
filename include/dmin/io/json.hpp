// dmin/io/json.hpp — strict JSON parsing (duplicate keys rejected) and typed field access with named errors.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "dmin/error.hpp"

namespace dmin::io {

using json = nlohmann::json;

/// Parses `text` as JSON, rejecting duplicate keys at any depth (nlohmann keeps the last one silently).
/// `what` names the document in error messages.
inline json parse_strict(const std::string& text, const std::string& what, int max_depth = 64) {
    // nlohmann's parser recurses per nesting level: bound the depth before parsing (stack safety).
    {
        int depth = 0;
        bool in_string = false, escaped = false;
        for (const char ch : text) {
            if (in_string) {
                if (escaped) escaped = false;
                else if (ch == '\\') escaped = true;
                else if (ch == '"') in_string = false;
            } else if (ch == '"') in_string = true;
            else if (ch == '[' || ch == '{') {
                if (++depth > max_depth) detail::fail(what, ": nesting deeper than ", max_depth, " levels");
            } else if (ch == ']' || ch == '}') --depth;
        }
    }
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
