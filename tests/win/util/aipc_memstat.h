/*
 * aipc_memstat.h - a process's resources for leak checks that work under Wine 8, where
 * GetProcessHandleCount answers 0 and GetProcessMemoryInfo's PrivateUsage is 0 (the idea of
 * bench/shm_probe_peer.c): the handle count from the system table (aipc_test_handle_count), the
 * next handle value (a leaked handle moves it), and committed private and mapped bytes from a
 * VirtualQuery walk (a leaked view shows up as mapped bytes). Thread: any.
 */
#ifndef AIPC_MEMSTAT_H
#define AIPC_MEMSTAT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aipc_memstat {
    int64_t handles;        /* aipc_test_handle_count() */
    int64_t next_handle;    /* the value the next handle gets (an event created and closed) */
    int64_t private_bytes;  /* committed MEM_PRIVATE */
    int64_t mapped_bytes;   /* committed MEM_MAPPED */
} aipc_memstat;

void aipc_memstat_take(aipc_memstat *m);

#ifdef __cplusplus
}
#endif
#endif
