// dmin/io/safetensors.hpp — validating reader for the safetensors container (weights_format.md §1).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmin/error.hpp"
#include "dmin/io/json.hpp"

namespace dmin::io {

/// A whole file mapped read-only and private (POSIX mmap). Unmapped on destruction.
class FileMapping {
public:
    FileMapping(const std::string& path, std::uint64_t expected_size) {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) detail::fail(path, ": cannot open file for mapping");
        struct stat st {};
        if (::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) != expected_size) {
            ::close(fd);
            detail::fail(path, ": file changed size while loading");
        }
        size_ = expected_size;
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED) detail::fail(path, ": mmap failed");
        data_ = static_cast<const unsigned char*>(p);
    }
    FileMapping(const FileMapping&) = delete;
    FileMapping& operator=(const FileMapping&) = delete;
    ~FileMapping() { ::munmap(const_cast<unsigned char*>(data_), size_); }
    const unsigned char* data() const noexcept { return data_; }
    std::uint64_t size() const noexcept { return size_; }

private:
    const unsigned char* data_ = nullptr;
    std::uint64_t size_ = 0;
};

/// One tensor entry of the header. Offsets are absolute file offsets.
struct TensorInfo {
    std::string name;
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0;  ///< absolute byte offset in the file
    std::uint64_t bytes = 0;
    bool bf16 = false;        ///< dtype BF16 (2 bytes per element, widened to float32 on read); else F32
    const char* dtype() const noexcept { return bf16 ? "BF16" : "F32"; }
    std::int64_t numel() const {
        std::int64_t n = 1;
        for (auto d : shape) n *= d;
        return n;
    }
};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
inline constexpr bool kHostLittleEndian = false;
#else
inline constexpr bool kHostLittleEndian = true;
#endif

inline constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;

/// A parsed and validated header: tensor table plus the string-to-string `__metadata__` map.
/// Construction reads only the header; tensor data is read on demand with read_f32().
class SafetensorsFile {
public:
    explicit SafetensorsFile(std::string path) : path_(std::move(path)) {
        std::ifstream in(path_, std::ios::binary);
        if (!in) detail::fail(path_, ": cannot open file");
        in.seekg(0, std::ios::end);
        file_size_ = static_cast<std::uint64_t>(in.tellg());
        in.seekg(0);
        if (file_size_ < 8) detail::fail(path_, ": truncated: ", file_size_, " bytes, a safetensors file starts with an 8-byte header length");
        unsigned char len_bytes[8];
        in.read(reinterpret_cast<char*>(len_bytes), 8);
        std::uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
        if (n > kMaxHeaderBytes)
            detail::fail(path_, ": header length ", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes (corrupt file or wrong endianness)");
        if (n > file_size_ - 8)
            detail::fail(path_, ": truncated: header length ", n, " but only ", file_size_ - 8, " bytes follow");
        std::string text(n, '\0');
        in.read(text.data(), static_cast<std::streamsize>(n));
        if (!in) detail::fail(path_, ": truncated while reading the header");
        data_begin_ = 8 + n;
        parse_header(text);
    }

    const std::string& path() const noexcept { return path_; }
    std::uint64_t file_size() const noexcept { return file_size_; }
    std::uint64_t data_begin() const noexcept { return data_begin_; }
    const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }
    const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

    const TensorInfo* find(const std::string& name) const {
        auto it = index_.find(name);
        return it == index_.end() ? nullptr : &tensors_[it->second];
    }
    const std::string& meta(const std::string& key) const {
        auto it = metadata_.find(key);
        if (it == metadata_.end()) detail::fail(path_, ": __metadata__ has no \"", key, "\" entry");
        return it->second;
    }

    /// Reads tensor `t` into dst (t.numel() floats), converting from little-endian and widening BF16
    /// to float32 (exact), and rejects non-finite values. `in` must be an open stream on this file.
    void read_f32(std::ifstream& in, const TensorInfo& t, float* dst) const {
        in.seekg(static_cast<std::streamoff>(t.begin));
        in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(t.bytes));
        if (!in) detail::fail(path_, ": truncated while reading tensor ", t.name);
        const auto n = static_cast<std::size_t>(t.numel());
        if (t.bf16) {
            widen_bf16_in_place(dst, n);
        } else if constexpr (!kHostLittleEndian) {
            auto* b = reinterpret_cast<unsigned char*>(dst);
            for (std::size_t i = 0; i < n; ++i) std::reverse(b + 4 * i, b + 4 * i + 4);
        }
        check_finite(t.name, dst, n);
    }

    void check_finite(const std::string& name, const float* p, std::size_t n) const {
        for (std::size_t i = 0; i < n; ++i)
            if (!std::isfinite(p[i]))
                detail::fail(path_, ": tensor ", name, " holds a non-finite value (", p[i], ") at flat index ", i);
    }

private:
    /// The n little-endian bf16 at the start of dst as n floats: from the last element back, so each
    /// float is written over bf16 values already widened (float i covers bf16 2i and 2i + 1 ≥ i).
    static void widen_bf16_in_place(float* dst, std::size_t n) {
        auto* b = reinterpret_cast<unsigned char*>(dst);
        for (std::size_t i = n; i-- > 0;) {
            const std::uint32_t u = (static_cast<std::uint32_t>(b[2 * i + 1]) << 24) | (static_cast<std::uint32_t>(b[2 * i]) << 16);
            std::memcpy(b + 4 * i, &u, sizeof u);
        }
    }

    void parse_header(const std::string& text) {
        // Offsets in its errors count from the header's first byte (file offset 8). After the JSON
        // object only the writer's space padding may follow (weights_format.md §1).
        const json h = parse_strict(text, path_ + ": header", 64, Trailing::spaces);
        if (!h.is_object()) detail::fail(path_, ": header: expected a JSON object");
        const std::uint64_t data_size = file_size_ - data_begin_;
        for (auto it = h.begin(); it != h.end(); ++it) {
            if (it.key() == "__metadata__") {
                if (!it->is_object()) detail::fail(path_, ": __metadata__: expected an object of strings");
                for (auto m = it->begin(); m != it->end(); ++m) {
                    if (!m->is_string()) detail::fail(path_, ": __metadata__.", m.key(), ": expected a string");
                    metadata_[m.key()] = m->get<std::string>();
                }
                continue;
            }
            tensors_.push_back(parse_entry(it.key(), *it, data_size));
        }
        // Back to back, no gaps, no overlap, covering the data section exactly.
        std::vector<const TensorInfo*> order;
        for (const auto& t : tensors_) order.push_back(&t);
        std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
        std::uint64_t expect = data_begin_;
        for (const auto* t : order) {
            if (t->begin != expect)
                detail::fail(path_, ": tensor ", t->name, ": data_offsets start at ", t->begin - data_begin_, ", expected ",
                             expect - data_begin_, " (tensors must be back to back without gaps or overlap)");
            expect = t->begin + t->bytes;
        }
        if (expect != file_size_)
            detail::fail(path_, ": data_offsets cover ", expect - data_begin_, " bytes but the data section has ", data_size,
                         " bytes", expect < file_size_ ? " (trailing bytes)" : "");
        for (std::size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
    }

    TensorInfo parse_entry(const std::string& name, const json& e, std::uint64_t data_size) const {
        const Fields f{e, path_ + ": tensor " + name};
        if (!e.is_object()) detail::fail(f.where, ": expected an object with dtype, shape, data_offsets");
        const std::string dtype = f.str("dtype");
        if (dtype != "F32" && dtype != "BF16") detail::fail(f.where, ": dtype ", dtype, " is not supported (expected F32 or BF16)");
        const std::uint64_t size = dtype == "BF16" ? 2 : 4;
        const auto& shape = f.at("shape");
        if (!shape.is_array()) f.bad("shape", "a list of non-negative integers");
        TensorInfo t;
        t.name = name;
        std::uint64_t numel = 1;
        for (const auto& d : shape) {
            if (!d.is_number_unsigned()) f.bad("shape", "a list of non-negative integers");
            const auto x = d.get<std::uint64_t>();
            if (x != 0 && numel > std::numeric_limits<std::uint64_t>::max() / 4 / x)
                detail::fail(f.where, ": shape ", shape.dump(), " overflows the addressable size");
            numel *= x;
            t.shape.push_back(static_cast<std::int64_t>(x));
        }
        const auto& off = f.at("data_offsets");
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            f.bad("data_offsets", "[begin, end] with non-negative integers");
        const auto b = off[0].get<std::uint64_t>(), en = off[1].get<std::uint64_t>();
        if (b > en || en > data_size)
            detail::fail(f.where, ": data_offsets [", b, ", ", en, "] out of range of the ", data_size, "-byte data section");
        if (en - b != numel * size)
            detail::fail(f.where, ": shape ", shape.dump(), " needs ", numel * size, " bytes but data_offsets span ", en - b);
        t.bf16 = size == 2;
        t.begin = data_begin_ + b;
        t.bytes = en - b;
        return t;
    }

    std::string path_;
    std::uint64_t file_size_ = 0;
    std::uint64_t data_begin_ = 0;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, std::size_t> index_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace dmin::io
