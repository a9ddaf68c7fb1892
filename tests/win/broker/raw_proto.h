/*
 * raw_proto.h - a raw wire-protocol v1 client for the broker suites (SPEC section 3), written
 * straight on Win32 pipes (no SDK), so the broker is tested against an independent
 * implementation of the protocol. Also: broker process start/stop and an MQTT filter matcher.
 *
 * Every call that waits takes a bound in milliseconds. Single-threaded use per connection.
 */
#ifndef AIPC_RAW_PROTO_H
#define AIPC_RAW_PROTO_H

#include <windows.h>

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "aipc_testutil.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct raw_conn {
    HANDLE h;
    HANDLE rev, wev;            /* events of the read and write OVERLAPPEDs */
    uint8_t *rbuf;              /* received, not yet parsed bytes: [rpos, rhave) */
    size_t rcap, rpos, rhave;
    uint8_t *wbuf;              /* queued frames (raw_send) not yet written */
    size_t wcap, wlen;
    int closed;                 /* the broker closed the pipe */
} raw_conn;

typedef struct raw_frame {
    cJSON *meta;                /* parsed meta (NULL if it was not JSON) */
    char *meta_text;            /* NUL-terminated */
    uint32_t meta_len;
    uint8_t *payload;           /* NUL-terminated copy */
    uint32_t payload_len;
} raw_frame;

/* Connects to \\.\pipe\<name> (short or full form), waiting up to timeout_ms for an instance. */
raw_conn *raw_connect(const char *pipe, DWORD timeout_ms);
void raw_close(raw_conn *c);

/* Writes bytes as they are (for malformed input), bounded. Returns 0 or -1. */
int raw_write(raw_conn *c, const void *data, size_t len, DWORD timeout_ms);
/* Queues one frame (meta text + payload) in the connection's batch buffer. */
int raw_queue(raw_conn *c, const char *meta, const void *payload, uint32_t payload_len);
/* Writes the queued batch. Returns 0 or -1. */
int raw_flush(raw_conn *c, DWORD timeout_ms);
/* raw_queue + raw_flush. */
int raw_send(raw_conn *c, const char *meta, const void *payload, uint32_t payload_len,
             DWORD timeout_ms);

/* Receives one frame. Returns 1 (frame filled), 0 (timeout), -1 (closed or bad stream). */
int raw_recv(raw_conn *c, raw_frame *f, DWORD timeout_ms);
void raw_frame_free(raw_frame *f);
/* The meta's "op" (or "" when missing). */
const char *raw_op(const raw_frame *f);
/* String / number members of the meta (NULL / -1 when missing). */
const char *raw_str(const raw_frame *f, const char *key);
double raw_num(const raw_frame *f, const char *key);

/* Receives frames until one whose op is `op` (and, when re >= 0, whose "re" is re) arrives;
 * frames of other ops are discarded unless they are errors. Returns 1/0/-1 like raw_recv; an
 * unexpected error frame returns -2 (the frame is left in f). */
int raw_expect(raw_conn *c, raw_frame *f, const char *op, long long re, DWORD timeout_ms);

/* hello + welcome. name may be NULL. Returns the client id (> 0) or -1. */
long long raw_hello(raw_conn *c, const char *name, DWORD timeout_ms);
/* sub/unsub with an id and waits for the ok. Returns 0 or -1. */
int raw_sub(raw_conn *c, const char *filter, long long id, DWORD timeout_ms);
/* ping with an id and waits for its answer: every earlier frame was processed by then. */
int raw_sync(raw_conn *c, long long id, DWORD timeout_ms);

/* One counter of the broker's stats (a stats round trip on c with id); -1 when c fails or the
 * broker has no such counter. */
double raw_stat(raw_conn *c, const char *key, long long id, DWORD timeout_ms);

/* Attack shapes shared by the limit suite and attack_mem: "flood/<i>/#", and a topic (or
 * filter) of 256 literal levels whose first one is unique ("d<i>/x/x/.../x"). */
void raw_flat_filter(char *out, size_t cap, int i);
void raw_deep_topic(char *out, size_t cap, int i);

/* MQTT filter match (SPEC section 3: '+' one level, '#' last level, no $ for leading wildcards). */
int raw_topic_match(const char *filter, const char *topic);

/* ---- broker process ------------------------------------------------------------------------ */
typedef struct raw_broker {
    HANDLE process;             /* started in its own process group (for Ctrl+Break) */
    DWORD pid;
    HANDLE stop_event;          /* --stop-event: set to request a clean stop */
    char stop_name[128];
    char pipe[128];             /* short pipe name */
    char config[MAX_PATH];      /* config file written for it */
    char log[MAX_PATH];         /* its log file */
    char procdir[64];           /* Z:\proc\N of its Unix process under Wine ("" elsewhere) */
} raw_broker;

/* Writes a config (extra_json: more "key": value members, may be NULL) and starts
 * asyncipc-broker.exe run --config ... --ready-event ..., waiting for it to listen.
 * Returns 0 or -1. */
int raw_broker_start(raw_broker *b, const char *tag, const char *extra_json);
/* The same with another broker program (exe: its path; NULL = the one next to this program). */
int raw_broker_start_exe(raw_broker *b, const char *exe, const char *tag, const char *extra_json);
/* Asks for a clean stop (its --stop-event) and waits up to ms (0: kill at once).
 * Returns the exit code, or -1 if it had to be killed. */
int raw_broker_stop(raw_broker *b, DWORD ms);
/* The broker's private memory in bytes: under Wine the Linux VmData of its process
 * (wine_procmem.h: Wine does not report PrivateUsage of another process), elsewhere its
 * PrivateUsage; 0 when unknown. */
size_t raw_broker_private_bytes(const raw_broker *b);
/* Its thread count under Wine (Linux Threads), or -1. */
int raw_broker_threads(const raw_broker *b);

/* Payload of publisher p's i-th message: size and pattern (first 4 bytes identify it). */
uint32_t raw_msg_seed(unsigned pub, unsigned seq);
uint32_t raw_msg_size(unsigned pub, unsigned seq);

#ifdef __cplusplus
}
#endif
#endif
