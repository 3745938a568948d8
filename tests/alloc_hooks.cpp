// Replaces the global operator new/delete for the test binary so tests can count heap allocations.
// Kept in its own translation unit so the compiler cannot pair inlined new/delete with malloc/free.
#include <atomic>
#include <cstdlib>
#include <new>

#include "alloc_hooks.hpp"

namespace {
std::atomic<long> g_allocations{0};
std::atomic<bool> g_counting{false};
}  // namespace

namespace dmin_test {
void count_allocations(bool on) {
    if (on) g_allocations = 0;
    g_counting = on;
}
long allocations() { return g_allocations.load(); }
}  // namespace dmin_test

void* operator new(std::size_t n) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
