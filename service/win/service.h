/*
 * service.h - SCM glue and service control commands for asyncipc-broker.exe.
 */
#ifndef AIPC_BROKER_SERVICE_H
#define AIPC_BROKER_SERVICE_H

#include <windows.h>

#include "broker_app.h"

#define AIPC_SERVICE_NAME    L"AsyncIPCBroker"
#define AIPC_SERVICE_DISPLAY L"AsyncIPC Broker"

/* Connects to the SCM and runs the service until it stops. Returns 0, or -1 with *err set
 * (ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: not started by the SCM). */
int aipc__service_dispatch(const aipc__broker_opts *o, DWORD *err);
/* ServiceMain's arguments are the service START arguments (anyone with SERVICE_START chooses
 * them): any beyond argv[0] (the service name) are refused. 0, or -1 with the reason. */
int aipc__service_start_args_check(DWORD argc, const wchar_t *const *argv, char *why,
                                  size_t whylen);

/* Control commands; each returns a process exit code and prints one line. */
int aipc__service_install(const wchar_t *config, const wchar_t *start);
int aipc__service_uninstall(void);
int aipc__service_start(void);
int aipc__service_stop(void);
int aipc__service_status(void);

#endif
