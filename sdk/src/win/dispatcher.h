/*
 * dispatcher.h - internals of aipc_dispatcher (dispatcher.c): a FIFO of callbacks that the
 * application's thread runs (message-only window or aipc_dispatcher_run).
 *
 * An object (pipe, bus client) that has a dispatcher turns each event into an aipc__dq_item
 * holding copies of the callback's arguments and a reference on the object, and pushes it from
 * the I/O thread. The dispatcher's thread pops items in order and calls fn(it, 1), which
 * delivers the callback through the object's gate (cbgate.h) and frees the item; fn(it, 0)
 * frees it without delivering (the dispatcher was freed). Objects account their own queued
 * bytes for flow control; the dispatcher only counts them for aipc_dispatcher_queued.
 */
#ifndef AIPC_WIN_DISPATCHER_H
#define AIPC_WIN_DISPATCHER_H

#include <windows.h>

#include <stdint.h>

#include "asyncipc/asyncipc.h"

typedef struct aipc__dq_item aipc__dq_item;
typedef void (*aipc__dq_fn)(aipc__dq_item *it, int run);
struct aipc__dq_item {
    aipc__dq_item *next;
    aipc__dq_fn fn;
    uint32_t charge;       /* bytes counted by aipc_dispatcher_queued */
};

void aipc__dispatcher_ref(aipc_dispatcher *d);
void aipc__dispatcher_unref(aipc_dispatcher *d);
/* Queues `it` (any thread). 0, or AIPC_ECLOSED when the dispatcher was freed: the item has then
 * been dropped with fn(it, 0). */
int  aipc__dispatcher_push(aipc_dispatcher *d, aipc__dq_item *it);

#endif
