/*
 * broker.h - the portable AsyncIPC broker core (SPEC section 3 wire protocol, section 4 config).
 *
 * No I/O and no <windows.h>: an engine (service/win: IOCP named pipes) owns the connections,
 * reads bytes and hands them to aipc_broker_input(), and writes what aipc_client_out_next()
 * returns. The core parses frames, keeps the registry, the topic trie, retained messages and
 * pending requests, and queues outgoing frames per client.
 *
 * THREADING: the core is single-threaded. Every function here (and every callback it makes)
 * runs on one thread at a time: the engine calls it from one broker thread, or holds one lock
 * around every call. Callbacks (aipc_conn_ops) are made synchronously from inside
 * aipc_broker_attach/input/detach/shutdown, on the calling thread.
 *
 * LIFECYCLE of a connection (engine side):
 *   1. accept a pipe client -> c = your struct whose FIRST member is `aipc_conn`;
 *      cl = aipc_broker_attach(b, &c->conn, pid). NULL: over max_clients (or out of memory):
 *      close the pipe at once, nothing was queued. Otherwise c->conn.client == cl.
 *   2. each read of n bytes -> rc = aipc_broker_input(b, cl, buf, n). rc < 0: close the pipe
 *      now (no flush) and go to 4. Otherwise keep reading.
 *   3. writing: when ops->want_write(conn) is called, or after every write completion, call
 *      aipc_client_out_next(); if it returns > 0, write those bytes (coalesce them into your
 *      own buffer, or write straight from the pointers), then aipc_client_out_consume(n) with
 *      the number of bytes the write completed. Always call out_next again after a consume.
 *   4. ops->close(conn) asks you to close after flushing: keep writing until out_next returns
 *      0, then disconnect. Input after close was requested is ignored by the core. If it has
 *      not drained within close_linger_ms, ops->abort(conn) asks you to close it now.
 *   5. when the pipe is gone (either side), call aipc_broker_detach(b, cl) exactly once; after
 *      it returns, cl and every pointer obtained from out_next are invalid, so never detach
 *      while a write that uses those pointers is still in flight (wait for its completion or
 *      cancellation first). No callback is made for a client after its detach.
 *
 * Callbacks must not call back into the broker, except aipc_client_out_next() and
 * aipc_client_out_consume() from want_write (e.g. for a write that completes synchronously).
 * The core never calls want_write from inside out_next/out_consume; that is why the engine
 * always calls out_next after out_consume.
 *
 * Deviations from the agreed sketch (same spirit):
 *   - aipc_broker_config holds fixed-size char arrays (no ownership rules), pipe_name is stored
 *     in its SHORT form (the "\\.\pipe\" prefix is stripped by the loader);
 *   - extra: aipc_broker_config_defaults, aipc_broker_set_log, client accessors, the zero-copy
 *     read pair aipc_client_read_direct/commit, aipc_broker_stats struct + JSON.
 */
#ifndef AIPC_BROKER_H
#define AIPC_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"   /* the connection interface: aipc_iov, aipc_conn, aipc_conn_ops */
#include "shm_backend.h"   /* aipc_shm_backend: sections made by the engine */

#include "proto/frame.h"   /* aipc_allocator */
#include "proto/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aipc_broker aipc_broker;
typedef struct aipc_client aipc_client;

/* ---- configuration (SPEC section 4) --------------------------------------------------------- */

#define AIPC_BROKER_DEFAULT_PIPE        "asyncipc.broker"            /* short form */
#define AIPC_BROKER_DEFAULT_MAX_CLIENTS 1024u
#define AIPC_BROKER_DEFAULT_MAX_QUEUE   (8u * 1024u * 1024u)
#define AIPC_BROKER_MAX_CLIENTS_LIMIT   65536u                       /* max_clients: 1..this */
#define AIPC_BROKER_MAX_PAYLOAD_LIMIT   (1024u * 1024u * 1024u)      /* max_payload: 1..1 GiB */
#define AIPC_BROKER_MIN_QUEUE           65536u                       /* max_queue_bytes range */
#define AIPC_BROKER_MAX_QUEUE_LIMIT     (1ull << 40)
#define AIPC_BROKER_DEFAULT_MAX_RETAINED (64ull * 1024u * 1024u)     /* 64 MiB */
#define AIPC_BROKER_MAX_RETAINED_LIMIT  (1ull << 40)                 /* max_retained_bytes 0.. */
#define AIPC_BROKER_MAX_TIMEOUT_MS      86400000u                    /* timeouts: 1 ms .. 1 day */
#define AIPC_BROKER_DEFAULT_HELLO_TIMEOUT 10000u                     /* hello_timeout_ms */
#define AIPC_BROKER_DEFAULT_MAX_SUBS    1024u                        /* max_subscriptions */
#define AIPC_BROKER_MAX_SUBS_LIMIT      1000000u
#define AIPC_BROKER_DEFAULT_MAX_SUB_BYTES (1024u * 1024u)            /* max_subscription_bytes */
#define AIPC_BROKER_MIN_SUB_BYTES       4096u
#define AIPC_BROKER_MAX_SUB_BYTES_LIMIT (1ull << 32)
#define AIPC_BROKER_DEFAULT_MAX_PENDING 1024u                        /* max_pending_requests */
#define AIPC_BROKER_MAX_PENDING_LIMIT   1000000u
#define AIPC_BROKER_DEFAULT_REQ_TIMEOUT 60000u                       /* request_timeout_ms */
#define AIPC_BROKER_DEFAULT_MAX_INCOMPLETE (64ull * 1024u * 1024u)   /* max_incomplete_bytes */
#define AIPC_BROKER_MIN_INCOMPLETE      65536u
#define AIPC_BROKER_MAX_INCOMPLETE_LIMIT (1ull << 40)
#define AIPC_BROKER_DEFAULT_FRAME_TIMEOUT 30000u                     /* frame_timeout_ms */
#define AIPC_BROKER_DEFAULT_LINGER      5000u                        /* close_linger_ms */
#define AIPC_BROKER_DEFAULT_MAX_TOTAL_QUEUE (256ull * 1024u * 1024u) /* max_total_queue_bytes */
#define AIPC_BROKER_DEFAULT_MAX_TOTAL_SUB_BYTES (64ull * 1024u * 1024u) /* ..._subscription_bytes */
#define AIPC_BROKER_DEFAULT_MAX_TOTAL_PENDING 65536u        /* max_total_pending_requests */
#define AIPC_BROKER_DEFAULT_CONNS_PER_PROCESS 128u          /* max_connections_per_process */
#define AIPC_BROKER_DEFAULT_CONNS_PER_USER    512u          /* max_connections_per_user */
#define AIPC_BROKER_DEFAULT_SHM_THRESHOLD  65536u           /* shm_threshold */
#define AIPC_BROKER_MIN_SHM_THRESHOLD      4096u            /* shm_threshold: 4096..max_payload */
#define AIPC_BROKER_DEFAULT_MAX_SHM   (256ull * 1024u * 1024u) /* max_shm_bytes */
#define AIPC_BROKER_DEFAULT_SHM_SEGMENT (8u * 1024u * 1024u)   /* shm_segment_bytes */
#define AIPC_BROKER_MIN_SHM_SEGMENT   (1024u * 1024u)          /* shm_segment_bytes: 1 MiB.. */
#define AIPC_BROKER_MAX_SHM_SEGMENT   (1024u * 1024u * 1024u)  /* ..1 GiB, multiple of 4096 */

typedef struct aipc_broker_config {
    char     pipe_name[AIPC_PROTO_PIPE_NAME_BUF];  /* short pipe name (no "\\.\pipe\" prefix),
                                                    * proto/names.h's rules */
    uint32_t max_clients;        /* simultaneous connections (attached clients) */
    uint32_t max_payload;        /* payload_len limit of incoming frames */
    uint64_t max_queue_bytes;    /* per-client outbound queue bound for publications and
                                  * directs: their bytes plus each frame's overhead */
    uint64_t max_total_queue_bytes; /* bound on every client's outbound queue together (all
                                  * frames, overhead included); 0 = no bound. Over it the
                                  * largest queue loses publications (qtotal.c) */
    uint64_t max_retained_bytes; /* bound on the retained store: topic + payload bytes of all
                                  * retained messages; 0 = no retained message is accepted */
    uint32_t hello_timeout_ms;   /* a connection without a successful hello this long after
                                  * attach gets error hello_timeout and is closed */
    uint32_t max_subscriptions;  /* filters one client may hold (D-Bus
                                  * max_match_rules_per_connection) */
    uint64_t max_subscription_bytes; /* memory one client's filters may cost in the trie, each
                                  * charged aipc_subscription_cost() (by its real size) */
    uint64_t max_total_subscription_bytes; /* every client's subscriptions together, charged
                                  * as above; 0 = no bound. Over it: too_many_subscriptions */
    uint32_t max_total_pending_requests; /* requests of all clients waiting for an answer
                                  * (with their queued error answers); 0 = no bound */
    uint32_t max_pending_requests; /* requests one client may have waiting for an answer
                                  * (D-Bus max_replies_per_connection) */
    uint32_t request_timeout_ms; /* a request unanswered this long fails with error timeout
                                  * (D-Bus reply_timeout) */
    uint64_t max_incomplete_bytes; /* memory all connections' partially received frames may
                                  * hold together (D-Bus max_incomplete_message_bytes) */
    uint32_t frame_timeout_ms;   /* a partially received frame that gets no byte this long
                                  * closes its connection (error frame_timeout) */
    uint32_t close_linger_ms;    /* a connection the broker closes (after an error, a timeout,
                                  * bye) whose output has not drained this long is aborted */
    uint32_t max_connections_per_process; /* connections one client process (pid) may have
                                  * open; 0 = no bound. Over it: too_many_connections */
    uint32_t max_connections_per_user; /* connections one user (SID of the identity) may have
                                  * open (D-Bus max_connections_per_user); 0 = no bound */
    int      log_level;          /* aipc_log_level: 0 error .. 4 trace; default 2 (info) */
    char     log_file[1024];     /* "" = engine default. Relative paths are kept as written:
                                  * the ENGINE resolves them against the config file's folder */
    char     sddl[4096];         /* "" = engine's default DACL */
    bool     shm;                /* offer shared memory to clients that ask (hello "shm"), when
                                  * the engine installed a backend; false = always inline */
    uint32_t shm_threshold;      /* payloads of at least this many bytes go to shm clients
                                  * through shared memory (announced in the welcome) */
    uint64_t max_shm_bytes;      /* fan-out segments of all pools together; beyond it
                                  * publications go inline; 0 = no fan-out segments */
    uint32_t shm_segment_bytes;  /* a fan-out segment is max(this, the payload + 1 rounded up
                                  * to 1 MiB) bytes */
    bool     shm_release_page;   /* offer shm clients a release page ("rel":1 in the welcome:
                                  * they release fan-out slots through a counter in shared
                                  * memory instead of shm_done frames); false = frames only */
    struct aipc_policy *policy;  /* the "policy" key (policy.h); NULL = the open bus. Owned
                                  * by the struct that aipc_broker_config_load_json filled:
                                  * release it with aipc_broker_config_free. aipc_broker_new
                                  * keeps its own copy. */
} aipc_broker_config;

/* Fills *out with the defaults (pipe asyncipc.broker, 1024 clients, 16 MiB payload,
 * 8 MiB queue and 256 MiB of queues in total, 64 MiB retained store, 10 s hello timeout,
 * 1024 subscriptions and 1 MiB of them per client and 64 MiB in total, 1024 pending requests
 * per client and 65536 in total, 60 s request timeout, 64 MiB of incomplete frames in total,
 * 30 s frame stall timeout, 5 s close linger, 128 connections per client process and 512 per
 * user, info, no log file, default DACL, no policy; shared memory on, 64 KiB threshold, 256 MiB
 * of fan-out segments, 8 MiB segments, release pages on). */
void aipc_broker_config_defaults(aipc_broker_config *out);
/* Releases what a loaded config owns (its policy); the struct is left with no policy. */
void aipc_broker_config_free(aipc_broker_config *cfg);

/*
 * Parses a JSON config over the defaults. Strict: the text must be one JSON object; unknown
 * keys, duplicate keys, wrong types and out-of-range values fail. Keys:
 *   pipe_name (string, "\\.\pipe\NAME" or "NAME"), max_clients (integer 1..65536),
 *   max_payload (integer 1..1 GiB), max_queue_bytes (integer 64 KiB..1 TiB),
 *   max_total_queue_bytes (integer 0 or 64 KiB..1 TiB; 0 = no bound),
 *   max_retained_bytes (integer 0..1 TiB; 0 = retained messages are refused),
 *   hello_timeout_ms (integer 1..86400000), max_subscriptions (integer 1..1000000),
 *   max_subscription_bytes (integer 4096..4 GiB), max_pending_requests (integer 1..1000000),
 *   max_total_subscription_bytes (integer 0 or 4096..1 TiB), max_total_pending_requests
 *   (integer 0..100000000) (0 = no bound),
 *   request_timeout_ms (integer 1..86400000), max_incomplete_bytes (integer 64 KiB..1 TiB),
 *   frame_timeout_ms (integer 1..86400000), close_linger_ms (integer 1..86400000),
 *   max_connections_per_process, max_connections_per_user (integer 0..65536; 0 = no bound),
 *   log_level ("error"|"warn"|"info"|"debug"|"trace" or integer 0..4),
 *   log_file (string, may be empty), sddl (string, may be empty),
 *   policy (object: access rules and reserved names, see policy.h and docs/protocol.md),
 *   shm (boolean), shm_threshold (integer 4096..max_payload; checked against the max_payload
 *   of the same text, or its default), max_shm_bytes (integer 0..1 TiB; 0 = fan-out always
 *   inline), shm_segment_bytes (integer 1 MiB..1 GiB, a multiple of 4096), shm_release_page
 *   (boolean).
 * Returns 0, or AIPC_EINVAL with a one-line message naming the key in err (always
 * NUL-terminated when errlen > 0). *out is only written on success; it must not own a policy
 * yet (it is overwritten, not freed): call aipc_broker_config_free on it when done.
 */
int aipc_broker_config_load_json(aipc_broker_config *out, const char *json_text, char *err,
                                 size_t errlen);

/* ---- broker ------------------------------------------------------------------------------- */

/* Creates a broker. cfg is copied (NULL = defaults; zero numeric fields mean the default,
 * except max_retained_bytes (0: no retained messages), max_total_queue_bytes,
 * max_total_subscription_bytes, max_total_pending_requests and
 * max_connections_per_process/_user (0: no bound), max_shm_bytes (0: no fan-out segments),
 * shm and shm_release_page (false: never offered), where 0 is a real setting - so start from
 * aipc_broker_config_defaults; values are not range-checked here, so tests may use tiny
 * queues). now_ms: a monotonic millisecond clock for uptime and every timeout (NULL =
 * time(NULL) * 1000; tests pass a fake clock). Returns NULL on out of memory. */
aipc_broker *aipc_broker_new(const aipc_broker_config *cfg, uint64_t (*now_ms)(void));
/* Frees the broker and any client still attached (no callbacks are made, and the engine's
 * aipc_conn structs are not touched: they may already be gone). */
void aipc_broker_free(aipc_broker *b);

/* Where the broker's queued frames come from: every outgoing frame, the retained messages, and
 * the blocks its connections' decoders assemble large inbound frames in (a frame forwarded
 * without a copy adopts its block). NULL = the CRT's malloc/realloc/free (the default). Lets
 * an engine keep the frames, which a slow subscriber holds for long, apart from the
 * short-lived memory of connections and requests (docs/memory.md: fragmentation). The
 * callbacks run on the broker thread (inside the core's calls and aipc_broker_free); *a is
 * copied and its ctx must stay valid until aipc_broker_free returns. Only before the first
 * attach: AIPC_EINVAL afterwards (nothing allocated by one may be freed by another). */
int aipc_broker_set_frame_allocator(aipc_broker *b, const aipc_allocator *a);

/* Installs the engine's shared-memory backend (shm_backend.h; *be is copied, be->ctx must stay
 * valid until aipc_broker_free returns; NULL removes it). Only before the first attach:
 * AIPC_EINVAL afterwards, or when a function is missing. Without a backend the broker never
 * offers shared memory (welcomes are plain, everything goes inline). */
int aipc_broker_set_shm_backend(aipc_broker *b, const aipc_shm_backend *be);

/* Optional log sink for the core's own messages (client joined/left, protocol errors).
 * level is an aipc_log_level; msg is one line without newline. Called on the broker thread. */
typedef void (*aipc_broker_log_fn)(void *ctx, int level, const char *msg);
void aipc_broker_set_log(aipc_broker *b, aipc_broker_log_fn fn, void *ctx);

/* A new connection was accepted; pid is the client's process id (GetNamedPipeClientProcessId;
 * 0 = unknown: not counted per process). Returns the client, or NULL when max_clients are
 * attached or memory ran out (the engine then closes the pipe itself; no callback is made).
 * The client has no id until its hello. A client over max_connections_per_process is returned
 * too, with error too_many_connections queued and its close requested (ops->close) from
 * inside this call: the engine writes it and closes as for any close. */
aipc_client *aipc_broker_attach(aipc_broker *b, aipc_conn *conn, uint32_t pid);

/* Bytes read from the client, any split. Frames are processed in order; replies and deliveries
 * are queued (want_write / close callbacks may run). Returns 0 (keep reading; the core may have
 * requested close through ops->close), or < 0 (AIPC_ENOMEM): close the pipe now, no flush. */
int aipc_broker_input(aipc_broker *b, aipc_client *cl, const uint8_t *data, size_t len);

/* Zero-copy read for large frames: while a frame's payload is being assembled, returns where
 * the next bytes can be read to and how many are missing (NULL when not assembling). After
 * reading n bytes there, call aipc_client_read_commit (same return values as input). */
uint8_t *aipc_client_read_direct(aipc_client *cl, size_t *want);
int aipc_client_read_commit(aipc_broker *b, aipc_client *cl, size_t n);

/* After an input (or read_commit) call: whether that turn copied shared-memory payloads out of
 * the client's segments (each up to max_payload bytes) - then the engine should serve its other
 * connections before this one's next read, or a publisher whose reads keep completing at once
 * runs ahead of its subscribers' releases (whose slots stay charged to their queues until then:
 * drops). Clears the answer. */
bool aipc_client_take_yield(aipc_client *cl);

/* The pipe is gone: publishes $bus/left (if the client said hello), sends error no_reply to
 * everyone waiting on a request to it, drops its subscriptions and frees the client. */
void aipc_broker_detach(aipc_broker *b, aipc_client *cl);

/* Fills up to max_iov entries with the queued bytes in order (pointing into shared frames; no
 * copy). Returns the number of entries filled, 0 when nothing is queued. The pointers stay
 * valid until consumed or until the client is detached. When nothing is partly written and
 * publications were dropped since the last report, a `dropped` report is put first (ahead of
 * the queued frames): so call it only when no write of its previous answer is in flight, and
 * again after every consume. */
int aipc_client_out_next(aipc_client *cl, aipc_iov *iov, int max_iov);
/* Optional, after aipc_client_out_next: the write being issued covers only its first n pieces
 * (the last perhaps partly). A frame queued ahead of the backlog (a release) then goes right
 * behind those instead of behind every piece offered. */
void aipc_client_out_issued(aipc_client *cl, int n);
/* nbytes (<= what out_next returned in total) were written: releases finished frames and
 * updates the queue accounting; may queue a `dropped` report (call out_next again). */
void aipc_client_out_consume(aipc_client *cl, size_t nbytes);
/* Bytes currently queued for the client. */
uint64_t aipc_client_out_pending(const aipc_client *cl);

/* Client accessors (for engine logging). id is 0 before hello; name "" when anonymous. */
uint64_t aipc_client_id(const aipc_client *cl);
const char *aipc_client_name(const aipc_client *cl);
uint32_t aipc_client_pid(const aipc_client *cl);
aipc_conn *aipc_client_conn(const aipc_client *cl);

/* ---- client identity ------------------------------------------------------------------------
 * Who is behind a connection, as the engine learnt it from the operating system when the client
 * connected (never from what the client says): its user SID, its session, its integrity level and
 * its groups. The core stamps user, session and integrity into every `from` it sends for the
 * client (and into presence), and the policy decides on the user and the groups. */

#define AIPC_SID_MAX             191u   /* longest SID string accepted (NUL excluded) */
#define AIPC_IDENTITY_MAX_GROUPS 1024u  /* a Windows token holds at most 1015 groups */

typedef struct aipc_identity_group {
    const char *sid;          /* "S-1-5-32-544" */
    int deny_only;            /* SE_GROUP_USE_FOR_DENY_ONLY (or not enabled): counts for deny
                               * rules only, as in an access check */
} aipc_identity_group;

typedef struct aipc_identity {
    const char *user_sid;     /* "S-1-5-21-..." */
    uint32_t session;         /* Windows session id */
    uint32_t integrity;       /* mandatory integrity level RID (0x2000 medium, ...); 0 unknown */
    const aipc_identity_group *groups;
    size_t ngroups;
} aipc_identity;

/* Gives a client its identity (copied). Must be called after attach and before the first
 * aipc_broker_input of the client (before its hello). A client over max_connections_per_user
 * gets error too_many_connections and its close requested from inside this call (0 is
 * returned: the engine keeps the connection until the close, its input is ignored); on a
 * client whose close was already requested it does nothing and returns 0. AIPC_EINVAL after
 * the first input, or when a SID is
 * not a well-formed "S-1-..." string of at most AIPC_SID_MAX characters, or with more than
 * AIPC_IDENTITY_MAX_GROUPS groups; AIPC_ENOMEM. The engine closes the connection on failure.
 * A client without identity (core tests) is stamped without the identity fields and matches
 * no policy principal except "*". */
int aipc_client_set_identity(aipc_client *cl, const aipc_identity *id);
/* The identity given by set_identity (pointers into the client), or NULL. */
const aipc_identity *aipc_client_identity(const aipc_client *cl);

/* What one subscription to a valid filter is charged against max_subscription_bytes: an
 * upper bound of the memory it can add (its record and index slots, and one trie node with
 * its child table and level name per level, as if it shared no node with other filters). */
uint64_t aipc_subscription_cost(const char *filter, size_t n);

/* Time: runs what is due at now_ms() (hello timeouts, ...): answers are queued and closes
 * requested through the callbacks, as in input. Call it regularly, at the latest after the
 * number of milliseconds it returned (0: more work is pending, call again soon; UINT64_MAX:
 * nothing is scheduled until the next input/attach). Cheap when nothing is due. */
uint64_t aipc_broker_tick(aipc_broker *b);

/* Stopping: queues {"op":"bye","reason":"shutdown"} to every client and asks to close each
 * (ops->close). The engine flushes, then detaches them and frees the broker. Input arriving
 * afterwards is ignored, and new attaches are refused (NULL). */
void aipc_broker_shutdown(aipc_broker *b);

/* ---- statistics --------------------------------------------------------------------------- */
typedef struct aipc_broker_stats {
    uint64_t clients;          /* attached now */
    uint64_t clients_total;    /* ever attached */
    uint64_t subscriptions;    /* (client, filter) pairs now */
    uint64_t retained_topics;  /* retained messages now */
    uint64_t retained_bytes;   /* their topic + payload bytes (bounded by max_retained_bytes) */
    uint64_t msgs_in;          /* frames received */
    uint64_t bytes_in;         /* bytes received */
    uint64_t msgs_out;         /* frames fully written (out_consume) */
    uint64_t bytes_out;        /* bytes written (out_consume) */
    uint64_t publications;     /* pub frames accepted (incl. presence) */
    uint64_t deliveries;       /* publication copies queued to subscribers */
    uint64_t drops;            /* publication copies dropped on full queues */
    uint64_t errors;           /* error frames sent */
    uint64_t denied;           /* operations the policy refused (forbidden, name_reserved) */
    uint64_t hello_timeouts;   /* connections closed for not saying hello in time */
    uint64_t subscription_bytes; /* what the subscriptions now are charged (upper bound of the
                                * trie memory they hold) */
    uint64_t subs_refused;     /* subs refused with too_many_subscriptions */
    uint64_t pending_requests; /* requests waiting for their answer now */
    uint64_t reqs_refused;     /* reqs refused with too_many_requests */
    uint64_t request_timeouts; /* requests answered with error timeout */
    uint64_t incomplete_bytes; /* memory held by partially received frames now */
    uint64_t incomplete_refused; /* connections closed with incomplete_full */
    uint64_t frame_timeouts;   /* connections closed with frame_timeout */
    uint64_t linger_aborts;    /* closing connections aborted after close_linger_ms */
    uint64_t drop_reports;     /* `dropped` reports sent (each coalesces the drops since the
                                * previous one) */
    uint64_t queue_bytes;      /* every outbound queue's charge now (max_total_queue_bytes) */
    uint64_t queue_total_drops; /* publications dropped for max_total_queue_bytes (also in
                                * drops): evicted from the largest queues, or not queued */
    uint64_t process_conns_refused; /* connections refused over max_connections_per_process */
    uint64_t user_conns_refused;    /* connections refused over max_connections_per_user */
    uint64_t uptime_ms;
    /* Shared memory (docs/protocol.md, "Shared memory on the bus"). */
    uint64_t shm_clients;      /* clients welcomed with shm, attached now */
    uint64_t shm_bytes;        /* fan-out slot bytes held now */
    uint64_t shm_segments;     /* fan-out segments now */
    uint64_t shm_client_segments; /* clients' segments mapped now */
    uint64_t shm_publications; /* pubs/directs/reqs/reps delivered through fan-out slots (once
                                * per publication) */
    uint64_t shm_deliveries;   /* descriptors queued, one per receiver */
    uint64_t shm_inline_fallbacks; /* deliveries that went inline to a shm client (no room, not
                                * confirmed, refused) */
    uint64_t shm_map_failures; /* clients' segments the broker could not open */
    uint64_t shm_in;           /* payloads received through clients' segments */
    uint64_t shm_bad_releases; /* shm_done pairs naming a slot the client does not hold */
    uint64_t shm_release_frames; /* shm_done frames read from clients (each 1..128 pairs) */
    uint64_t shm_page_releases; /* fan-out slots released through clients' release pages */
    uint64_t shm_pages;        /* clients with a release page mapped now */
} aipc_broker_stats;

void aipc_broker_get_stats(const aipc_broker *b, aipc_broker_stats *out);
/* Writes the stats as one JSON object (the payload of the `stats` answer), snprintf-style:
 * returns the length it needs (excluding the NUL); out is NUL-terminated when cap > 0. */
size_t aipc_broker_stats_json(const aipc_broker *b, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* AIPC_BROKER_H */
