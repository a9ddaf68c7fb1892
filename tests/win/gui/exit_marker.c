/* exit_marker.c - progress lines of the exit helper DLLs (see exit_dll.h). Plain kernel32 file
 * I/O: it is called inside DllMain(DLL_PROCESS_DETACH) too. */
#include "exit_dll.h"

#include <string.h>

static char g_path[MAX_PATH];

void exit_marker_open(const char *path)
{
    size_t n = strlen(path);
    if (n >= sizeof g_path)
        n = sizeof g_path - 1;
    memcpy(g_path, path, n);
    g_path[n] = 0;
}

void exit_marker(const char *line)
{
    if (!g_path[0])
        return;
    HANDLE h = CreateFileA(g_path, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                           OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return;
    DWORD n = 0;
    WriteFile(h, line, (DWORD)strlen(line), &n, NULL);
    CloseHandle(h);
}
