// dmin/aligned.hpp — a 64-byte-aligned, fixed-capacity float buffer (no growth, no copies by accident).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

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

/// N floats, 64-byte aligned and zeroed, as one object: the scratch of a layout whose size the compiler
/// measured (Arena's measuring mode below). `new` honours the alignment (C++17), so it may live on the heap.
template <std::size_t N>
struct FixedScratch {
    alignas(kAlign) float data[N] = {};
};

/// Hands out 64-byte-aligned slices of one buffer. Used twice: once to measure, once to carve. The
/// measuring mode is constexpr, so that a layout whose sizes are all compile-time constants is measured
/// by the compiler (a compile-time shape's per-branch scratch, dmin/branch_state.hpp).
class Arena {
public:
    static constexpr std::size_t kSlack = 16;

    /// Measuring mode: records sizes only.
    constexpr Arena() = default;
    explicit Arena(AlignedBuffer& buf) : base_(buf.data()), cap_(buf.size()) {}
    /// Carves `cap` floats at `base` (64-byte aligned, zeroed by its owner).
    Arena(float* base, std::size_t cap) : base_(base), cap_(cap) {}

    /// n floats, 64-byte aligned, followed by at least kSlack readable floats (kernels load whole vectors).
    constexpr float* take(std::size_t n) {
        const std::size_t at = used_;
        used_ += padded_floats(n + kSlack);
        if (!base_) return nullptr;
        if (used_ > cap_) throw std::bad_alloc();
        return base_ + at;
    }
    /// take() of `n` float slots seen as T (int indices, bf16 pair words, double sums: sizeof(T) <= 8,
    /// n counts floats). The cast is never reached while measuring, which keeps take_as constexpr.
    template <class T>
    constexpr T* take_as(std::size_t n) {
        static_assert(sizeof(T) <= 2 * sizeof(float) && kAlign % alignof(T) == 0, "T fits float slots of an aligned slice");
        float* p = take(n);
        if (!p) return nullptr;
        return reinterpret_cast<T*>(p);
    }
    constexpr std::size_t used() const noexcept { return used_; }

private:
    float* base_ = nullptr;
    std::size_t cap_ = 0;
    std::size_t used_ = 0;
};

/// Load-time storage of 32-bit words (bf16 weight pairs): each take() is a fresh 64-byte-aligned block
/// with kSlack readable words after it, so kernels may load whole vectors past a row's end. The blocks
/// outlive moves of the store (each is its own allocation).
class WordStore {
public:
    std::uint32_t* take(std::size_t n) {
        blocks_.emplace_back(n + Arena::kSlack);
        bytes_ += (n + Arena::kSlack) * sizeof(float);
        static_assert(sizeof(float) == sizeof(std::uint32_t), "a word per float slot");
        return reinterpret_cast<std::uint32_t*>(blocks_.back().data());
    }
    std::size_t bytes() const noexcept { return bytes_; }

private:
    std::vector<AlignedBuffer> blocks_;
    std::size_t bytes_ = 0;
};

}  // namespace dmin
