/*
 * shm_seg_common.h - what test_shm_seg.c and its helper shm_seg_peer.exe share: the exit codes
 * of the peer's one-shot modes and the messages of its loop mode (over a byte pipe).
 */
#ifndef AIPC_SHM_SEG_COMMON_H
#define AIPC_SHM_SEG_COMMON_H

#include <stdint.h>

#include "aipc_memstat.h"

/* One-shot modes exit with 0 on success, SHM_PEER_RC(rc) when an aipc__shm_seg_* call returned
 * rc < 0, or one of these. */
#define SHM_PEER_RC(rc)   (100 - (rc))     /* AIPC_EACCESS (-15) -> 115, AIPC_EUNTRUSTED -> 116 */
#define SHM_PEER_BADARGS  2
#define SHM_PEER_BADBYTES 3                /* the mapped bytes are not the creator's pattern */
#define SHM_PEER_WRITABLE 4                /* the receiver's view is not read-only */
#define SHM_PEER_TIMEOUT  5

/* Loop mode: the suite sends commands, the peer answers each with a reply. */
enum {
    SHM_CMD_CYCLE = 1,     /* open name, check the pattern seed over size bytes, close */
    SHM_CMD_STAT = 2,      /* aipc_memstat of the peer */
    SHM_CMD_QUIT = 3,
    SHM_CMD_MAP = 4,       /* open name (size bytes) and keep the view */
    SHM_CMD_CHECK = 5,     /* check the pattern seed over the kept view */
    SHM_CMD_UNMAP = 6,     /* close the kept view */
};
typedef struct shm_cmd {
    uint32_t op, size, seed, pad;
    char name[64];
} shm_cmd;
typedef struct shm_reply {
    int32_t rc;            /* CYCLE: 0 or a peer exit code as above */
    uint32_t pad;
    aipc_memstat stat;     /* STAT */
} shm_reply;

#endif
