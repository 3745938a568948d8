// Heap-allocation counting for tests (alloc_hooks.cpp replaces the global operator new).
#pragma once

namespace dmin_test {
/// Starts (resetting the count) or stops counting calls to operator new.
void count_allocations(bool on);
long allocations();

struct AllocationCounter {
    AllocationCounter() { count_allocations(true); }
    ~AllocationCounter() { count_allocations(false); }
    long count() const { return allocations(); }
};
}  // namespace dmin_test
