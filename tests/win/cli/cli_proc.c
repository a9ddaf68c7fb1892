/* cli_proc.c - a child process with piped stdin/stdout/stderr (see cli_proc.h). */
#include "cli_proc.h"

#include "aipc_testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader_arg {
    cp_child *ch;
    int stream;
} reader_arg;

/* Appends what the child writes to the stream until it closes its end. */
static DWORD WINAPI reader(LPVOID p)
{
    reader_arg *ra = p;
    cp_child *ch = ra->ch;
    int s = ra->stream;
    free(ra);
    char buf[4096];
    DWORD got;
    while (ReadFile(ch->rd[s], buf, sizeof buf, &got, NULL) && got > 0) {
        EnterCriticalSection(&ch->lock);
        if (ch->len[s] + got + 1 > ch->cap[s]) {
            size_t nc = (ch->len[s] + got + 1) * 2;
            char *nb = realloc(ch->text[s], nc);
            if (!nb) {
                LeaveCriticalSection(&ch->lock);
                break;
            }
            ch->text[s] = nb;
            ch->cap[s] = nc;
        }
        memcpy(ch->text[s] + ch->len[s], buf, got);
        ch->len[s] += got;
        ch->text[s][ch->len[s]] = 0;
        WakeAllConditionVariable(&ch->cv);
        LeaveCriticalSection(&ch->lock);
    }
    EnterCriticalSection(&ch->lock);
    ch->eof[s] = 1;
    WakeAllConditionVariable(&ch->cv);
    LeaveCriticalSection(&ch->lock);
    return 0;
}

/* A pipe whose child end is inheritable and whose parent end is not. */
static int make_pipe(HANDLE *parent, HANDLE *child, int child_reads)
{
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE r, w;
    if (!CreatePipe(&r, &w, &sa, 0))
        return -1;
    *parent = child_reads ? w : r;
    *child = child_reads ? r : w;
    SetHandleInformation(*parent, HANDLE_FLAG_INHERIT, 0);
    return 0;
}

int cp_start(cp_child *ch, const char *exe, const char *args)
{
    memset(ch, 0, sizeof *ch);
    InitializeCriticalSection(&ch->lock);
    InitializeConditionVariable(&ch->cv);
    for (int s = 0; s < 2; s++) {
        ch->text[s] = calloc(1, 1);
        ch->cap[s] = 1;
    }
    char app[MAX_PATH], cmd[4096];
    DWORD n = GetModuleFileNameA(NULL, app, MAX_PATH);
    while (n > 0 && app[n - 1] != '\\')
        n--;
    snprintf(app + n, sizeof app - n, "%s", exe);
    snprintf(cmd, sizeof cmd, "\"%s\" %s", app, args);
    HANDLE cin = NULL, cout = NULL, cerr = NULL;
    if (make_pipe(&ch->in, &cin, 1) || make_pipe(&ch->rd[CP_OUT], &cout, 0) ||
        make_pipe(&ch->rd[CP_ERR], &cerr, 0)) {
        fprintf(stderr, "cp_start: CreatePipe failed: %lu\n", (unsigned long)GetLastError());
        return -1;
    }
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = cin;
    si.hStdOutput = cout;
    si.hStdError = cerr;
    PROCESS_INFORMATION pi;
    BOOL ok = aipc_test_create_process(app, cmd, TRUE, CREATE_NEW_PROCESS_GROUP, &si, &pi);
    CloseHandle(cin);     /* the child has its own copies: EOF reaches the readers at its exit */
    CloseHandle(cout);
    CloseHandle(cerr);
    if (!ok) {
        fprintf(stderr, "cp_start: CreateProcess(%s) failed: %lu\n", app, (unsigned long)GetLastError());
        return -1;
    }
    aipc_test_job_assign(pi.hProcess);
    CloseHandle(pi.hThread);
    ch->process = pi.hProcess;
    ch->pid = pi.dwProcessId;
    for (int s = 0; s < 2; s++) {
        reader_arg *ra = malloc(sizeof *ra);
        if (!ra)
            return -1;
        ra->ch = ch;
        ra->stream = s;
        ch->thread[s] = CreateThread(NULL, 0, reader, ra, 0, NULL);
        if (!ch->thread[s]) {
            free(ra);
            return -1;
        }
    }
    return 0;
}

int cp_write(cp_child *ch, const void *data, size_t len)
{
    const char *p = data;
    while (ch->in && len > 0) {
        DWORD put = 0;
        if (!WriteFile(ch->in, p, (DWORD)(len > 65536 ? 65536 : len), &put, NULL))
            return -1;
        p += put;
        len -= put;
    }
    return len == 0 ? 0 : -1;
}

void cp_close_stdin(cp_child *ch)
{
    if (ch->in) {
        CloseHandle(ch->in);
        ch->in = NULL;
    }
}

int cp_wait_text(cp_child *ch, int stream, const char *text, DWORD ms)
{
    uint64_t until = aipc_test_now_ms() + ms;
    EnterCriticalSection(&ch->lock);
    int found;
    while (!(found = strstr(ch->text[stream], text) != NULL) && !ch->eof[stream]) {
        uint64_t now = aipc_test_now_ms();
        if (now >= until)
            break;
        SleepConditionVariableCS(&ch->cv, &ch->lock, (DWORD)(until - now));
    }
    LeaveCriticalSection(&ch->lock);
    return found;
}

int cp_wait_exit(cp_child *ch, DWORD ms)
{
    if (!ch->process)
        return 1;
    int exited = WaitForSingleObject(ch->process, ms) == WAIT_OBJECT_0;
    if (!exited) {
        TerminateProcess(ch->process, 99);
        WaitForSingleObject(ch->process, AIPC_TEST_WAIT_MS);
    }
    cp_close_stdin(ch);
    GetExitCodeProcess(ch->process, &ch->exit_code);
    CloseHandle(ch->process);
    ch->process = NULL;
    for (int s = 0; s < 2; s++) {
        if (ch->thread[s]) {
            /* bounded: a grandchild holding the pipe would keep it open */
            if (WaitForSingleObject(ch->thread[s], AIPC_TEST_WAIT_MS) != WAIT_OBJECT_0)
                exited = 0;
            CloseHandle(ch->thread[s]);
            ch->thread[s] = NULL;
        }
    }
    return exited;
}

char *cp_text(cp_child *ch, int stream)
{
    EnterCriticalSection(&ch->lock);
    char *copy = _strdup(ch->text[stream]);
    LeaveCriticalSection(&ch->lock);
    return copy;
}

void cp_free(cp_child *ch)
{
    if (ch->process)
        cp_wait_exit(ch, 0);
    cp_close_stdin(ch);
    for (int s = 0; s < 2; s++) {
        if (ch->rd[s])
            CloseHandle(ch->rd[s]);
        free(ch->text[s]);
    }
    DeleteCriticalSection(&ch->lock);
    memset(ch, 0, sizeof *ch);
}
