/*
 * cli_proc.h - a child process (aipc.exe) with pipes on stdin, stdout and stderr, for the
 * cli suite's tests that talk to a running aipc: stdin is written while it runs (binary, NULs
 * included) and closed to give it the end of input; stdout and stderr are read by one thread
 * each, and the test waits (bounded, on a condition variable) until a text has appeared.
 *
 * Children are in a kill-on-close job: they die with the suite even if it crashes.
 */
#ifndef CLI_PROC_H
#define CLI_PROC_H

#include <windows.h>

#include <stddef.h>

enum { CP_OUT = 0, CP_ERR = 1 };

typedef struct cp_child {
    HANDLE process;
    DWORD pid;
    DWORD exit_code;        /* after cp_wait_exit returned 1 */
    HANDLE in;              /* write end of its stdin; NULL once closed */
    HANDLE rd[2];           /* read ends of its stdout, stderr */
    HANDLE thread[2];       /* their readers */
    CRITICAL_SECTION lock;
    CONDITION_VARIABLE cv;
    char *text[2];          /* everything read so far, NUL-terminated */
    size_t len[2], cap[2];
    int eof[2];
} cp_child;

/* Starts `exe` (in the suite's folder) with the argument string. 0 or -1. */
int cp_start(cp_child *ch, const char *exe, const char *args);
/* Writes to its stdin (all of it). 0 or -1. */
int cp_write(cp_child *ch, const void *data, size_t len);
/* Closes its stdin: it reads the end of input. */
void cp_close_stdin(cp_child *ch);
/* Waits until `text` appears in the stream (CP_OUT, CP_ERR), at most ms. 1 if it did. */
int cp_wait_text(cp_child *ch, int stream, const char *text, DWORD ms);
/* Waits up to ms for the exit and the end of both streams. 1 if it exited (else it is killed
 * and 0 is returned). The texts stay readable. */
int cp_wait_exit(cp_child *ch, DWORD ms);
/* A copy of what the stream holds now (free it). */
char *cp_text(cp_child *ch, int stream);
/* Kills it if still running and frees everything. */
void cp_free(cp_child *ch);

#endif
