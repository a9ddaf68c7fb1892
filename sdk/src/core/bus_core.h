/*
 * bus_core.h - portable protocol logic of the bus client (no I/O, no <windows.h>).
 *
 *   bus_meta.c     meta JSON building/parsing (cJSON); topic/filter/name validation and
 *                  matching on C strings, by proto/'s rules (the broker's own)
 *   bus_pending.c  table of outstanding requests/acks keyed by id, with deadlines
 *   bus_subs.c     the subscription set re-sent after every reconnect
 *   bus_backoff.c  capped exponential backoff with jitter
 *   bus_queue.c    bounded FIFO of encoded frames, drained in coalesced batches
 *
 * None of these lock: the Win32 client serialises access with its own lock.
 */
#ifndef AIPC_CORE_BUS_CORE_H
#define AIPC_CORE_BUS_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "asyncipc/asyncipc.h"
#include "proto/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AIPC_BUS_NAME_MAX AIPC_PROTO_NAME_MAX   /* client names (proto/names.h) */

/* ---- validation and matching (bus_meta.c) ------------------------------------------------ */
/* proto/names.h and proto/topic.h on C strings (NULL is invalid / matches nothing): what the
 * SDK refuses synchronously is exactly what the broker would refuse. */

/* 1 if `name` is a valid client name. */
int aipc__bus_name_valid(const char *name);
/* 1 if `topic` may be published. */
int aipc__bus_topic_valid(const char *topic);
/* 1 if `filter` is a valid filter. */
int aipc__bus_filter_valid(const char *filter);
/* 1 if `topic` matches `filter`. */
int aipc__bus_topic_match(const char *filter, const char *topic);
/* If `to` is all decimal digits (1..20 of them, fits u64) stores it in *id and returns 1. */
int aipc__bus_to_is_id(const char *to, uint64_t *id);

/* ---- meta building (bus_meta.c) ---------------------------------------------------------- */

/* What a client sends. Unused string fields NULL, unused numbers 0. */
typedef struct aipc__bus_out {
    const char *op;        /* "hello", "sub", "unsub", "pub", "send", "req", "rep", "ping", "stats" */
    const char *name;      /* hello: client name (optional) */
    const char *topic;     /* sub/unsub/pub */
    const char *to;        /* send/req: name, or decimal id (sent as a JSON number) */
    uint64_t to_id;        /* rep: the requester's id */
    uint64_t id;           /* "id" when non-zero */
    uint64_t re;           /* rep: the request id */
    int retain;            /* pub: adds "retain":true when non-zero */
    int shm;               /* hello: adds "shm":{"v":1} (we take shared memory) when non-zero */
} aipc__bus_out;

/* Serialises `o` as compact JSON; returns a malloc'd NUL-terminated string (free with free())
 * and its length in *len, or NULL (bad fields or out of memory). */
char *aipc__bus_meta_build(const aipc__bus_out *o, size_t *len);

/* ---- meta parsing (bus_meta.c) ----------------------------------------------------------- */

typedef enum {
    AIPC_BUS_IN_UNKNOWN = 0,
    AIPC_BUS_IN_WELCOME, AIPC_BUS_IN_OK, AIPC_BUS_IN_ERROR, AIPC_BUS_IN_MSG, AIPC_BUS_IN_DIRECT,
    AIPC_BUS_IN_REQ, AIPC_BUS_IN_REP, AIPC_BUS_IN_PONG, AIPC_BUS_IN_STATS, AIPC_BUS_IN_DROPPED,
    AIPC_BUS_IN_BYE,
    AIPC_BUS_IN_SHM          /* shm_seg, shm_done, shm_unseg (parsed by proto/shm.h) */
} aipc__bus_in_op;

/* A parsed broker frame. Strings point into the parse tree: valid until aipc__bus_in_free().
 * Absent strings are "" (never NULL); has_* flags say whether a number was present. */
typedef struct aipc__bus_in {
    aipc__bus_in_op op;
    const char *op_text;     /* the "op" string as received */
    const char *topic;       /* msg */
    aipc_bus_peer from;      /* msg/direct/req/rep; name "" when absent */
    int has_from;
    int retained;            /* msg */
    uint64_t id;  int has_id;   /* req: request id; welcome: our client id */
    uint64_t re;  int has_re;   /* ok/error/rep/pong/stats: the id being answered */
    uint64_t count;          /* dropped */
    uint64_t max_payload;    /* welcome (0 when absent) */
    uint64_t max_queue_bytes;/* welcome: the broker's per-client queue bound (0 when absent) */
    uint32_t proto;          /* welcome */
    const char *name;        /* welcome: our name */
    const char *code;        /* error */
    const char *message;     /* error */
    const char *reason;      /* bye */
    uint32_t shm_v;          /* welcome: "shm":{"v":N} (the broker agreed), 0 when absent */
    uint32_t shm_rel;        /* welcome: "shm":{...,"rel":N} (a release page accepted), or 0 */
    int has_shm;             /* "shm":[seg,off,len] present: 1; malformed: -1; absent: 0 */
    uint32_t shm[3];         /* seg, off, len when has_shm == 1 */
    void *root_;             /* private: the cJSON tree */
} aipc__bus_in;

/* Parses a meta object. Returns 0 (free with aipc__bus_in_free even for op UNKNOWN) or
 * AIPC_EPROTO (not a JSON object or no "op" string; nothing to free). */
int aipc__bus_meta_parse(const uint8_t *meta, size_t len, aipc__bus_in *in);
void aipc__bus_in_free(aipc__bus_in *in);

/* Parses a presence payload {"id","name","pid","sid","session","integrity"}; copies the name
 * into name_buf (cap bytes, truncated, NUL-terminated) and the SID after it when it fits whole
 * (else ""), and points who->name / who->user_sid there. Returns 0 or AIPC_EPROTO. */
#define AIPC_BUS_PRESENCE_BUF (AIPC_BUS_NAME_MAX + 1 + 192)
int aipc__bus_presence_parse(const uint8_t *payload, size_t len, aipc_bus_peer *who,
                            char *name_buf, size_t cap);

/* ---- pending table (bus_pending.c) ------------------------------------------------------- */

typedef enum {
    AIPC_BUS_PEND_REQ = 1,   /* request: cb gets the reply */
    AIPC_BUS_PEND_PING,      /* ping: cb on pong */
    AIPC_BUS_PEND_STATS,     /* stats: cb with the payload */
    AIPC_BUS_PEND_ACK        /* sub/unsub/send: only errors matter (desc names the op) */
} aipc__bus_pend_kind;

typedef struct aipc__bus_pend {
    uint64_t id;
    uint64_t deadline_ms;    /* absolute, on the caller's clock; 0 = none */
    aipc__bus_pend_kind kind;
    aipc_bus_reply_fn cb;
    void *user;
    char *desc;              /* malloc'd description ("send to 'x'"), owned by the entry */
    int sent;                /* the frame was handed to the pipe (a disconnect now fails it) */
    struct aipc__bus_pend *next_;   /* private: bucket chain */
} aipc__bus_pend;

typedef struct aipc__bus_pending {
    aipc__bus_pend **buckets;
    size_t nbuckets;         /* power of two */
    size_t count;
} aipc__bus_pending;

void aipc__bus_pending_init(aipc__bus_pending *p);
/* Frees every entry (callbacks are not called). */
void aipc__bus_pending_free(aipc__bus_pending *p);
/* Adds an entry (copied; desc duplicated). AIPC_EINVAL for id 0 or a duplicate id,
 * AIPC_ENOMEM. */
int aipc__bus_pending_add(aipc__bus_pending *p, const aipc__bus_pend *e);
/* The entry with `id`, or NULL (the table keeps it). */
aipc__bus_pend *aipc__bus_pending_find(aipc__bus_pending *p, uint64_t id);
/* Removes the entry with `id` into *out (caller frees out->desc); returns 1, or 0 if absent. */
int aipc__bus_pending_take(aipc__bus_pending *p, uint64_t id, aipc__bus_pend *out);
/* Removes one entry whose deadline is <= now into *out; returns 1, or 0 when none is due. */
int aipc__bus_pending_take_expired(aipc__bus_pending *p, uint64_t now_ms, aipc__bus_pend *out);
/* Removes one entry with sent != 0 (or any entry when all != 0) into *out; 1 or 0. */
int aipc__bus_pending_take_sent(aipc__bus_pending *p, int all, aipc__bus_pend *out);
/* The earliest deadline, or 0 when no entry has one. */
uint64_t aipc__bus_pending_next_deadline(const aipc__bus_pending *p);

/* ---- subscription set (bus_subs.c) ------------------------------------------------------- */

typedef struct aipc__bus_subs {
    char **filters;
    size_t count, cap;
} aipc__bus_subs;

void aipc__bus_subs_init(aipc__bus_subs *s);
void aipc__bus_subs_free(aipc__bus_subs *s);
/* 1 added, 0 already present, AIPC_ENOMEM. */
int aipc__bus_subs_add(aipc__bus_subs *s, const char *filter);
/* 1 removed, 0 absent. */
int aipc__bus_subs_remove(aipc__bus_subs *s, const char *filter);
int aipc__bus_subs_contains(const aipc__bus_subs *s, const char *filter);
/* 1 if any filter matches `topic`. */
int aipc__bus_subs_match(const aipc__bus_subs *s, const char *topic);

/* ---- backoff (bus_backoff.c) ------------------------------------------------------------- */

/*
 * Delay before reconnect attempt number `attempt` (0 = first retry): min_ms * 2^attempt capped
 * at max_ms, then jittered into [d/2, d] using `rnd` (any random 32-bit value), never below
 * min_ms (unless min_ms > max_ms, then max_ms). min 0 is treated as 1.
 */
uint32_t aipc__bus_backoff_delay(uint32_t min_ms, uint32_t max_ms, uint32_t attempt, uint32_t rnd);

/* ---- frame queue (bus_queue.c) ----------------------------------------------------------- */

typedef struct aipc__bus_qnode {
    struct aipc__bus_qnode *next;
    uint64_t tag;            /* request id for req frames, else 0 */
    uint32_t shm_cut;        /* non-zero: a shared-memory descriptor frame (bus_shm.c): its
                                meta without ',"shm":[...]}' is this many bytes */
    uint32_t shm_seg, shm_off, shm_len;   /* its slot */
    size_t len;              /* encoded frame length */
    uint8_t data[];          /* header + meta + payload */
} aipc__bus_qnode;

typedef struct aipc__bus_queue {
    aipc__bus_qnode *head, *tail;
    size_t bytes;            /* sum of len */
    size_t count;
    size_t max_bytes;        /* bound for bounded pushes */
} aipc__bus_queue;

/* Encodes one frame into a new node (meta_len <= AIPC_MAX_META, payload <= UINT32_MAX);
 * NULL on bad sizes or out of memory. */
aipc__bus_qnode *aipc__bus_frame_new(const void *meta, size_t meta_len, const void *payload,
                                   size_t payload_len, uint64_t tag);
void aipc__bus_queue_init(aipc__bus_queue *q, size_t max_bytes);
void aipc__bus_queue_free(aipc__bus_queue *q);
/* Appends node. bounded: fails with AIPC_EQUEUEFULL (node not taken) if bytes would exceed
 * max_bytes; unbounded pushes always succeed. */
int aipc__bus_queue_push(aipc__bus_queue *q, aipc__bus_qnode *n, int bounded);
/* Moves all of `from` to the front (prepend=1) or back of q (no bound check). */
void aipc__bus_queue_splice(aipc__bus_queue *q, aipc__bus_queue *from, int prepend);
/* Removes and frees the nodes with this tag (a request that timed out before it was sent).
 * Returns how many. */
size_t aipc__bus_queue_remove_tag(aipc__bus_queue *q, uint64_t tag);
/*
 * Takes frames from the head into one malloc'd buffer of at most max_len bytes (at least one
 * frame, whatever its size) for one coalesced write. on_tag (may be NULL) is called for each
 * taken node with a non-zero tag. Returns the buffer (length in *len) or NULL when empty or
 * out of memory (then nothing is taken; *len = 0).
 */
uint8_t *aipc__bus_queue_take_batch(aipc__bus_queue *q, size_t max_len, size_t *len,
                                   void (*on_tag)(void *ctx, uint64_t tag), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
