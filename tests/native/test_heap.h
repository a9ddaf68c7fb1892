/* test_heap.h - live heap bytes of the test process, for suites that check what the broker
 * core really holds against what it charges: AddressSanitizer's allocator statistics in the
 * sanitizer build (bytes asked for), glibc's mallinfo2 otherwise (chunk bytes in use). */
#ifndef AIPC_TEST_HEAP_H
#define AIPC_TEST_HEAP_H

#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AIPC_TEST_HEAP_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define AIPC_TEST_HEAP_ASAN 1
#endif

#ifdef AIPC_TEST_HEAP_ASAN
#include <sanitizer/allocator_interface.h>
static inline size_t heap_live_bytes(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>
static inline size_t heap_live_bytes(void)
{
    return mallinfo2().uordblks;
}
#endif

#endif
