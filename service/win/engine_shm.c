/* engine_shm.c - the broker's shared-memory backend on Win32 (engine_shm.h). */
#include "engine_shm.h"

#include <windows.h>

#include <sddl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "asyncipc/asyncipc.h"
#include "broker.h"
#include "engine_internal.h"
#include "secdesc_section.h"
#include "shm_seg.h"

#define SHM_WARN_MS 60000u      /* at most one WARN per minute; the rest at DEBUG */

/* Logs one failure: WARN for the first and once per SHM_WARN_MS (saying how many went to
 * DEBUG meanwhile), DEBUG otherwise. */
static void log_failure(eng_shm *s, const char *fmt, ...)
{
    char line[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->failures++;
    uint64_t now = GetTickCount64();
    if (s->warned_at && now - s->warned_at < SHM_WARN_MS) {
        s->quiet++;
        aipc_log(AIPC_LOG_DEBUG, "broker: %s", line);
        return;
    }
    if (s->quiet)
        aipc_log(AIPC_LOG_WARN, "broker: %lu more shared-memory failures in the last %u s "
                 "(logged at debug)", s->quiet, SHM_WARN_MS / 1000u);
    s->warned_at = now ? now : 1;
    s->quiet = 0;
    aipc_log(AIPC_LOG_WARN, "broker: %s", line);
}

static void *be_create(void *ctx, uint32_t size, const char *const *readers, size_t n,
                       uint32_t min_integrity, uint8_t **base, char *name, uint32_t *session)
{
    eng_shm *s = ctx;
    /* Never label below the readers' level: a section labelled at the broker's own lower level
     * would let every process of those users at that level read payloads addressed to their
     * higher-level clients only (Windows refuses a label above the creator's). Inline instead. */
    uint32_t want = min_integrity ? min_integrity : AIPC__SEC_IL_MEDIUM;
    if (aipc__sec_section_label(want, aipc__shm_seg_own_integrity()) != want) {
        log_failure(s, "cannot label a shared-memory segment at the readers' integrity level "
                    "0x%lx (above the broker's own): those deliveries go inline",
                    (unsigned long)want);
        return NULL;
    }
    aipc__shm_seg *seg = calloc(1, sizeof *seg);
    int rc = seg ? aipc__shm_seg_create_for(seg, size, readers, n, min_integrity, name,
                                            AIPC_SHM_NAME_BUF)
                 : AIPC_ENOMEM;
    if (rc != 0) {
        log_failure(s, "cannot create a shared-memory segment of %lu bytes for %lu reader(s) "
                    "(first %s): %s (system error %lu); those deliveries go inline",
                    (unsigned long)size, (unsigned long)n, n && readers ? readers[0] : "-",
                    aipc_strerror(rc), seg ? (unsigned long)seg->syserr : 0ul);
        free(seg);
        return NULL;
    }
    s->created++;
    *base = seg->view;
    *session = (uint32_t)seg->session;
    return seg;
}

static const char *open_code(int rc)
{
    switch (rc) {
    case AIPC_EACCESS:
        return "access_denied";
    case AIPC_ENOTFOUND:
        return "not_found";
    case AIPC_EUNTRUSTED:
        return "untrusted_owner";
    case AIPC_ENOMEM:
        return "no_memory";
    default:
        return "bad_segment";      /* bad name, unfit section, any other failure */
    }
}

void *eng_shm_open_as(eng_shm *s, uint32_t session, const char *user_sid, const char *name,
                      uint32_t size, unsigned long pid, const uint8_t **base, const char **code)
{
    PSID owner = NULL;
    aipc__shm_seg *seg = NULL;
    int rc;
    if (!user_sid || !ConvertStringSidToSidA(user_sid, &owner))
        rc = AIPC_EACCESS;                 /* no identity: nothing it could prove it owns */
    else if (!(seg = calloc(1, sizeof *seg)))
        rc = AIPC_ENOMEM;
    else
        rc = aipc__shm_seg_open_in(seg, (DWORD)session, name, size, owner);
    if (owner)
        LocalFree(owner);
    if (rc != 0) {
        *code = open_code(rc);
        log_failure(s, "cannot map segment \"%.64s\" (%lu bytes, session %lu) of client pid %lu "
                    "(%s): %s (system error %lu); its messages must come inline",
                    name ? name : "", (unsigned long)size, (unsigned long)session, pid,
                    user_sid ? user_sid : "no identity", *code,
                    seg ? (unsigned long)seg->syserr : 0ul);
        free(seg);
        return NULL;
    }
    s->opened++;
    *base = seg->view;
    return seg;
}

static void *be_open(void *ctx, aipc_conn *conn, const char *name, uint32_t size,
                     const uint8_t **base, const char **code)
{
    aipc_wconn *w = (aipc_wconn *)conn;     /* engine.h: a connection begins with its aipc_conn */
    const aipc_identity *id = w->user ? aipc_client_identity((const aipc_client *)w->user) : NULL;
    return eng_shm_open_as(ctx, id ? id->session : 0, id ? id->user_sid : NULL, name, size, w->pid,
                           base, code);
}

static void be_close(void *ctx, void *seg)
{
    eng_shm *s = ctx;
    if (!seg)
        return;
    aipc__shm_seg_close(seg);
    free(seg);
    s->closed++;
}

void eng_shm_backend(aipc_shm_backend *be, eng_shm *s)
{
    be->ctx = s;
    be->create = be_create;
    be->open = be_open;
    be->close = be_close;
}
