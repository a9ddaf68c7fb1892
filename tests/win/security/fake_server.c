/*
 * fake_server.c - a pipe server that is not who the clients expect: it creates the pipe with an
 * explicit owner (Wine stores the descriptor as given; on real Windows only that account could
 * create it) and reports whether a client sent it anything.
 *
 *   fake_server --pipe NAME --owner SID --ready EVENT [--timeout MS]
 *
 * Serves one client: waits for it, then reads until the client closes or --timeout (default
 * 10000 ms) passes. Exit code: 0 the client sent nothing and closed, 1 it sent bytes (the
 * first bytes are printed), 2 usage, 3 setup failed, 4 no client or it stayed silent and open.
 */
#include <windows.h>

#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *pipe = NULL, *owner = NULL, *ready = NULL;
    DWORD timeout = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--pipe")) pipe = argv[i + 1];
        else if (!strcmp(argv[i], "--owner")) owner = argv[i + 1];
        else if (!strcmp(argv[i], "--ready")) ready = argv[i + 1];
        else if (!strcmp(argv[i], "--timeout")) timeout = (DWORD)strtoul(argv[i + 1], NULL, 10);
    }
    if (!pipe || !owner || !ready)
        return 2;
    char sddl[256], name[300];
    snprintf(sddl, sizeof sddl, "O:%sD:(A;;GA;;;WD)", owner);
    snprintf(name, sizeof name, "\\\\.\\pipe\\%s", pipe);
    PSECURITY_DESCRIPTOR sd = NULL;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL))
        return 3;
    SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
    HANDLE h = CreateNamedPipeA(name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 65536, 65536,
                                0, &sa);
    HANDLE ev = OpenEventA(EVENT_MODIFY_STATE, FALSE, ready);
    if (h == INVALID_HANDLE_VALUE || !ev)
        return 3;
    OVERLAPPED ov = {0};
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    BOOL ok = ConnectNamedPipe(h, &ov);
    DWORD e = ok ? 0 : GetLastError();
    SetEvent(ev);
    if (!ok && e == ERROR_IO_PENDING) {
        if (WaitForSingleObject(ov.hEvent, timeout) != WAIT_OBJECT_0)
            return 4;
    } else if (!ok && e != ERROR_PIPE_CONNECTED) {
        return 3;
    }
    char buf[512];
    DWORD got = 0, n = 0;
    ResetEvent(ov.hEvent);
    ok = ReadFile(h, buf, sizeof buf - 1, NULL, &ov);
    e = ok ? 0 : GetLastError();
    if (!ok && e == ERROR_IO_PENDING) {
        if (WaitForSingleObject(ov.hEvent, timeout) != WAIT_OBJECT_0) {
            CancelIoEx(h, &ov);
            GetOverlappedResult(h, &ov, &n, TRUE);
            return 4;
        }
        ok = GetOverlappedResult(h, &ov, &n, FALSE);
    } else if (ok) {
        GetOverlappedResult(h, &ov, &n, FALSE);
    }
    got = ok ? n : 0;
    if (got) {
        buf[got] = 0;
        printf("fake_server: received %lu bytes: %.60s\n", (unsigned long)got, buf + 8);
        fflush(stdout);
        return 1;
    }
    return 0;
}
