/*
 * msvc_consumer.c - a program built the Visual Studio way against the INSTALLED asyncipc.lib:
 * compiled by clang in MSVC mode (x86_64-pc-windows-msvc) and linked by lld-link
 * (run_installer_test.sh, msvc_consumer). Linux has no MSVC C runtime, so it is freestanding: its
 * own entry point `start`, three kernel32 imports, no C library calls.
 * It takes the address of every function asyncipc.h declares (aipc_exports.h, generated from the
 * installed header: the link fails if asyncipc.lib lacks one), checks that each resolved, and
 * calls a few through the import library. Prints PASSED and exits 0 when all is well.
 */
#include <asyncipc/asyncipc.h>

#include "aipc_exports.h"

__declspec(dllimport) void *__stdcall GetStdHandle(unsigned long which);
__declspec(dllimport) int __stdcall WriteFile(void *h, const void *buf, unsigned long len,
                                              unsigned long *written, void *overlapped);
__declspec(dllimport) __declspec(noreturn) void __stdcall ExitProcess(unsigned code);

static void out(const char *s)
{
    unsigned long len = 0, written = 0;
    while (s[len])
        len++;
    WriteFile(GetStdHandle((unsigned long)-11), s, len, &written, 0);   /* STD_OUTPUT_HANDLE */
}

void start(void)
{
    int bad = 0;
#define AIPC_ADDRESS(name) (const void *)&name,
    const void *const every[] = { AIPC_EXPORTS(AIPC_ADDRESS) };
    for (unsigned i = 0; i < sizeof every / sizeof every[0]; i++)
        bad += every[i] == 0;
    out("asyncipc.dll ");
    out(aipc_version_string());
    out(", headers " AIPC_VERSION_STRING "\n");
    if (aipc_version() != AIPC_VERSION) {
        out("FAIL: the DLL's version is not the header's\n");
        bad++;
    }
    const char *text = aipc_strerror(AIPC_EINVAL);
    out("aipc_strerror(AIPC_EINVAL): ");
    out(text ? text : "(null)");
    out("\n");
    if (!text || !text[0])
        bad++;
    aipc_dispatcher *d = 0;
    if (aipc_dispatcher_new(AIPC_DISPATCH_MANUAL, &d) == 0 && d) {
        aipc_dispatcher_free(d);
        out("aipc_dispatcher_new/free: ok\n");
    } else {
        out("FAIL: aipc_dispatcher_new\n");
        bad++;
    }
    out(bad ? "FAILED\n" : "PASSED\n");
    ExitProcess(bad ? 1u : 0u);
}
