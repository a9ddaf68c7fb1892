/*
 * bus_test.h - helpers of the bus suites: the broker as a separate process (started, killed,
 * restarted on the same pipe), a recording bus client whose counters the test thread waits on
 * (bounded, event-based), reply waiters and a child process with captured output.
 *
 * Callbacks run on the SDK's I/O thread and only record (never ck_assert there); problems
 * seen on the I/O thread are kept in `error` and checked by the tests.
 */
#ifndef AIPC_BUS_TEST_H
#define AIPC_BUS_TEST_H

#include "aipc_testutil.h"

#include <check.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- broker process ------------------------------------------------------------------------ */
typedef struct bt_broker {
    HANDLE process;
    DWORD pid;
    char pipe[128];        /* short name */
    wchar_t wpipe[128];
    char config[MAX_PATH]; /* its config file (pipe_name, log_file) in the temp folder */
    char log[MAX_PATH];    /* its log file */
} bt_broker;

/* Picks a unique pipe name for `tag` and starts the broker on it (waits until it listens). */
int bt_broker_start(bt_broker *b, const char *tag);
/* Starts the broker again on b->pipe (after a kill). 0 or -1. */
int bt_broker_restart(bt_broker *b);
/* TerminateProcess and wait until it is gone. */
void bt_broker_kill(bt_broker *b);
/* Clean stop (Ctrl+Break), falling back to a kill. */
void bt_broker_stop(bt_broker *b);

/* The broker a whole suite shares: CHECK_MAIN_EX(suite, bt_suite_broker_start,
 * bt_suite_broker_stop, ...) starts it before the first test and stops it after the last. */
extern bt_broker bt_suite_broker;
int bt_suite_broker_start(void);   /* 0, or 1 (said on stderr) */
void bt_suite_broker_stop(void);
/* A topic prefix unique in this process ("t<n>/<tag>"), so tests sharing a broker never see
 * each other's messages. */
void bt_unique_topic(char *out, size_t cap, const char *tag);

/* ---- failed tests (CK_FORK=no) -------------------------------------------------------------- */
/* A checked teardown: recorders (bt_client, bt_reply) a failed test left registered are made
 * inert (their callbacks no longer run) and their clients closed, so a failed assertion is
 * reported instead of crashing a later test. Suites using recorders create their test cases
 * with bt_tcase_create (or call bt_reap from their own teardown). */
void bt_reap(void);
TCase *bt_tcase_create(const char *name);

/* ---- recording client ---------------------------------------------------------------------- */
#define BT_MAX_KEEP 4096

typedef struct bt_msg {
    char *topic;           /* NULL for direct messages and requests */
    uint8_t *data;
    size_t len;
    uint64_t from_id;
    uint32_t from_pid;
    char from_name[132];
    int retained;
    uint64_t req_id;
} bt_msg;

typedef enum { BT_REQ_ECHO = 0, BT_REQ_IGNORE, BT_REQ_LATER } bt_req_mode;

typedef struct bt_client {
    aipc_bus *bus;
    CRITICAL_SECTION lock;
    CONDITION_VARIABLE cv;
    int keep;              /* keep a copy of messages/directs/requests */
    bt_req_mode req_mode;  /* ECHO replies from the callback; LATER keeps requests for the test */
    /* counters (read under lock or after a wait) */
    volatile long long connected, disconnected, reconnecting, closed;
    volatile long long msgs, directs, requests, joined, left, errors, dropped;
    volatile long long state_after_close;   /* callbacks seen after on_state(CLOSED) */
    int last_state, last_error;
    char last_error_code[64];
    char last_presence_name[132];
    uint64_t last_presence_id;
    uint32_t last_presence_pid;
    bt_msg *kept;          /* messages (topic != NULL), directs and requests in arrival order */
    size_t nkept;
    DWORD io_thread;
    DWORD closer_thread;   /* the thread bt_close called aipc_bus_close on */
    char error[256];
    /* per-publisher order check for "seq" payloads (u32 publisher, u32 seq) */
    uint32_t last_seq[512];
    long long order_errors;
    int close_in_callback; /* close the client inside the next on_message */
} bt_client;

/* Options with every callback of the recorder and the given name/pipe; reconnect as given. */
void bt_options(bt_client *c, aipc_bus_options *o, const wchar_t *pipe, const char *name,
                int reconnect);
/* Initialises c, connects with o (from bt_options, possibly adjusted). 0 or AIPC_E*. */
int bt_connect(bt_client *c, const aipc_bus_options *o);
/* Shortcut: bt_options + bt_connect + wait for CONNECTED (bounded). 0 or -1. */
int bt_open(bt_client *c, const wchar_t *pipe, const char *name, int keep);
/* Waits until *field >= target, at most ms. 1 if reached. */
int bt_wait(bt_client *c, volatile long long *field, long long target, DWORD ms);
long long bt_get(bt_client *c, volatile long long *field);
/* Closes the bus (bounded: fails the test via return 0 on deadlock) and frees recordings. */
int bt_close(bt_client *c);
/* Frees kept messages (c stays usable). */
void bt_clear(bt_client *c);
/* The i-th kept message (under lock; valid until bt_clear/bt_close). */
bt_msg *bt_kept(bt_client *c, size_t i);

/* A ping through c (everything c sent before has been processed by the broker when it
 * returns 1). */
int bt_sync(bt_client *c, DWORD ms);

/* ---- reply waiter -------------------------------------------------------------------------- */
typedef struct bt_reply {
    HANDLE done;
    int status;
    uint8_t *data;
    size_t len;
    uint64_t from_id;
    char from_name[132];
    DWORD thread;
    volatile LONG calls;   /* must end up exactly 1 */
} bt_reply;

void bt_reply_init(bt_reply *r);
void bt_reply_free(bt_reply *r);
/* aipc_bus_reply_fn recording into the bt_reply passed as user. */
void bt_on_reply(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                 const void *data, size_t len);
/* Waits for the reply; 1 if it came within ms. */
int bt_reply_wait(bt_reply *r, DWORD ms);

/* ---- child process with captured output --------------------------------------------------- */
typedef struct bt_child {
    HANDLE process;
    DWORD pid;
    char out_path[MAX_PATH], err_path[MAX_PATH];
    DWORD exit_code;
    char *out, *err;       /* after bt_child_wait */
} bt_child;

/* Starts `exe` (in the suite's folder) with the argument string; stdout/stderr go to temp files;
 * stdin from `stdin_data` (NULL = empty). 0 or -1. */
int bt_child_start(bt_child *ch, const char *exe, const char *args, const char *stdin_data);
/* Waits up to ms for the exit; then reads the outputs. 1 if it exited (else it is killed, 0). */
int bt_child_wait(bt_child *ch, DWORD ms);
/* Like bt_child_wait but returns 0 immediately when not yet exited after ms (child kept). */
int bt_child_poll(bt_child *ch, DWORD ms);
void bt_child_free(bt_child *ch);
/* Number of lines (terminated by '\n') in s. */
int bt_count_lines(const char *s);

#ifdef __cplusplus
}
#endif
#endif
