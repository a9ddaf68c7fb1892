/* setup_ops.h - the installers' service, file and PATH chores in asyncipc-secure.exe
 * (setup_ops.c describes each command). */
#ifndef AIPC_SETUP_OPS_H
#define AIPC_SETUP_OPS_H

#include <wchar.h>

/* The usage lines of these commands. */
extern const char aipc_setup_ops_usage[];
/* Runs the command argv[1..] if it is one of these; its exit code, or -1 if it is not. */
int aipc_setup_ops_main(int argc, wchar_t **argv);

#endif
