/*
 * broker_mem.h - the broker's memory during an attack or a load, for the limit suite, the
 * attack driver and the soak: a sampler thread that follows the broker's private memory
 * (raw_broker_private_bytes: Linux VmData under Wine) every few milliseconds and keeps its
 * peak, and the one parseable line each measurement prints.
 */
#ifndef AIPC_BROKER_MEM_H
#define AIPC_BROKER_MEM_H

#include "raw_proto.h"

typedef struct broker_memwatch {
    const raw_broker *b;
    HANDLE thread, stop;        /* the sampler and its stop event */
    volatile LONG64 peak;       /* highest sample so far (bytes) */
    size_t before;              /* the sample taken at start */
    DWORD period_ms;
} broker_memwatch;

/* Takes the "before" sample and starts sampling every period_ms (the sampler only reads the
 * broker's /proc status; it sends nothing). Returns 0 or -1. */
int broker_memwatch_start(broker_memwatch *w, const raw_broker *b, DWORD period_ms);
/* One more sample now, then the peak so far (bytes). */
size_t broker_memwatch_peak(broker_memwatch *w);
/* Stops the sampler; returns the peak (bytes). */
size_t broker_memwatch_stop(broker_memwatch *w);

/* Prints the line "MEM {"class":..,"before_kib":..,"peak_kib":..,"after_kib":..,"bound_kib":..}"
 * to stderr (bound 0: none documented; extra: more JSON members or NULL). */
void broker_mem_line(const char *cls, size_t before, size_t peak, size_t after, size_t bound,
                     const char *extra);

#endif
