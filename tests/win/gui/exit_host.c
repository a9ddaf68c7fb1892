/*
 * exit_host.c - host program of the exit helper DLLs (see exit_dll.h):
 *
 *   exit_host --dll FILE --what pipe|bus --pipe NAME --marker PATH [--engine async|overlapped]
 *             [--block 0|1] [--ready EVENT] [--timeout MS]
 *
 * Loads the DLL, calls its exit_start, then returns from main: the C runtime calls ExitProcess,
 * which ends the other threads and then runs the DLL's DLL_PROCESS_DETACH / static destructors.
 * Exit codes: 0 (the process ended normally), 2 usage, 4 the DLL could not be loaded or started.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exit_dll.h"

int main(int argc, char **argv)
{
    const char *dll = NULL, *what = NULL;
    exit_args a;
    memset(&a, 0, sizeof a);
    a.timeout_ms = 30000;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--dll"))
            dll = v;
        else if (!strcmp(k, "--what"))
            what = v;
        else if (!strcmp(k, "--pipe"))
            a.pipe = v;
        else if (!strcmp(k, "--marker"))
            a.marker = v;
        else if (!strcmp(k, "--engine"))
            a.overlapped = !strcmp(v, "overlapped");
        else if (!strcmp(k, "--block"))
            a.block = atoi(v);
        else if (!strcmp(k, "--ready"))
            a.ready = v;
        else if (!strcmp(k, "--timeout"))
            a.timeout_ms = (DWORD)strtoul(v, NULL, 10);
        else
            return 2;
    }
    if (!dll || !what || !a.pipe || !a.marker || argc % 2 == 0) {
        fprintf(stderr, "exit_host: bad arguments (see exit_host.c)\n");
        return 2;
    }
    a.bus = !strcmp(what, "bus");
    HMODULE m = LoadLibraryA(dll);
    exit_start_fn start = m ? (exit_start_fn)(void (*)(void))GetProcAddress(m, "exit_start") : NULL;
    if (!start) {
        fprintf(stderr, "exit_host: cannot load %s (%lu)\n", dll, (unsigned long)GetLastError());
        return 4;
    }
    if (start(&a) != 0) {
        fprintf(stderr, "exit_host: exit_start failed\n");
        return 4;
    }
    return 0;   /* exit -> ExitProcess: other threads end, then DLL_PROCESS_DETACH */
}
