/* aipc_memstat.c - handles and committed bytes of this process (aipc_memstat.h). */
#include "aipc_memstat.h"

#include "aipc_testutil.h"

static int64_t region_bytes(DWORD type)
{
    MEMORY_BASIC_INFORMATION mb;
    int64_t n = 0;
    for (uint8_t *p = 0; VirtualQuery(p, &mb, sizeof mb) == sizeof mb;
         p = (uint8_t *)mb.BaseAddress + mb.RegionSize)
        if (mb.State == MEM_COMMIT && mb.Type == type)
            n += (int64_t)mb.RegionSize;
    return n;
}

void aipc_memstat_take(aipc_memstat *m)
{
    m->handles = aipc_test_handle_count();
    HANDLE e = CreateEventW(NULL, TRUE, FALSE, NULL);
    m->next_handle = (int64_t)(uintptr_t)e;
    CloseHandle(e);
    m->private_bytes = region_bytes(MEM_PRIVATE);
    m->mapped_bytes = region_bytes(MEM_MAPPED);
}
