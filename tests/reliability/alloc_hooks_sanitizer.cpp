// Stand-in for tests/alloc_hooks.cpp in the ASan+UBSan build of dmin_tests. alloc_hooks.cpp replaces the
// global operator new/delete (malloc/free underneath), which hides new/delete mismatches from ASan and
// clashes with the nothrow operator new that libstdc++ (std::stable_sort's temporary buffer) takes from
// ASan. Here nothing is replaced: the same counting API is implemented with the sanitizer allocator's
// malloc hook, which sees every allocation (operator new, new[], nothrow, aligned, malloc), so the
// "[alloc]" test is at least as strict and ASan keeps all of its checks.
#include <sanitizer/allocator_interface.h>

#include <atomic>
#include <cstddef>

#include "alloc_hooks.hpp"

namespace {
std::atomic<long> g_allocations{0};
std::atomic<bool> g_counting{false};

void on_malloc(const volatile void*, std::size_t) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
}
void on_free(const volatile void*) {}

const int g_installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}  // namespace

namespace dmin_test {
void count_allocations(bool on) {
    (void)g_installed;
    if (on) g_allocations = 0;
    g_counting = on;
}
long allocations() { return g_allocations.load(); }
}  // namespace dmin_test
