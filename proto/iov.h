/*
 * iov.h - one piece of a scatter list of output bytes, portable. The broker core fills a list of
 * them with what a client's queue holds (service/core/conn.h) and the Windows connection
 * (sdk/src/win/win_conn.c) writes them as they are: in place, or gathered into its coalescing
 * buffer. The SDK's point-to-point batch and the bus client's queue hand their bytes over the same
 * way.
 */
#ifndef AIPC_PROTO_IOV_H
#define AIPC_PROTO_IOV_H
#include <stddef.h>
#include <stdint.h>

typedef struct aipc_iov {
    const uint8_t *base;
    size_t len;
} aipc_iov;

#endif
