/*
 * shm_probe.h - shared by the three units of shm_probe (see shm_probe.c's first comment):
 * shm_probe.c (driver, timed runs), shm_probe_peer.c (the peer processes and the section
 * helpers both sides use), shm_probe_relay.c (a peer acting as the broker), shm_probe_checks.c (what Wine supports: names, DACLs, lifetime, leaks).
 */
#ifndef AIPC_SHM_PROBE_H
#define AIPC_SHM_PROBE_H

#include "bench_util.h"

#define PIPE_BUF_SZ (256u * 1024u)
#define MIB         (1024u * 1024u)
#define REPS        7
#define RING_SLOTS  8
#define FAN_MAX     16

enum { OP_RAW_STREAM = 1, OP_RAW_PING, OP_FRESH, OP_RING, OP_OPEN, OP_QUIT, OP_LINK_SERVE, OP_RELAY };
typedef struct probe_cmd {
    uint32_t op, size, count, arg; /* arg: 0 copy out, 1 read in place; OP_OPEN: access mask */
    wchar_t name[96];
    wchar_t name2[96]; /* OP_RELAY: the pipe of the peer behind the relay */
} probe_cmd;
typedef struct probe_desc {
    uint32_t seq, slot;
    wchar_t name[64];
} probe_desc;
typedef struct probe_reply {
    uint64_t got;
    uint32_t err, val;
    double ph[5]; /* peer's phases (s, summed): open, map, read, unmap, close */
    int64_t handles0, handles1, priv0, priv1, maps0, maps1;
} probe_reply;

extern uint8_t *probe_src, *probe_dst;  /* 4 MiB each: payload source, private copy target */
extern SECURITY_ATTRIBUTES probe_sa;     /* descriptor of every section the driver creates */
extern wchar_t probe_sid[128];           /* this process's user SID (string form) */
extern uint32_t probe_seq;               /* counter for unique section names and sequence numbers */
extern HANDLE probe_pipe;                /* the driver's pipe to the peer in use */

/* shm_probe_peer.c */
int64_t probe_handle_count(void);
int64_t probe_private_bytes(void);
int64_t probe_mapped_regions(void);
void probe_set_sd(const wchar_t *fmt);
void probe_init_sid(void);
HANDLE probe_create_section(const wchar_t *name, uint64_t size);
void probe_section_name(wchar_t *out, size_t n, const wchar_t *prefix);
int probe_consume(const uint8_t *v, uint32_t size, uint32_t mode, uint32_t seq);
void probe_stamp(uint8_t *v, uint32_t size, uint32_t seq);
int probe_peer(const wchar_t *name);
int probe_peer_loop(HANDLE h);
int probe_hold(const wchar_t *how, const wchar_t *name, const wchar_t *ev);

/* shm_probe_relay.c */
int probe_relay(HANDLE h, const probe_cmd *c, probe_reply *r);

/* shm_probe.c */
void probe_send_cmd(uint32_t op, uint32_t size, uint32_t count, uint32_t arg, const wchar_t *nm);
void probe_send_cmd2(uint32_t op, uint32_t size, uint32_t count, uint32_t arg, const wchar_t *nm,
                     const wchar_t *nm2);
void probe_get_reply(probe_reply *r);
void probe_read_ack(uint32_t want);
double probe_fresh_run(uint32_t size, uint32_t count, uint32_t window, uint32_t mode,
                       probe_reply *r);

/* shm_probe_checks.c */
void probe_check_names(void);
void probe_check_dacl(void);
void probe_check_kill(void);
void probe_check_cycles(void);
void probe_check_pipe_type(void);
void probe_check_cow(void);

#endif
