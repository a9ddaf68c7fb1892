/* identity.c - a client's identity as the engine learnt it at connect (broker.h), and the
 * `from` object stamped on everything the client sends:
 *   {"id":7,"name":"ui","pid":1234,"sid":"S-1-5-21-...","session":1,"integrity":8192}
 * (the last three only when the engine gave an identity). */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <stdlib.h>
#include <string.h>

bool aipc_sid_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 5 || n > AIPC_SID_MAX || memcmp(s, "S-1-", 4) != 0)
        return false;
    unsigned parts = 0;
    for (size_t i = 4; i <= n; i++) {
        size_t digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            digits++;
        }
        if (digits == 0 || digits > 15 || ++parts > 16)   /* authority + 15 sub-authorities */
            return false;
        if (i < n && s[i] != '-')
            return false;
        if (i == n - 1)                                  /* a trailing '-' */
            return false;
    }
    return true;
}

void aipc__identity_free(aipc_client *c)
{
    free(c->ident_mem);
    free(c->ident_groups);
    c->ident_mem = NULL;
    c->ident_groups = NULL;
    c->has_ident = false;
}

/* Copies every string into one block; the groups array points into it. */
int aipc_client_set_identity(aipc_client *cl, const aipc_identity *id)
{
    if (cl->state == AIPC_CL_CLOSING && !cl->has_ident && id)
        return 0;                         /* refused at attach (connlim.c): goes anyway */
    if (!id || cl->state != AIPC_CL_NEW || cl->has_ident || !id->user_sid ||
        !aipc_sid_valid(id->user_sid) || id->ngroups > AIPC_IDENTITY_MAX_GROUPS ||
        (id->ngroups && !id->groups))
        return AIPC_EINVAL;
    size_t total = strlen(id->user_sid) + 1;
    for (size_t i = 0; i < id->ngroups; i++) {
        if (!id->groups[i].sid || !aipc_sid_valid(id->groups[i].sid))
            return AIPC_EINVAL;
        total += strlen(id->groups[i].sid) + 1;
    }
    char *mem = malloc(total);
    aipc_identity_group *g = id->ngroups ? calloc(id->ngroups, sizeof *g) : NULL;
    if (!mem || (id->ngroups && !g)) {
        free(mem);
        free(g);
        return AIPC_ENOMEM;
    }
    char *w = mem;
    size_t l = strlen(id->user_sid) + 1;
    memcpy(w, id->user_sid, l);
    cl->ident.user_sid = w;
    w += l;
    for (size_t i = 0; i < id->ngroups; i++) {
        l = strlen(id->groups[i].sid) + 1;
        memcpy(w, id->groups[i].sid, l);
        g[i].sid = w;
        g[i].deny_only = id->groups[i].deny_only != 0;
        w += l;
    }
    cl->ident.session = id->session;
    cl->ident.integrity = id->integrity;
    cl->ident.groups = g;
    cl->ident.ngroups = id->ngroups;
    cl->ident_mem = mem;
    cl->ident_groups = g;
    cl->has_ident = true;
    return aipc_connlim_identity(cl->b, cl);
}

const aipc_identity *aipc_client_identity(const aipc_client *cl)
{
    return cl->has_ident ? &cl->ident : NULL;
}

/* Builds the `from` object (precomputed once, at hello). */
int aipc__make_from(aipc_client *c)
{
    aipc_sbuf s = {0};
    aipc_sbuf_lit(&s, "{\"id\":");
    aipc_sbuf_u64(&s, c->id);
    aipc_sbuf_lit(&s, ",\"name\":");
    if (c->name_len)
        aipc_sbuf_jstr(&s, c->name, c->name_len);
    else
        aipc_sbuf_lit(&s, "null");
    aipc_sbuf_lit(&s, ",\"pid\":");
    aipc_sbuf_u64(&s, c->pid);
    if (c->has_ident) {
        aipc_sbuf_lit(&s, ",\"sid\":");
        aipc_sbuf_jstr(&s, c->ident.user_sid, strlen(c->ident.user_sid));
        aipc_sbuf_lit(&s, ",\"session\":");
        aipc_sbuf_u64(&s, c->ident.session);
        aipc_sbuf_lit(&s, ",\"integrity\":");
        aipc_sbuf_u64(&s, c->ident.integrity);
    }
    aipc_sbuf_lit(&s, "}");
    if (s.oom) {
        aipc_sbuf_free(&s);
        return AIPC_ENOMEM;
    }
    c->from = s.p;
    c->from_len = (uint32_t)s.len;
    return 0;
}
