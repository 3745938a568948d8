// dmin/aligned.hpp — a 64-byte-aligned, fixed-capacity float buffer (no growth, no copies by accident).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace dmin {

inline constexpr std::size_t kAlign = 64;

/// Rounds n floats up to a whole number of 64-byte lines.
constexpr std::size_t padded_floats(std::size_t n) {
    constexpr std::size_t per_line = kAlign / sizeof(float);
    return (n + per_line - 1) / per_line * per_line;
}

/// Owning, zero-initialised, 64-byte-aligned array of floats. Movable, not copyable.
class AlignedBuffer {
public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(std::size_t n) : size_(n) {
        if (n == 0) return;
        const std::size_t bytes = padded_floats(n) * sizeof(float);
        data_ = static_cast<float*>(std::aligned_alloc(kAlign, bytes));
        if (!data_) throw std::bad_alloc();
        std::memset(data_, 0, bytes);
    }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    AlignedBuffer(AlignedBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
        if (this != &o) {
            std::free(data_);
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    ~AlignedBuffer() { std::free(data_); }

    float* data() noexcept { return data_; }
    const float* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }

private:
    float* data_ = nullptr;
    std::size_t size_ = 0;
};

/// Hands out 64-byte-aligned slices of one AlignedBuffer. Used twice: once to measure, once to carve.
class Arena {
public:
    static constexpr std::size_t kSlack = 16;

    /// Measuring mode: records sizes only.
    Arena() = default;
    explicit Arena(AlignedBuffer& buf) : base_(buf.data()), cap_(buf.size()) {}

    /// n floats, 64-byte aligned, followed by at least kSlack readable floats (kernels load whole vectors).
    float* take(std::size_t n) {
        const std::size_t at = used_;
        used_ += padded_floats(n + kSlack);
        if (!base_) return nullptr;
        if (used_ > cap_) throw std::bad_alloc();
        return base_ + at;
    }
    std::size_t used() const noexcept { return used_; }

private:
    float* base_ = nullptr;
    std::size_t cap_ = 0;
    std::size_t used_ = 0;
};

}  // namespace dmin
