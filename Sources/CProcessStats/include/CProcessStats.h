#ifndef CPROCESSSTATS_H
#define CPROCESSSTATS_H

#include <stdint.h>

/// Bytes the allocator holds for the heap: main-arena and thread-arena space obtained
/// with brk/mmap plus chunks mmapped directly (glibc mallinfo2: arena + hblkhd).
uint64_t cprocessstats_heap_bytes(void);

/// Bytes currently handed out by malloc (glibc mallinfo2: uordblks + hblkhd).
uint64_t cprocessstats_heap_used_bytes(void);

#endif
