/*
 * path_guard.h - service mode: the files a broker running as a service account reads and writes
 * must not be under a non-administrator's control.
 *
 *   config: the file and its folder (when they exist) pass the file audit of sd_audit.h (owner
 *           and DACL) and are not reparse points (a junction or link would redirect the read);
 *   log:    no component of the path below the volume root is a reparse point (a junction would
 *           make the service create or append to a file anywhere); missing folders are created
 *           with a protected DACL (SYSTEM, Administrators, the broker's account), except the
 *           data folder %ProgramData%\AsyncIPC (never created: the installers do) and its
 *           `logs` (created with the installers' descriptor); then the walk is repeated, every
 *           folder above the log's passes the parent check, and the log's folder and the log
 *           file (when it exists) pass the file audit.
 * Every refusal is a one-line message naming the file and the reason. Console mode (`run`)
 * does not call these: a console broker runs with its user's own rights.
 * Thread: any (start-up).
 */
#ifndef AIPC_BROKER_PATH_GUARD_H
#define AIPC_BROKER_PATH_GUARD_H

#include <windows.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The config file, opened once with FILE_FLAG_OPEN_REPARSE_POINT: refused when it is a
 * reparse point, a folder, has more than one name, was reached by another path than
 * config_path (GetFinalPathNameByHandle: a parent swapped for a junction), or fails the file
 * audit (GetSecurityInfo on that handle); its folder must pass the file audit, and every folder
 * above it the parent check (plain folders, trusted owners, nobody else may delete, delete
 * children, change permissions or owner). The contents are read through the same handle:
 * 0 with *text (malloc'd, NUL-terminated), or 0 with *missing = 1 when the file does not exist
 * (ERROR_FILE_NOT_FOUND / ERROR_PATH_NOT_FOUND only: access denied is a refusal), or -1 with
 * the reason in err. */
int aipc__guard_config_read(const wchar_t *config_path, char **text, int *missing, char *err,
                           size_t errlen);
/* The same checks, contents discarded. 0, or -1 with the reason in err. */
int aipc__guard_config(const wchar_t *config_path, char *err, size_t errlen);
/* 0, or -1 with the reason in err. Creates the log's missing folders. */
int aipc__guard_log(const char *log_path_utf8, char *err, size_t errlen);

/* The reparse-point walk of aipc__guard_log, over an attribute lookup (GetFileAttributesW in
 * the broker, a table in tests): the path itself and every parent below the volume root
 * ("C:\", "\\server\share\"). 0, or -1 with the first reparse point found copied to bad
 * (also -1 for a path longer than 3 * MAX_PATH). */
int aipc__guard_reparse_walk(const wchar_t *path, DWORD (*attrs)(const wchar_t *, void *),
                            void *ctx, wchar_t *bad, size_t badcap);

#ifdef __cplusplus
}
#endif
#endif
