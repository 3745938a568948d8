// Shared helpers for dmin's libFuzzer targets (tests/fuzz/README.md).
//
// Oracle used by every target: dmin::Error and std::bad_alloc are accepted outcomes; any other
// exception, a crash, a sanitizer report or a hang is a bug. `fuzz_check` aborts with a message so
// that libFuzzer records the input as a crash. The harnesses' own steps (writing files, dumping JSON)
// are written so that they cannot throw: an exception always comes from the library.
// The request, load and spec targets also check that JSON the library accepted was read whole
// (`check_read_whole`: an independent scan, not dmin's parser).
#pragma once

#include <dmin/dmin.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

namespace dmin_fuzz {

[[noreturn]] inline void die(const std::string& msg) {
    std::fprintf(stderr, "\n*** dmin fuzz oracle violated: %s\n", msg.c_str());
    std::fflush(stderr);
    std::abort();
}

inline void fuzz_check(bool ok, const std::string& msg) {
    if (!ok) die(msg);
}

/// Whether the named oracle is checked. DMIN_FUZZ_SKIP=name,name... turns oracles off, to keep a
/// campaign going past a known, reported bug (tests/fuzz/README.md); CTest never sets it.
inline bool oracle_enabled(const char* name) {
    static const std::string skip = [] {
        const char* e = std::getenv("DMIN_FUZZ_SKIP");
        return "," + std::string(e ? e : "") + ",";
    }();
    return skip.find("," + std::string(name) + ",") == std::string::npos;
}

/// Runs f(); accepts dmin::Error and std::bad_alloc (returns false), aborts on any other exception.
template <class F>
bool accepted(const char* what, F&& f, std::string* message = nullptr) {
    try {
        f();
        return true;
    } catch (const dmin::Error& e) {
        if (message) *message = e.what();
        return false;
    } catch (const std::bad_alloc&) {
        if (message) *message = "std::bad_alloc";
        return false;
    } catch (const std::exception& e) {
        die(std::string(what) + " threw a non-dmin exception: " + e.what());
    } catch (...) {
        die(std::string(what) + " threw a non-std exception");
    }
}

/// Whether bytes [i, i + len) of `t` are one well-formed UTF-8 sequence, by the table of well-formed
/// byte sequences in the Unicode standard (ch. 3, table 3-7). A second opinion on dmin's own validator
/// (include/dmin/io/json.hpp), which decodes and range-checks instead; `len` is set to the length.
inline bool well_formed_utf8(const std::string& t, std::size_t i, std::size_t& len) {
    const auto at = [&](std::size_t k) { return k < t.size() ? static_cast<unsigned char>(t[k]) : 0u; };
    const unsigned b0 = at(i);
    const auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
    len = 1;
    if (b0 <= 0x7F) return true;
    // The range allowed for the second byte depends on the first; every later byte is 80..BF.
    unsigned lo = 0x80, hi = 0xBF;
    if (in(b0, 0xC2, 0xDF)) {
        len = 2;
    } else if (in(b0, 0xE0, 0xEF)) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;  // below: overlong
        if (b0 == 0xED) hi = 0x9F;  // above: surrogates
    } else if (in(b0, 0xF0, 0xF4)) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;  // below: overlong
        if (b0 == 0xF4) hi = 0x8F;  // above: beyond U+10FFFF
    } else {
        return false;
    }
    if (i + len > t.size() || !in(at(i + 1), lo, hi)) return false;
    for (std::size_t k = 2; k < len; ++k)
        if (!in(at(i + k), 0x80, 0xBF)) return false;
    return true;
}

/// Where the top-level JSON value starting at offset i of `t` ends (one past its last byte), found by
/// bracket- and string-aware scanning alone. Meant only for text dmin accepted: it does not validate.
inline std::size_t end_of_value(const std::string& t, std::size_t i) {
    if (i >= t.size()) return i;
    if (t[i] != '{' && t[i] != '[' && t[i] != '"') {  // number, true, false, null
        while (i < t.size() && (std::isalnum(static_cast<unsigned char>(t[i])) || t[i] == '+' || t[i] == '-' || t[i] == '.')) ++i;
        return i;
    }
    long depth = 0;
    bool in_string = false;
    for (; i < t.size(); ++i) {
        const char c = t[i];
        if (in_string) {
            if (c == '\\') ++i;  // skip the escaped character
            else if (c == '"') in_string = false;
            if (!in_string && depth == 0) return i + 1;  // a top-level string just closed
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            ++depth;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return i;
}

/// Empty if `t` is, byte for byte, one JSON value read whole: no NUL, valid UTF-8 throughout, and
/// after the value only JSON whitespace (only spaces when `spaces_only`: a weights-file header).
/// Otherwise what is wrong and where.
inline std::string not_read_whole(const std::string& t, bool spaces_only = false) {
    for (std::size_t i = 0, len = 1; i < t.size(); i += len) {
        if (t[i] == '\0') return "NUL byte at offset " + std::to_string(i);
        if (!well_formed_utf8(t, i, len)) return "ill-formed UTF-8 at offset " + std::to_string(i);
    }
    std::size_t i = t.find_first_not_of(" \t\r\n");
    if (i == std::string::npos) return "no JSON value";
    for (i = end_of_value(t, i); i < t.size(); ++i)
        if (spaces_only ? t[i] != ' ' : std::strchr(" \t\r\n", t[i]) == nullptr)
            return "byte " + std::to_string(static_cast<unsigned char>(t[i])) + " at offset " + std::to_string(i) +
                   " after the end of the top-level JSON value (" + std::to_string(t.size()) + " bytes in all)";
    return "";
}

/// The read-whole oracle: `what` (a JSON document dmin accepted) must pass not_read_whole().
inline void check_read_whole(const std::string& what, const std::string& text, bool spaces_only = false) {
    if (!oracle_enabled("read-whole")) return;
    const std::string problem = not_read_whole(text, spaces_only);
    if (!problem.empty()) die("dmin accepted " + what + " but did not read it whole: " + problem);
}

/// A harness-side dump that cannot throw: invalid UTF-8 (which dmin must have rejected before the
/// harness gets here) is replaced rather than raising nlohmann's type_error 316.
inline std::string safe_dump(const dmin::io::json& j) { return j.dump(-1, ' ', false, dmin::io::json::error_handler_t::replace); }

/// An anonymous in-memory file (memfd) holding `bytes`, reachable by path as /proc/self/fd/N, so
/// dmin::load can open (and memory-map) it like any file without touching the disk.
class MemFile {
public:
    MemFile(const void* data, std::size_t size) {
        fd_ = ::memfd_create("dmin_fuzz", MFD_CLOEXEC);
        if (fd_ < 0) die("memfd_create failed");
        const auto* p = static_cast<const unsigned char*>(data);
        std::size_t done = 0;
        while (done < size) {
            const ssize_t w = ::write(fd_, p + done, size - done);
            if (w <= 0) die("write to memfd failed");
            done += static_cast<std::size_t>(w);
        }
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    explicit MemFile(const std::string& bytes) : MemFile(bytes.data(), bytes.size()) {}
    MemFile(const MemFile&) = delete;
    MemFile& operator=(const MemFile&) = delete;
    ~MemFile() { ::close(fd_); }
    const std::string& path() const { return path_; }

private:
    int fd_ = -1;
    std::string path_;
};

/// Little reader over the fuzz input: every getter returns something (0 once the input is exhausted).
class Bytes {
public:
    Bytes(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
    bool empty() const { return n_ == 0; }
    std::uint8_t u8() {
        if (n_ == 0) return 0;
        --n_;
        return *p_++;
    }
    std::uint64_t u64() {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(u8()) << (8 * i);
        return v;
    }
    std::uint32_t u32() {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(u8()) << (8 * i);
        return v;
    }
    /// Uniform-ish in [0, n) (n > 0).
    std::uint64_t below(std::uint64_t n) { return n <= 256 ? u8() % n : u64() % n; }
    bool coin() { return u8() & 1; }
    float raw_float() {
        const std::uint32_t b = u32();
        float f;
        std::memcpy(&f, &b, 4);
        return f;
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
};

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) die("cannot open " + path);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

/// Models the request and scorer targets run against: $DMIN_FUZZ_MODELS (colon-separated paths) or
/// the fixture files compiled in as DMIN_FUZZ_DEFAULT_MODELS.
inline std::vector<std::string> model_paths() {
    const char* env = std::getenv("DMIN_FUZZ_MODELS");
#ifdef DMIN_FUZZ_DEFAULT_MODELS
    std::string list = env ? env : DMIN_FUZZ_DEFAULT_MODELS;
#else
    std::string list = env ? env : "";
#endif
    std::vector<std::string> out;
    std::string cur;
    for (char c : list + ":") {
        if (c == ':') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (out.empty()) die("no models: set DMIN_FUZZ_MODELS=a.safetensors:b.safetensors");
    return out;
}

/// The fuzz models loaded at one precision ("float32", "bf16", "bf16-dnn": dmin::set_precision).
inline std::vector<dmin::Model<>> load_models(const std::string& precision) {
    dmin::LoadOptions options;
    dmin::set_precision(options, precision);
    std::vector<dmin::Model<>> v;
    for (const auto& p : model_paths()) {
        try {
            v.push_back(dmin::load(p, options));
        } catch (const std::exception& e) {
            die("cannot load fuzz model " + p + " (" + precision + "): " + e.what());
        }
    }
    return v;
}

inline std::vector<dmin::Model<>>& models() {
    static std::vector<dmin::Model<>> ms = load_models("float32");
    return ms;
}

/// The same models in bf16, the target attention's products only or (dnn) the DNN's too.
inline std::vector<dmin::Model<>>& models_bf16(bool dnn) {
    static std::vector<dmin::Model<>> attention = load_models("bf16"), with_dnn = load_models("bf16-dnn");
    return dnn ? with_dnn : attention;
}

/// Rough upper bound on the floats a Scorer allocates for `s` (scorer.hpp carve()). The harnesses skip
/// scoring models beyond a few tens of millions: a spec may legitimately ask for L = 65536 (L² attention
/// logits = 16 GiB), which is a property of the model, not a parser bug (tests/fuzz/README.md).
/// Whether the fast path can be held to the reference path to 1e-4. Hardshrink jumps by λ at |x| = λ:
/// the fast path's factorised sums round differently from the reference's, so a pre-activation within
/// rounding of λ can land on different sides in the two paths (found by fuzz_scorer on act_sweep_4:
/// outputs 0.02 apart). Both are correct evaluations of the model; only continuous activations compare.
inline bool paths_comparable(const dmin::ModelSpec& s) {
    for (dmin::Act a : s.attention_acts)
        if (a == dmin::Act::hardshrink) return false;
    for (dmin::Act a : s.dnn_acts)
        if (a == dmin::Act::hardshrink) return false;
    return true;
}

inline double scorer_floats(const dmin::ModelSpec& s) {
    double total = 0;
    for (const auto& b : s.branches) {
        const double L = b.L, D = b.D, H = s.num_heads, A1 = s.attention_units.empty() ? 1 : s.attention_units[0];
        total += L * L + L * D * (12.0 + H) + H * L * A1 + L * (D + s.pos_emb_dim) + 64.0 * L;
    }
    double widest = s.dnn_input_dim;
    for (int u : s.dnn_units) widest = std::max<double>(widest, u);
    for (int u : s.attention_units) widest = std::max<double>(widest, u);
    return total + 96.0 * widest;
}

/// A valid request for any model: every id 0 (always in range), every value 0.
struct ZeroRequest {
    std::vector<std::int64_t> ids, cand_ids;
    std::vector<float> values, cand_values;
    std::size_t ni = 1, nv = 1, n = 0;
    template <class M>
    ZeroRequest(const M& m, std::size_t count)
        : ids(static_cast<std::size_t>(m.num_ids()) + 1, 0), values(static_cast<std::size_t>(m.num_values()) + 1, 0.0f),
          ni(static_cast<std::size_t>(std::max(1, m.num_candidate_ids()))),
          nv(static_cast<std::size_t>(std::max(1, m.num_candidate_values()))), n(count) {
        cand_ids.assign(ni * std::max<std::size_t>(count, 1), 0);
        cand_values.assign(nv * std::max<std::size_t>(count, 1), 0.0f);
    }
    dmin::SampleView view() const { return {ids.data(), values.data()}; }
    dmin::Candidates candidates() const { return {n, cand_ids.data(), ni, cand_values.data(), nv}; }
};

/// Output contract of a scored request: finite, and a probability for binary models.
template <class M>
void check_outputs(const M& m, const float* p, std::size_t n, const char* what) {
    if (!oracle_enabled("probability")) return;
    for (std::size_t c = 0; c < n; ++c) {
        const bool ok = m.spec().regression() ? std::isfinite(p[c]) : (p[c] >= 0.0f && p[c] <= 1.0f);
        if (!ok) die(std::string(what) + ": output " + std::to_string(c) + " = " + std::to_string(p[c]) +
                     (m.spec().regression() ? " is not finite" : " is not a probability in [0, 1]"));
    }
}

}  // namespace dmin_fuzz
