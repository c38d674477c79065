#include "CProcessStats.h"

#include <malloc.h>

uint64_t cprocessstats_heap_bytes(void) {
    struct mallinfo2 info = mallinfo2();
    return (uint64_t)info.arena + (uint64_t)info.hblkhd;
}

uint64_t cprocessstats_heap_used_bytes(void) {
    struct mallinfo2 info = mallinfo2();
    return (uint64_t)info.uordblks + (uint64_t)info.hblkhd;
}
