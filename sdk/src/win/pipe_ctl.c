/*
 * pipe_ctl.c - a point-to-point connection's control frames (frames with a meta): the
 * negotiation of shared memory (docs/design/shared-memory.md section 3, docs/protocol.md
 * "Point to point").
 *
 * Nobody speaks first with a meta frame to a peer that has not shown it takes them (an older
 * SDK closes the pipe on meta_len != 0), so the capability bit is the pipe's type:
 *   - a server with AIPC_SHM_AUTO creates its instance PIPE_TYPE_MESSAGE (read and written in
 *     byte mode, win_listen.c) and its decoder accepts metas (up to CTL_MAX_META) from the first
 *     byte; with AIPC_SHM_OFF it is a byte pipe and takes no meta, as before;
 *   - a client with AIPC_SHM_AUTO that finds a message-type pipe (win_dial.c) writes the hello
 *     {"op":"p2p","v":1,"shm":{"v":1}} as its very first frame (before anything Send queued) and
 *     accepts metas from then on; on a byte pipe, or with AIPC_SHM_OFF, it sends no hello and
 *     stays inline (an old client on a new server looks the same);
 *   - the server answers {"op":"p2p","v":1,"shm":{"v":1}} (accepted) or {"op":"p2p","v":1}
 *     (declined) in its FIFO, after whatever it queued before. It may use shared memory once
 *     the answer is queued, the client once it has read the answer.
 * After a yes, the shared-memory frames (proto/shm.h: shm_seg, shm_done, shm_unseg, and the
 * descriptors {"shm":[seg,off,len]}) go to shm_link.c. A hello that is not the first frame, a
 * second answer, an answer the client did not ask for, a shared-memory frame without a yes, or
 * a meta that does not parse is a protocol error (the connection closes, like a bad frame).
 * The server learns the client's identity (for its segments' DACL) while handling the hello,
 * the frame just read (impersonation needs one); without it, it declines.
 * Thread: the engine's I/O thread.
 */
#include "pipe_internal.h"
#include "win_ident.h"

#include <stdlib.h>
#include <string.h>

#define CTL_MAX_META 4096u

static const char HELLO_SHM[] = "{\"op\":\"p2p\",\"v\":1,\"shm\":{\"v\":1}}";
static const char ANSWER_NO[] = "{\"op\":\"p2p\",\"v\":1}";

/* Learns who the peer is, for shm_link (the principal our segments are granted to): the server
 * the client by impersonation (so after its first frame was read), as the broker learns its
 * clients (win_ident.c); the client the pipe's owner, which the dial already checked. 0 or the
 * Win32 error (shared memory is then not used with this peer). */
static DWORD identify(aipc__pipe *p)
{
    PSID peer = NULL;
    DWORD integrity = 0, e = 0;
    if (p->role == PIPE_SERVER) {
        aipc__win_ident id;
        char why[160] = "";
        ULONG pid = 0;
        GetNamedPipeClientProcessId(p->h, &pid);
        if (aipc__win_ident_capture(p->h, pid, 3, &id, why, sizeof why) == 0) {
            peer = id.user;                    /* taken over: not freed with the rest */
            integrity = id.integrity;
            id.user = NULL;
            aipc__win_ident_free(&id);
        } else {
            e = ERROR_ACCESS_DENIED;
            aipc_log(AIPC_LOG_WARN, "pipe(%s) %s: %s", p->eng->name,
                     p->name_utf8 ? p->name_utf8 : "?", why);
        }
    } else {
        e = aipc__sec_pipe_owner(p->h, &peer);   /* the owner the dial already checked */
    }
    if (e)
        aipc_log(AIPC_LOG_WARN, "pipe(%s) %s: cannot learn the peer's identity (%lu): no shared "
                 "memory with it", p->eng->name, p->name_utf8 ? p->name_utf8 : "?", e);
    aipc__shm_link_set_peer(&p->shm, e ? NULL : peer, integrity, 0, 0, p->name_utf8);
    if (e)
        free(peer);
    return e;
}

void aipc__pipe_ctl_begin(aipc__pipe *p, int *hello)
{
    *hello = 0;
    p->frames_in = 0;
    InterlockedExchange(&p->shm_on, 0);
    if (p->shm_mode != AIPC_SHM_AUTO) {
        p->ctl = AIPC__CTL_NONE;
    } else if (p->role == PIPE_SERVER) {
        p->ctl = AIPC__CTL_WAIT_HELLO;
    } else if (p->peer_msg) {
        p->ctl = AIPC__CTL_WAIT_ANSWER;
        *hello = 1;
    } else {
        p->ctl = AIPC__CTL_NONE;     /* a byte pipe: an older server, or one with shm off */
    }
    p->dec.max_meta = p->ctl == AIPC__CTL_NONE ? 0 : CTL_MAX_META;
}

const char *aipc__pipe_ctl_hello(size_t *len)
{
    *len = sizeof HELLO_SHM - 1;
    return HELLO_SHM;
}

void aipc__pipe_ctl_reset(aipc__pipe *p)
{
    p->ctl = AIPC__CTL_NONE;
    p->frames_in = 0;
    InterlockedExchange(&p->shm_on, 0);
}

int aipc__pipe_ctl_frame(aipc__pipe *p, const uint8_t *meta, uint32_t meta_len,
                         const uint8_t *payload, uint32_t payload_len)
{
    (void)payload;
    uint64_t nth = p->frames_in++;
    if (p->ctl == AIPC__CTL_NONE || payload_len != 0)
        return AIPC_EPROTO;          /* (the decoder refuses metas without negotiation) */
    aipc_shm_ctl c;
    aipc_shm_ref refs[AIPC_SHM_DONE_MAX];
    int r = aipc_shm_ctl_parse((const char *)meta, meta_len, &c, refs, AIPC_SHM_DONE_MAX);
    if (r < 0)
        return AIPC_EPROTO;
    if (r == 1 && c.op == AIPC_SHM_OP_HELLO) {
        if (p->role == PIPE_SERVER && p->ctl == AIPC__CTL_WAIT_HELLO && nth == 0) {
            /* The client's identity is learnt now, from the frame just read: without it no
             * segment could name it, so the answer declines. */
            int yes = c.shm_v >= 1 && identify(p) == 0;
            int rc = yes ? aipc__pipe_queue_ctl(p, HELLO_SHM, sizeof HELLO_SHM - 1)
                         : aipc__pipe_queue_ctl(p, ANSWER_NO, sizeof ANSWER_NO - 1);
            if (rc != 0)
                return rc;
            p->ctl = AIPC__CTL_DONE;
            if (yes) {
                InterlockedExchange(&p->shm_on, 1);
                aipc__shm_link_start(&p->shm);   /* the first segment goes with the next write */
            }
            return 0;
        }
        if (p->role == PIPE_CLIENT && p->ctl == AIPC__CTL_WAIT_ANSWER) {
            p->ctl = AIPC__CTL_DONE;
            if (c.shm_v >= 1 && identify(p) == 0) {
                InterlockedExchange(&p->shm_on, 1);
                aipc__shm_link_start(&p->shm);
                aipc__pipe_poke(p);        /* announce our first segment */
            }
            return 0;
        }
        return AIPC_EPROTO;
    }
    if (p->ctl != AIPC__CTL_DONE || !p->shm_on)
        return AIPC_EPROTO;          /* shared-memory frames only after a yes */
    if (r == 1)
        return aipc__shm_link_ctl(&p->shm, &c, refs);
    aipc_shm_desc d;
    uint8_t *data;
    aipc__shm_rx *rx;
    if (aipc_shm_desc_find((const char *)meta, meta_len, &d) != 1 ||
        aipc__shm_link_resolve(&p->shm, &d, &data, &rx) != 0 || data[d.len] != 0)
        return AIPC_EPROTO;          /* no NUL after the payload in our view: as a bad bound */
    if (p->closed)
        return 1;
    aipc__pipe_ev_recv_shm(p, data, d.len, rx, d.seg, d.off);
    return p->state == AIPC_ST_CONNECTED ? 0 : 1;
}

void aipc__pipe_ctl_plain(aipc__pipe *p)
{
    p->frames_in++;
    if (p->role == PIPE_SERVER && p->ctl == AIPC__CTL_WAIT_HELLO)
        p->ctl = AIPC__CTL_DONE;     /* no hello first: an old or raw client, or shm off */
}
