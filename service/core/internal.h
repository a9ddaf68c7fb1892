/*
 * internal.h - private structures shared by the broker core's files (not for engines).
 * Functions shared between the core's files carry a module prefix (aipc_outq_, aipc_reqs_, ...)
 * or aipc__; only broker.h's aipc_broker_* / aipc_client_* are the core's interface.
 *
 *   map.c       open-addressing hash maps (string keys, 128-bit keys)
 *   sbuf.c      growable byte buffer + JSON writers (escaping)
 *   outframe.c  outgoing frames: built once, refcounted, their metas written by hand
 *   outq.c      the per-client outbound queue and its rules (drop, refuse, cut off)
 *   trie.c      the topic trie (validation and matching rules: proto/topic.h)
 *   subs.c      subscriptions: cost, subscribe, unsubscribe
 *   publish.c   publication fan-out to the subscribers, then the retained store
 *   retained.c  retained messages (a trie of topics walked by a filter)
 *   registry.c  client ids and names (the name rule: proto/names.h)
 *   reqs.c      pending requests (req/rep correlation, no_reply)
 *   pub_meta.c  the router's fast path: pub metas recognised without cJSON
 *   router.c    incoming frame dispatch (the ops)
 *   broker.c    broker lifecycle, attach/input/detach/shutdown
 *   config.c    JSON config loader
 *   stats.c     counters and their JSON form
 *   identity.c  the client's identity (set by the engine) and its `from` object
 *   filter.c    filter/filter relations (covers, overlaps) for the policy
 *   policy.c    policy evaluation (policy.h); policy_load.c parses it from the config
 *   deadline.c  deadline queues (sorted intrusive lists) for the core's timers
 *   timers.c    aipc_broker_tick: what expires (hello timeout, ...)
 *   partial.c   partially received frames: their memory in total, their stall timeout
 *   connlim.c   connections per client process and per user
 *   qtotal.c    all outbound queues together: max_total_queue_bytes, eviction from the largest
 *   shm_client.c shared memory per client: the backend, hello/welcome negotiation, its
 *               control frames (shm_seg answers, shm_done), detach
 *   shm_pool.c  fan-out pools keyed by principal set, their segments and slots, max_shm_bytes
 *   shm_out.c   deliveries through slots: which client gets a descriptor, announces, the
 *               per-client held set and its queue accounting
 *   shm_in.c    clients' segments: mapped on announce, descriptors resolved, releases owed
 *   shm_rel.c   release pages: a client's counter of released descriptors, drained
 */
#ifndef AIPC_BROKER_INTERNAL_H
#define AIPC_BROKER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "proto/frame.h"
#include "proto/limits.h"
#include "proto/names.h"
#include "proto/topic.h"
#include "policy.h"
#include "proto/shm_ring.h"


#define AIPC_CONTAINER(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* ---- deadline queues (deadline.c) --------------------------------------------------------
 * Every timer class has one timeout for all its entries, so appending at the tail keeps a
 * queue sorted by due time: expiry looks at the head only, removal is O(1). */
typedef struct aipc_dnode {
    struct aipc_dnode *prev, *next;
    uint64_t due;             /* broker clock (now_ms) at which it expires */
    bool on;                  /* linked in a queue */
} aipc_dnode;
typedef struct aipc_dq {
    aipc_dnode *head, *tail;
} aipc_dq;

void aipc_dq_push(aipc_dq *q, aipc_dnode *n, uint64_t due);   /* (re)appends at the tail */
void aipc_dq_remove(aipc_dq *q, aipc_dnode *n);               /* no-op when not linked */
/* The head if it is due at `now`, else NULL. */
aipc_dnode *aipc_dq_due(const aipc_dq *q, uint64_t now);

/* ---- hash maps ------------------------------------------------------------------------- */
typedef struct aipc_strmap_ent {
    const char *key;          /* owned by the value */
    uint32_t len, hash;
    void *val;                /* NULL = empty slot */
} aipc_strmap_ent;
typedef struct aipc_strmap {
    aipc_strmap_ent *ents;
    uint32_t cap, count;      /* cap is 0 or a power of two */
} aipc_strmap;

void *aipc_strmap_get(const aipc_strmap *m, const char *key, size_t len);
int aipc_strmap_put(aipc_strmap *m, const char *key, size_t len, void *val);
void *aipc_strmap_del(aipc_strmap *m, const char *key, size_t len);
void aipc_strmap_free(aipc_strmap *m);

typedef struct aipc_pmap_ent {
    uint64_t a, b;
    void *val;                /* NULL = empty slot */
} aipc_pmap_ent;
typedef struct aipc_pmap {
    aipc_pmap_ent *ents;
    uint32_t cap, count;
} aipc_pmap;

void *aipc_pmap_get(const aipc_pmap *m, uint64_t a, uint64_t b);
int aipc_pmap_put(aipc_pmap *m, uint64_t a, uint64_t b, void *val);
void *aipc_pmap_del(aipc_pmap *m, uint64_t a, uint64_t b);
/* Where (a, b)'s value is stored (to replace it in place, never with NULL), or NULL. */
void **aipc_pmap_ref(aipc_pmap *m, uint64_t a, uint64_t b);
void aipc_pmap_free(aipc_pmap *m);

/* ---- byte buffer + JSON writers ---------------------------------------------------------- */
typedef struct aipc_sbuf {
    char *p;
    size_t len, cap;
    bool oom;                 /* sticky: an append failed */
} aipc_sbuf;

void aipc_sbuf_reset(aipc_sbuf *s);
void aipc_sbuf_free(aipc_sbuf *s);
void aipc_sbuf_add(aipc_sbuf *s, const char *data, size_t n);
void aipc_sbuf_lit(aipc_sbuf *s, const char *cstr);
void aipc_sbuf_u64(aipc_sbuf *s, uint64_t v);
void aipc_sbuf_i64(aipc_sbuf *s, int64_t v);
void aipc_sbuf_jstr(aipc_sbuf *s, const char *str, size_t n);   /* "escaped" */

/* ---- frames and queues ------------------------------------------------------------------- */
/* ANSWER: a control frame that settles a pending request (no_reply, timeout, queue_full for a
 * lost rep). It is exempt from the control-frame cut-off: each one holds a slot of its
 * requester's max_pending_requests until it is written, which bounds them. */
enum { AIPC_FK_CONTROL = 0, AIPC_FK_PUB = 1, AIPC_FK_DIRECT = 2, AIPC_FK_ANSWER = 3 };

/* Publications and point-to-point frames: what max_queue_bytes bounds. */
static inline bool aipc_fk_data(uint32_t kind)
{
    return kind == AIPC_FK_PUB || kind == AIPC_FK_DIRECT;
}

struct aipc_shm_slot;
typedef struct aipc_frame {
    uint32_t refs;
    uint32_t kind;            /* AIPC_FK_*: decides the queue's drop rule */
    uint64_t len;             /* header + meta + payload */
    uint8_t *data;            /* the encoded frame: right after this struct, or inside mem */
    void *mem;                /* NULL, or an adopted block holding data (freed with the frame) */
    union {                   /* (one word: the struct's size is the documented overhead) */
        uint64_t mem_len;     /* with mem: bytes of the adopted block */
        struct aipc_shm_slot *shm; /* without mem: the fan-out slot whose descriptor this
                               * frame is (shm_out.c), or NULL */
    };
} aipc_frame;

/* The slot a descriptor frame names, or NULL for any other frame. */
static inline struct aipc_shm_slot *aipc_frame_slot(const aipc_frame *f)
{
    return f->mem ? NULL : f->shm;
}

/* Per allocation, what the heap adds to the bytes asked for (header, rounding): used where
 * the core charges memory by its real size. */
#define AIPC_HEAP_OVERHEAD 16u

/* The heap a frame holds (its struct and data, or its struct and adopted block). */
static inline uint64_t aipc_frame_heap(const aipc_frame *f)
{
    return f->mem ? sizeof *f + AIPC_HEAP_OVERHEAD + f->mem_len + AIPC_HEAP_OVERHEAD
                  : sizeof *f + f->len + AIPC_HEAP_OVERHEAD;
}

/* Inbound payloads this large that the decoder assembled are forwarded without a copy: the
 * outgoing header and meta are written into the gap the decoder leaves before the payload. */
#define AIPC_ADOPT_MIN  (64u * 1024u)
#define AIPC_ADOPT_GAP  1024u

/* Large blocks recycled (blkcache.c): a block of AIPC_BLK_MIN bytes or more that an adopted
 * frame leaves is kept (at most AIPC_BLK_KEEP of them, AIPC_BLK_BYTES in all, each for
 * AIPC_BLK_IDLE_MS) and lent to the next client input that starts a frame of about its size;
 * at most AIPC_BLK_MAX blocks (AIPC_BLK_BYTES in all) are lent at once. */
#define AIPC_BLK_MIN     (256u * 1024u)
#define AIPC_BLK_MAX     2u
/* Blocks the cache keeps (within AIPC_BLK_BYTES): a publisher ahead of its subscribers has
 * several frames queued, each in its block; with 2 kept the others were freed as they came
 * back and new ones mapped for the next frames (256 page faults per 1 MiB under Wine). */
#define AIPC_BLK_KEEP    4u
#define AIPC_BLK_BYTES   ((size_t)5u << 20)
#define AIPC_BLK_IDLE_MS 1000u
/* At most this many of the AIPC_BLK_MAX lent blocks are landings (aipc_blk_land): a landing
 * stays lent while its client sends nothing, so quiet clients could otherwise hold every slot
 * and leave the other clients' large frames without a loan. */
#define AIPC_BLK_LAND_MAX 1u
/* A block is lent only to a frame of full usable bytes with full <= cap <= full + this, and
 * only once the input carries AIPC_BLK_ARRIVED bytes of that frame's body. */
#define AIPC_BLK_SLACK(full) ((full) / 8)
#define AIPC_BLK_ARRIVED (16u * 1024u)
typedef struct aipc_blk {
    void *p;
    size_t cap;
    uint64_t at;              /* when it came back (b's clock) */
} aipc_blk;

/* Frames (and the blocks they adopt) come from b->fa (aipc_broker_set_frame_allocator). */
aipc_frame *aipc__frame_make(aipc_broker *b, int kind, const char *meta, size_t meta_len,
                            const uint8_t *payload, size_t payload_len);
void aipc__frame_unref(aipc_broker *b, aipc_frame *f);

typedef struct aipc_outq {
    aipc_frame **ring;
    uint32_t cap, head, count;
    uint64_t head_off;        /* bytes of ring[head] already written */
    uint64_t bytes;           /* bytes queued and not yet written */
    uint64_t data_bytes;      /* bytes of queued publications/directs (whole frames) */
    uint64_t data_frames;     /* how many such frames */
    uint64_t charge;          /* every queued frame's len + AIPC_QUEUED_FRAME_OVERHEAD, and
                               * shm_bytes */
    uint64_t shm_bytes;       /* fan-out slots the client holds (queued or written, until it
                               * releases them): each slot's payload + the overhead */
    uint64_t *total;          /* the broker's sum of every queue's charge (qtotal.c), or NULL */
    uint32_t handed;          /* frames from the head that the last out_next handed to the
                               * engine and that are not consumed yet: never evicted */
} aipc_outq;

/* What a queued frame costs besides its bytes: its struct and the heap's share (as if the
 * client held it alone) and two ring slots (the ring doubles). */
#define AIPC_QUEUED_FRAME_OVERHEAD (sizeof(aipc_frame) + AIPC_HEAP_OVERHEAD + 2 * sizeof(void *))

/* What max_queue_bytes bounds: the queued publications/directs with their overhead and the
 * slots held, as they would stand with one more frame of len bytes (0: as they stand). */
static inline uint64_t aipc_outq_data_cost(const aipc_outq *q, uint64_t len)
{
    uint64_t frames = q->data_frames + (len ? 1 : 0);
    return q->data_bytes + len + frames * AIPC_QUEUED_FRAME_OVERHEAD + q->shm_bytes;
}

/* Whether the queue holds data the bound applies to (else one frame may always go). */
static inline bool aipc_outq_has_data(const aipc_outq *q)
{
    return q->data_bytes || q->shm_bytes;
}

/* Whether c's own queue bound (max_queue_bytes) already refuses every data frame carrying plen
 * payload bytes, checked before building a frame or copying into a slot: a frame is at least
 * its header plus its payload and a descriptor charges at least as much (its slot), so this
 * never refuses what aipc__queue_frame would take (outq.c). aipc__pub_refused also counts the
 * publication dropped for c as aipc__queue_frame would. */
bool aipc__data_refused(aipc_client *c, size_t plen);   /* (drains c's release page first) */
bool aipc__pub_refused(aipc_client *c, size_t plen);
int aipc_outq_push(aipc_outq *q, aipc_frame *f);    /* takes a new reference on success */
int aipc_outq_push_front(aipc_outq *q, aipc_frame *f);  /* same, at the head (head_off 0) */
void aipc_outq_free(aipc_broker *b, aipc_outq *q);

/* ---- topics ------------------------------------------------------------------------------ */
typedef struct aipc_sub aipc_sub;
typedef struct aipc_tnode aipc_tnode;
typedef struct aipc_ret aipc_ret;
typedef struct aipc_rcursor aipc_rcursor;
struct aipc_tnode {
    aipc_tnode *parent;
    char *name;               /* this level (owned), "" allowed */
    uint32_t len;
    aipc_strmap kids;         /* literal children */
    aipc_tnode *plus, *hash;  /* wildcard children ('+', '#'), kept out of kids */
    aipc_sub **subs;          /* subscription trie: subscribers of exactly this filter */
    uint32_t nsubs, subcap;
    aipc_ret *ret;            /* retained trie: this topic's retained message, or NULL */
};

/* One retained message (retained.c). */
struct aipc_ret {
    aipc_tnode *node;         /* its topic */
    aipc_frame *frame;        /* encoded once with "retained":true */
    uint64_t seq;             /* b->ret_seq when stored: the list below is in seq order */
    uint64_t charge;          /* frame heap + this record, part of b->retained_bytes */
    aipc_ret *prev, *next;    /* b->ret_head..ret_tail, oldest store first */
};

/* A retained delivery in progress for one subscription (retained.c): walks the retained list
 * in bounded slices, pausing while the subscriber's queue is full. */
struct aipc_rcursor {
    aipc_sub *sub;            /* whose filter (the sub's node path) and client */
    aipc_ret *next;           /* next entry to look at; NULL: done */
    uint64_t until;           /* entries stored later (seq > until) went out live: not again */
    uint64_t wait_len;        /* > 0: paused until a frame this long fits the client's queue */
    bool exact;               /* the filter has no wildcard: `next` is its one entry */
    aipc_rcursor *prev, *nextc; /* b->cursors */
};

struct aipc_sub {
    aipc_client *client;
    aipc_tnode *node;
    uint32_t idx;             /* position in node->subs */
    uint32_t cost;            /* aipc_subscription_cost, charged to client->sub_bytes */
    aipc_rcursor *cur;        /* its retained delivery still in progress, or NULL */
    aipc_sub *cprev, *cnext;  /* the client's subscriptions */
};

/* mem (may be NULL): the heap the trie's nodes and child tables take, kept exact. */
aipc_tnode *aipc_trie_path(aipc_tnode *root, uint64_t *mem, const char *topic, size_t n,
                           bool create);
/* What creating the path of topic would add to mem (0 when it exists). */
uint64_t aipc_trie_add_cost(const aipc_tnode *root, const char *topic, size_t n);
void aipc_trie_prune(aipc_tnode *node, uint64_t *mem);
void aipc_trie_free(aipc_tnode *root);

/* ---- policy (policy.h) ------------------------------------------------------------------- */
enum { AIPC_PR_ANY = 0, AIPC_PR_SID = 1, AIPC_PR_SELF = 2 };   /* "*", a SID, "%u" */

typedef struct aipc_principal {
    int kind;
    char *sid;                /* AIPC_PR_SID: "S-1-..." (aliases resolved) */
} aipc_principal;

typedef struct aipc_principals {
    aipc_principal *v;
    uint32_t n;               /* 0: the key was absent (no constraint) */
} aipc_principals;

enum { AIPC_TS_NONE = 0, AIPC_TS_SAME = 1, AIPC_TS_FIXED = 2 };  /* to_session */

typedef struct aipc_rule {
    bool allow;
    unsigned ops;             /* AIPC_POLICY_* */
    aipc_principals who;      /* never empty (default "*") */
    char *topic;              /* filter template (%u, %s); NULL = every topic, "$" included */
    char *to;                 /* name pattern template; NULL = any target */
    aipc_principals to_user;  /* n == 0: any target user */
    int to_session;           /* AIPC_TS_* */
    uint32_t session;         /* AIPC_TS_FIXED */
} aipc_rule;

typedef struct aipc_reserved {
    char *pattern;            /* "name" or "prefix*" */
    aipc_principals owners;
} aipc_reserved;

struct aipc_policy {
    char *source;             /* the policy object as compact JSON (clone re-parses it) */
    bool default_allow;
    aipc_rule *rules;
    uint32_t nrules;
    aipc_reserved *names;
    uint32_t nnames;
};

/* A SID string "S-1-<authority>(-<sub>){0,15}" of at most AIPC_SID_MAX chars. */
bool aipc_sid_valid(const char *s);

/* ---- clients ----------------------------------------------------------------------------- */
typedef struct aipc_req aipc_req;

enum { AIPC_CL_NEW = 0, AIPC_CL_READY = 1, AIPC_CL_CLOSING = 2 };

struct aipc_client {
    aipc_broker *b;
    aipc_conn *conn;
    aipc_client *prev, *next; /* broker's list of attached clients */
    int state;
    uint64_t id;              /* 0 until hello */
    uint32_t pid;
    char name[AIPC_PROTO_NAME_MAX + 1];
    uint32_t name_len;
    char *from;               /* {"id":..,"name":..,"pid":..[,"sid","session","integrity"]}
                               * stamped on what it sends */
    uint32_t from_len;
    aipc_identity ident;      /* valid when has_ident; strings point into ident_mem */
    aipc_identity_group *ident_groups;
    char *ident_mem;
    bool has_ident;
    uint32_t denied;          /* operations the policy refused (the first one is logged) */
    aipc_decoder dec;
    aipc_outq q;
    uint64_t dropped_pending; /* publications dropped and not reported yet: one report with
                               * them goes at the head of the queue at the next frame
                               * boundary (aipc_client_out_next) */
    aipc_frame *report;       /* that report while queued (identity only, not a reference) */
    bool report_wait;         /* a report was written: the next one waits until another frame
                               * is, so reports never starve the queue */
    uint64_t mark;            /* publication sequence: dedup across overlapping filters */
    aipc_sub *subs;           /* list of its subscriptions */
    uint32_t nsubs;           /* how many (<= max_subscriptions) */
    uint64_t sub_bytes;       /* their cost (<= max_subscription_bytes) */
    aipc_req *reqs_out;       /* pending requests it sent */
    uint32_t nreqs_out;       /* how many */
    uint32_t answers_queued;  /* ANSWER frames queued to it and not written yet (also in
                               * b->answers_queued): with
                               * nreqs_out, bounded by max_pending_requests */
    uint64_t answer_bytes;    /* their size (not counted by the control-frame cut-off) */
    aipc_req *reqs_in;        /* pending requests waiting on it */
    aipc_dnode t_hello;       /* in b->hello_q until its hello succeeds or it closes */
    aipc_dnode t_frame;       /* in b->frame_q while a frame is partly received */
    aipc_dnode t_linger;      /* in b->linger_q from the close request to the detach */
    uint64_t partial_charge;  /* dec.body_cap counted in b->incomplete_bytes */
    struct aipc_blk lent[2];  /* cached blocks lent to dec (blkcache.c): the frame in progress
                               * and the one this input starts; identity and size only,
                               * forgotten once that frame was routed (p NULL: free entry) */
    bool direct_out;          /* the engine may be reading into dec's buffer (read_direct
                               * returned it; until read_commit or the next input) */
    uint8_t *landing;         /* a lent block the engine's next read takes a whole frame into
                               * (blkcache.c aipc_blk_land; in lent[] too), until read_commit */
    size_t landing_cap;
    uint64_t land_wire;       /* wire size of its last frame when that was a large one (>=
                               * AIPC_BLK_MIN: the next is read whole into a landing), else 0 */
    bool in_input;            /* inside aipc_broker_input for this client */
    bool kill;                /* must be closed now (input returns < 0) */
    bool pid_counted;         /* counted in b->by_pid (connlim.c) */
    bool user_counted;        /* counted in b->by_user */
    bool shm_on;              /* welcomed with "shm" (shm_client.c): may get descriptors */
    uint32_t shm_refusals;    /* segments it answered ok:false (3: no more announces) */
    aipc_pmap shm_views;      /* (fan-out segment id, 0) -> its state for this client:
                               * AIPC_SHM_VIEW_* cast to a pointer (shm_out.c) */
    aipc_pmap shm_holds;      /* (segment id, slot offset) -> aipc_shm_slot it holds, state
                               * tags in the pointer's low bits (shm_out.c) */
    aipc_pmap shm_pins;       /* (segment id, 0) -> how many of its holds are in it */
    uint64_t shm_pinned;      /* the sizes of those segments (<= aipc_shm_pin_limit, shm_out.c) */
    aipc_pmap shm_in;         /* (its segment id, 0) -> its segment mapped (shm_in.c) */
    uint32_t shm_nin;         /* how many (<= 16) */
    aipc_shm_ref *shm_owed;   /* pairs of its segments to release at the end of the input
                               * turn (shm_done) */
    uint32_t shm_nowed, shm_capowed;
    aipc_pmap shm_owed_set;   /* the same pairs, (seg, off) -> 1: a pair owed twice is refused */
    bool shm_yield;           /* its last input turn copied shared payloads (shm_in.c) */
    bool shm_rel_offer;       /* welcomed with "rel":1: may announce a release page */
    bool shm_rel_tried;       /* announced one (whatever the answer): a second is bad_request */
    bool shm_desc_sent;       /* a descriptor was queued to it: no release page from now on */
    struct aipc_shm_rel *shm_rel; /* its release page (shm_rel.c), or NULL */
};

struct aipc_req {
    aipc_client *requester, *target;
    uint64_t requester_id;
    int64_t rid;
    aipc_req *oprev, *onext;  /* requester->reqs_out */
    aipc_req *iprev, *inext;  /* target->reqs_in */
    aipc_dnode t_due;         /* in b->req_q: request_timeout_ms after it was forwarded */
};

/* ---- broker ------------------------------------------------------------------------------ */
struct aipc_broker {
    aipc_broker_config cfg;
    uint64_t (*now_ms)(void);
    uint64_t started_ms;
    aipc_broker_log_fn log;
    void *log_ctx;
    bool shutting_down;

    aipc_client *clients;     /* attached */
    uint32_t nclients;
    uint64_t next_id;         /* ids are never reused */
    aipc_pmap by_id;          /* (id, 0) -> client, after hello */
    aipc_strmap by_name;      /* name -> client */

    aipc_tnode sub_root;      /* subscription trie */
    aipc_pmap sub_index;      /* (client, node) -> aipc_sub */
    uint64_t nsubs;
    uint64_t sub_bytes;       /* sum of every client's sub_bytes */
    aipc_tnode ret_root;      /* retained trie */
    uint64_t nretained;
    uint64_t retained_bytes;  /* heap of the retained trie's nodes and tables + every
                               * aipc_ret's charge, <= cfg.max_retained_bytes */
    aipc_ret *ret_head, *ret_tail; /* every retained message, by seq */
    uint64_t ret_seq;         /* last seq handed out (stores and subs) */
    aipc_rcursor *cursors, *cursors_tail; /* retained deliveries in progress */
    bool retained_full_logged;/* the "store is full" warning was logged since the last store */
    uint64_t pub_seq;

    aipc_pmap reqs;           /* (requester id, rid) -> aipc_req */
    aipc_dq hello_q;          /* clients that have not said hello, by attach time */
    aipc_dq req_q;            /* pending requests, by forwarding time */
    aipc_dq frame_q;          /* clients with a partial frame, by time of their last byte */
    aipc_dq linger_q;         /* clients the broker closes, by time of the close request */
    uint64_t incomplete_bytes;/* sum of partial_charge (<= max_incomplete_bytes) */
    uint64_t queue_total;     /* every client's q.charge (max_total_queue_bytes, qtotal.c) */
    uint64_t npending;        /* pending requests (all clients) */
    uint64_t answers_queued;  /* ANSWER frames queued to any client: with npending, bounded
                               * by max_total_pending_requests */
    aipc_policy *policy;      /* NULL: the open bus */
    aipc_pmap by_pid;         /* connections per client process (connlim.c) */
    aipc_strmap by_user;      /* connections per user SID */

    aipc_allocator fa;        /* frames, retained messages and decoder blocks (never NULL
                               * functions: the CRT's by default) */
    aipc_blk blk[AIPC_BLK_KEEP];   /* large blocks of forwarded frames, for the next large
                                   * frame (blkcache.c) */
    uint32_t nblk;
    size_t blk_bytes;         /* their sizes (<= AIPC_BLK_BYTES) */
    uint32_t nlent;           /* blocks lent to clients now (<= AIPC_BLK_MAX) */
    uint32_t nland;           /* ... of which landings (<= AIPC_BLK_LAND_MAX) */
    size_t lent_bytes;        /* their sizes (<= AIPC_BLK_BYTES) */
    aipc_sbuf meta;           /* scratch for outgoing metas */
    /* The inbound frame being routed (set around aipc_router_frame): the first outgoing frame
     * built from its large assembled payload adopts the decoder's block (see finish in outframe.c)
     * and is kept referenced in in_frame until routing returns, so the inbound meta and
     * payload stay valid for the router. */
    aipc_decoder *in_dec;
    const uint8_t *in_payload;
    size_t in_plen;
    aipc_frame *in_frame;
    aipc_broker_stats st;
    aipc_shm_backend shm_be;  /* the engine's backend (valid when shm_have_be) */
    bool shm_have_be;
    uint64_t shm_nclients;    /* clients with shm_on (stats shm_clients) */
    aipc_strmap shm_pools;    /* principal-set key -> aipc_shm_pool (shm_pool.c) */
    uint32_t shm_npools;
    aipc_pmap shm_segs;       /* (fan-out segment id, 0) -> aipc_shm_seg */
    uint32_t shm_next_seg;    /* the last fan-out segment id handed out (ids never reused) */
    uint64_t shm_use_seq;     /* bumped per fan-out slot: pools' LRU order (shm_pool.c) */
    uint64_t shm_sweep_at;    /* aipc__now of the next idle-segment sweep (shm_pool.c) */
    uint64_t shm_sweep_no;    /* sweeps done (marks the segments a client has a view of) */
    uint64_t shm_seg_bytes;   /* fan-out segments' sizes (<= cfg.max_shm_bytes) */
    uint64_t shm_slot_bytes;  /* their live slots' bytes (stats shm_bytes) */
    uint64_t shm_in_segs;     /* clients' segments mapped (stats shm_client_segments) */
    uint64_t shm_npages;      /* clients' release pages mapped (stats shm_pages) */
    aipc_client **shm_targets;/* scratch: a large publication's matched clients (publish.c) */
    uint32_t shm_ntargets, shm_captargets;
    bool pub_fast_off;        /* tests: every pub takes the cJSON path (tests/fuzz/fuzz_pub_fast.c
                               * checks that both paths answer alike); false in the broker */
};

/* registry.c */
aipc_client *aipc_registry_find_name(aipc_broker *b, const char *name, size_t n);
aipc_client *aipc_registry_find_id(aipc_broker *b, uint64_t id);
int aipc_registry_add(aipc_broker *b, aipc_client *c, const char *name, size_t n);
void aipc_registry_remove(aipc_broker *b, aipc_client *c);

/* identity.c */
int aipc__make_from(aipc_client *c);       /* builds c->from at hello */
void aipc__identity_free(aipc_client *c);

/* reqs.c */
bool aipc_reqs_room(const aipc_broker *b, const aipc_client *c);   /* under max_pending */
bool aipc_reqs_total_room(const aipc_broker *b);   /* under max_total_pending_requests */
void aipc_reqs_expire(aipc_broker *b, aipc_req *r);                /* request_timeout_ms */
int aipc_reqs_add(aipc_broker *b, aipc_client *from, aipc_client *to, int64_t rid);
aipc_req *aipc_reqs_find(aipc_broker *b, uint64_t requester_id, int64_t rid);
void aipc_reqs_remove(aipc_broker *b, aipc_req *r);
void aipc_reqs_client_gone(aipc_broker *b, aipc_client *c);

/* qtotal.c: whether a frame of len bytes fits under max_total_queue_bytes for c, after
 * evicting queued publications of clients whose queue is larger than c's would be (they are
 * reported to them as dropped). */
bool aipc_qtotal_room(aipc_client *c, uint64_t len);
/* The same for a control frame or an answer to c: then c's own queued publications go too;
 * false when it would still take the total over the bound by more than the reserve below. */
bool aipc_qtotal_room_control(aipc_client *c, uint64_t len);
/* What control frames may take every queue together over max_total_queue_bytes while frames
 * that cannot be dropped hold it (past it the client is cut); answers are bounded by
 * max_total_pending_requests instead. */
#define AIPC_TOTAL_CONTROL_RESERVE (1024u * 1024u)

/* outq.c: queueing to one client under the queue's rules */
bool aipc__client_can_queue(const aipc_client *c);
int aipc__queue_frame(aipc_client *c, aipc_frame *f);   /* 0 / AIPC_EQUEUEFULL / ... */
/* The same for a control frame, then moved ahead of everything queued that the engine was
 * not handed yet (right behind the frames of a write in flight). */
int aipc__queue_frame_first(aipc_client *c, aipc_frame *f);

/* broker.c: asks the engine to close c after flushing; nothing more is queued to it. */
void aipc__request_close(aipc_client *c);

/* outframe.c: building frames, and control answers built and queued to one client */
void aipc__send_ok(aipc_client *c, bool has_id, int64_t id);
void aipc__send_error(aipc_client *c, bool has_id, int64_t id, const char *code,
                     const char *message);
/* The error that settles a pending request of c (ANSWER frame: never cut off, see above). */
void aipc__send_answer_error(aipc_client *c, int64_t rid, const char *code, const char *message);
void aipc__send_simple(aipc_client *c, const char *op, bool has_id, int64_t id);
/* A payload-less control frame from a whole meta (n == 0: a builder failed, cut as out of
 * memory). */
void aipc__send_meta(aipc_client *c, const char *meta, size_t n);
/* The same, queued ahead of what is queued when possible (aipc__queue_frame_first). */
void aipc__send_meta_first(aipc_client *c, const char *meta, size_t n);
void aipc__send_welcome(aipc_client *c, bool has_id, int64_t id);
void aipc__send_bye(aipc_client *c);
aipc_frame *aipc__build_delivery(aipc_broker *b, const char *op, const char *from, size_t from_len,
                                const char *extra_key, bool has_extra, int64_t extra,
                                const uint8_t *payload, size_t plen);
aipc_frame *aipc__build_msg(aipc_broker *b, const char *topic, size_t tlen, const char *from,
                           size_t from_len, bool retained, const uint8_t *payload, size_t plen);
/* The same frames as descriptors: the meta with "shm":[seg,off,len], no payload; the frame
 * names slot s (aipc_frame_slot). */
aipc_frame *aipc__build_msg_shm(aipc_broker *b, const char *topic, size_t tlen, const char *from,
                               size_t from_len, struct aipc_shm_slot *s);
aipc_frame *aipc__build_delivery_shm(aipc_broker *b, const char *op, const char *from,
                                    size_t from_len, const char *extra_key, bool has_extra,
                                    int64_t extra, struct aipc_shm_slot *s);

/* topic routing (subs.c, publish.c, retained.c) */
/* aipc__subscribe's results besides 0 and AIPC_ENOMEM (nothing subscribed). */
#define AIPC_SUB_TOO_MANY  1       /* the client holds max_subscriptions filters */
#define AIPC_SUB_TOO_BIG   2       /* it would cost more than max_subscription_bytes */
#define AIPC_SUB_TOTAL_FULL 3      /* all would cost more than max_total_subscription_bytes */
int aipc__subscribe(aipc_broker *b, aipc_client *c, const char *filter, size_t n,
                   aipc_sub **out);
void aipc__unsubscribe(aipc_broker *b, aipc_client *c, const char *filter, size_t n);
void aipc__unsubscribe_all(aipc_broker *b, aipc_client *c);
/* aipc__publish's result besides 0 and AIPC_ENOMEM (delivered, retained store unchanged). */
#define AIPC_PUB_RETAINED_FULL 1   /* delivered, but not retained: over max_retained_bytes */
int aipc__publish(aipc_broker *b, const char *topic, size_t tlen, const char *from,
                 size_t from_len, const uint8_t *payload, size_t plen, bool retain);
/* Stores f (reference taken) as topic's retained message, or clears it (f NULL). 0,
 * AIPC_PUB_RETAINED_FULL (store unchanged) or AIPC_ENOMEM. */
int aipc_retained_set(aipc_broker *b, const char *topic, size_t tlen, aipc_frame *f);
/* Starts delivering the retained matches of s's filter to its client (right after the ok):
 * a first slice at once, the rest from aipc_broker_tick. */
void aipc_retained_deliver(aipc_broker *b, aipc_sub *s);
void aipc_retained_cursor_free(aipc_broker *b, aipc_sub *s);
/* The charge of topic's retained message now (0 when none). */
uint64_t aipc_retained_held(aipc_broker *b, const char *topic, size_t tlen);
/* Runs retained deliveries for up to `budget` entries; true when some can go on at once. */
bool aipc_retained_run(aipc_broker *b, uint32_t budget);
void aipc_retained_free(aipc_broker *b);

/* pub_meta.c: a pub meta in the common shape, recognised without cJSON (the router's fast
 * path); false: anything else, which takes the cJSON path. topic points into meta. */
typedef struct aipc_pub_meta {
    const char *topic;
    size_t tlen;
    bool retain;
    bool has_id;
    int64_t id;
} aipc_pub_meta;
bool aipc__pub_meta_scan(const uint8_t *meta, size_t len, aipc_pub_meta *out);

/* router.c */
int aipc_router_frame(aipc_broker *b, aipc_client *c, const uint8_t *meta, uint32_t meta_len,
                      const uint8_t *payload, uint32_t payload_len);

/* timers.c */
uint64_t aipc__now(const aipc_broker *b);

/* shm_client.c */
struct cJSON;
/* Reads the hello's "shm" member: true (and c->shm_on set, counted) when the client asked
 * for it and the broker may offer it (config shm, a backend, c's identity with a user SID). */
bool aipc_shm_negotiate(aipc_broker *b, aipc_client *c, const struct cJSON *hello);
/* A shm_seg / shm_done / shm_unseg frame from c (meta as received): answers, releases, or
 * bad_request and close for a malformed one or one from a client not welcomed with shm. */
void aipc_shm_control(aipc_broker *b, aipc_client *c, const uint8_t *meta, size_t len,
                      const uint8_t *payload, size_t plen);
/* Releases everything c holds of shared memory (detach, broker free). */
void aipc_shm_client_gone(aipc_broker *b, aipc_client *c);

/* shm_pool.c: fan-out pools. A pool belongs to one set of receiving principals (sorted unique
 * user SIDs) all at one integrity level; its segments are created for exactly that set and
 * labelled at that level. Receivers at different levels never share a segment. */
typedef struct aipc_shm_pool aipc_shm_pool;
typedef struct aipc_shm_seg {
    aipc_shm_pool *pool;
    struct aipc_shm_seg *next;/* the pool's segments, oldest first */
    uint32_t id, size;
    void *h;                  /* the backend's segment */
    uint8_t *base;            /* its read+write view */
    char name[AIPC_SHM_NAME_BUF];   /* for the announce */
    uint32_t session;         /* the broker's session, as the backend said */
    aipc_shm_ring ring;
    uint64_t idle_since;      /* when a sweep first found it idle (0: in use) */
    uint64_t viewed;          /* the last sweep that found a client with a view of it */
} aipc_shm_seg;
typedef struct aipc_shm_slot {
    aipc_shm_seg *seg;
    uint32_t off, len, gen;
    uint32_t span;            /* bytes it takes in the ring (len + 1 rounded up) */
    uint32_t holders;         /* clients holding it (queued to or written, not released),
                               * plus one for the delivery that is still handing it out */
} aipc_shm_slot;
/* A slot with a copy of payload for the receivers in targets[0..n) that are shm clients at
 * integrity level `level` (aipc_shm_level; their principals choose the pool), or NULL (inline:
 * no room under max_shm_bytes, over 64 pools or principals, the backend failed or cannot label
 * at that level). The caller holds it (holders 1): put it when done handing it out. */
aipc_shm_slot *aipc_shm_pool_slot(aipc_broker *b, aipc_client *const *targets, size_t n,
                                  uint32_t level, const uint8_t *payload, size_t plen);
/* c's integrity level as pools use it (0, unknown, counts as medium: 0x2000). */
uint32_t aipc_shm_level(const aipc_client *c);
/* Drops one holder; the last one frees the slot (its ring space returns). */
void aipc_shm_slot_put(aipc_broker *b, aipc_shm_slot *s);
void aipc_shm_pools_free(aipc_broker *b);   /* broker free: every segment closed */
/* The broker's tick: every AIPC_SHM_SWEEP_MS retires the idle segments that no attached client
 * has a view of, or that were idle for AIPC_SHM_IDLE_MS, and frees pools left without one.
 * Returns the ms until the next sweep (UINT64_MAX: no segment). */
#define AIPC_SHM_SWEEP_MS 5000u
#define AIPC_SHM_IDLE_MS 30000u
uint64_t aipc_shm_pools_tick(aipc_broker *b, uint64_t now);

/* shm_out.c */
enum { AIPC_SHM_VIEW_SENT = 1, AIPC_SHM_VIEW_OK = 2, AIPC_SHM_VIEW_REFUSED = 3 };
#define AIPC_SHM_MAX_REFUSALS 3u
/* Whether a payload of plen bytes goes through shared memory to c when it can. */
bool aipc_shm_eligible(const aipc_broker *b, const aipc_client *c, size_t plen);
/* The segment bytes one client's held slots may pin at once: min(max_queue_bytes + 2 x
 * shm_segment_bytes, max_shm_bytes / 2) (its first segment always). */
uint64_t aipc_shm_pin_limit(const aipc_broker *b);
/* Queues desc (the descriptor frame of slot s) to c when c confirmed s's segment: c then
 * holds s. Returns 1 queued, 0 not usable for c (announced now if never announced: the caller
 * sends inline), or the queue's error (AIPC_EQUEUEFULL: dropped / refused as inline). */
int aipc_shm_queue_desc(aipc_broker *b, aipc_client *c, aipc_frame *desc);
/* The queue charge a descriptor frame adds besides its bytes (its slot's payload + overhead). */
uint64_t aipc_shm_frame_extra(const aipc_frame *f);
/* Hooks of the queue: the descriptor was handed to the engine (c may release it from now on;
 * a release before the write completes is applied at aipc_shm_written) / written / evicted
 * unwritten. */
void aipc_shm_handed(aipc_client *c, const aipc_frame *f);
void aipc_shm_written(aipc_broker *b, aipc_client *c, const aipc_frame *f);
uint64_t aipc_shm_evicted(aipc_broker *b, aipc_client *c, const aipc_frame *f);
/* shm_done pairs from c; a client's answer to an announce; a segment retired (shm_unseg to
 * every client it was announced to). */
void aipc_shm_release(aipc_broker *b, aipc_client *c, const aipc_shm_ref *r, size_t n);
/* One release through c's page: its written hold of (seg, off) goes as a shm_done pair would
 * take it. False when c holds no written slot there. */
bool aipc_shm_hold_release(aipc_broker *b, aipc_client *c, uint32_t seg, uint32_t off);
int aipc_shm_answer(aipc_broker *b, aipc_client *c, uint32_t seg, bool ok);
void aipc_shm_seg_retired(aipc_broker *b, uint32_t seg);
/* Releases every slot c holds and forgets its views (detach). */
void aipc_shm_out_gone(aipc_broker *b, aipc_client *c);
/* shm_in.c: a client's shm_seg announce (mapped and answered), its shm_unseg, a descriptor
 * in its pub/send/req/rep meta (1: *payload and *plen point into its segment, the pair is owed;
 * AIPC_EPROTO / AIPC_ENOMEM with *why: bad_request and close), the owed releases queued at the
 * end of an input turn, and its segments closed (detach). */
#define AIPC_SHM_IN_MAX_SEGS 16u       /* a client's mapped segments, its release page included */
void aipc_shm_in_announce(aipc_broker *b, aipc_client *c, const aipc_shm_ctl *ctl);
/* {"op":"shm_seg","re":id,"seg":seg,"ok":...[,"code":...]} to c. */
void aipc_shm_in_answer(aipc_client *c, uint32_t id, uint32_t seg, bool ok, const char *code);
void aipc_shm_in_unseg(aipc_broker *b, aipc_client *c, uint32_t seg);
int aipc_shm_in_resolve(aipc_broker *b, aipc_client *c, const uint8_t *meta, size_t mlen,
                        size_t plen_in, const uint8_t **payload, size_t *plen,
                        const char **why);
void aipc_shm_in_flush(aipc_broker *b, aipc_client *c);
void aipc_shm_in_gone(aipc_broker *b, aipc_client *c);

/* shm_rel.c: release pages (see its header for the drain points). A page is 64..65536 bytes. */
#define AIPC_SHM_REL_MIN 64u
#define AIPC_SHM_REL_MAX 65536u
typedef struct aipc_shm_rel aipc_shm_rel;
/* A "rel":1 announce from c: bad_request + close when not offered, a second one or after a
 * descriptor; else mapped through the backend and answered ok, or ok:false with a code. */
void aipc_shm_rel_announce(aipc_broker *b, aipc_client *c, const aipc_shm_ctl *ctl);
bool aipc_shm_rel_on(const aipc_client *c);              /* c's page was answered ok */
bool aipc_shm_rel_is_page(const aipc_client *c, uint32_t seg);   /* seg is c's page's id */
/* Reads c's counter once and releases what it says (true: something was released); a bad
 * counter closes c. No-op without a page. */
bool aipc_shm_rel_drain(aipc_broker *b, aipc_client *c);
bool aipc_shm_rel_drain_all(aipc_broker *b);             /* every client with a page */
/* Queue hooks (shm_out.c): a descriptor to c handed to the engine / no longer handed unwritten
 * (evicted) / written (its hold (seg, off), seg 0 when the hold is gone). */
void aipc_shm_rel_handed(aipc_client *c);
void aipc_shm_rel_unhanded(aipc_client *c);
void aipc_shm_rel_written(aipc_broker *b, aipc_client *c, uint32_t seg, uint32_t off,
                          bool was_handed);
void aipc_shm_rel_gone(aipc_broker *b, aipc_client *c);  /* detach: page closed, fifo freed */

/* One delivery of a point-to-point frame (direct, req, rep) to t: through a slot when t takes
 * shared memory, else inline. 0 queued, AIPC_EQUEUEFULL, AIPC_ENOMEM (nothing built). */
int aipc_shm_deliver_one(aipc_broker *b, aipc_client *t, const char *op, const char *from,
                         size_t from_len, const char *extra_key, bool has_extra, int64_t extra,
                         const uint8_t *payload, size_t plen);

/* partial.c */
void aipc_partial_after_input(aipc_broker *b, aipc_client *c);
/* blkcache.c: large blocks recycled (see AIPC_BLK_MIN). */
bool aipc_blk_put(aipc_broker *b, void *p, size_t cap);
void aipc_blk_lend(aipc_broker *b, aipc_client *c, const uint8_t *data, size_t len);
uint8_t *aipc_blk_land(aipc_broker *b, aipc_client *c, size_t *want);
uint8_t *aipc_blk_land_take(aipc_broker *b, aipc_client *c);
void aipc_blk_unland(aipc_broker *b, aipc_client *c, uint8_t *blk, size_t cap);
void aipc_blk_reclaim(aipc_broker *b, aipc_client *c);
size_t aipc_blk_lent_cap(const aipc_client *c, const void *p);
void aipc_blk_routed(aipc_broker *b, aipc_client *c, const uint8_t *payload);
void aipc_blk_release(aipc_broker *b, aipc_client *c);
uint64_t aipc_blk_tick(aipc_broker *b, uint64_t now);
void aipc_blk_free_all(aipc_broker *b);
void aipc_partial_expire(aipc_broker *b, aipc_client *c);
void aipc_partial_closing(aipc_broker *b, aipc_client *c);
void aipc_partial_release(aipc_broker *b, aipc_client *c);

/* connlim.c */
int aipc_connlim_attach(aipc_broker *b, aipc_client *c);
int aipc_connlim_identity(aipc_broker *b, aipc_client *c);
void aipc_connlim_release(aipc_broker *b, aipc_client *c);
void aipc_connlim_free(aipc_broker *b);

/* broker.c */
void aipc__logf(aipc_broker *b, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void aipc__presence(aipc_broker *b, aipc_client *c, bool joined);

#endif
