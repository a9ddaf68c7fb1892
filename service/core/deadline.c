/* deadline.c - deadline queues: intrusive doubly-linked lists kept in due order by appending
 * (each queue has a single timeout, so later entries are never due earlier). */
#include "internal.h"

void aipc_dq_push(aipc_dq *q, aipc_dnode *n, uint64_t due)
{
    aipc_dq_remove(q, n);
    n->due = due;
    n->next = NULL;
    n->prev = q->tail;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    n->on = true;
}

void aipc_dq_remove(aipc_dq *q, aipc_dnode *n)
{
    if (!n->on)
        return;
    if (n->prev)
        n->prev->next = n->next;
    else
        q->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    n->prev = n->next = NULL;
    n->on = false;
}

aipc_dnode *aipc_dq_due(const aipc_dq *q, uint64_t now)
{
    return q->head && q->head->due <= now ? q->head : NULL;
}
