/*
 * errors.h - internal: the system error behind an AIPC_ESYS, kept for the caller
 * (aipc_last_syserr, errors.c).
 *
 * Every public call that returns AIPC_ESYS records the system error behind it on the calling
 * thread first, in one expression: `return aipc__syserr(GetLastError());` (capture the error
 * before any other call can change it). Thread: any; the value is the calling thread's.
 */
#ifndef AIPC_CORE_ERRORS_H
#define AIPC_CORE_ERRORS_H

#include <stdint.h>

/* Stores `err` as this thread's aipc_last_syserr() and returns AIPC_ESYS. */
int aipc__syserr(uint32_t err);

#endif
