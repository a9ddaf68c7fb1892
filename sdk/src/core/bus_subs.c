/* bus_subs.c - the client's subscription set, re-sent after each reconnect (portable). */
#include "bus_core.h"

#include <stdlib.h>
#include <string.h>

void aipc__bus_subs_init(aipc__bus_subs *s)
{
    memset(s, 0, sizeof *s);
}

void aipc__bus_subs_free(aipc__bus_subs *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->filters[i]);
    free(s->filters);
    memset(s, 0, sizeof *s);
}

/* Index of filter or -1 (sets are small: a linear scan keeps insertion order for resubscribe). */
static long find(const aipc__bus_subs *s, const char *filter)
{
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->filters[i], filter) == 0)
            return (long)i;
    return -1;
}

int aipc__bus_subs_contains(const aipc__bus_subs *s, const char *filter)
{
    return find(s, filter) >= 0;
}

int aipc__bus_subs_add(aipc__bus_subs *s, const char *filter)
{
    if (find(s, filter) >= 0)
        return 0;
    if (s->count == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        char **nf = realloc(s->filters, ncap * sizeof *nf);
        if (!nf)
            return AIPC_ENOMEM;
        s->filters = nf;
        s->cap = ncap;
    }
    size_t n = strlen(filter) + 1;
    char *copy = malloc(n);
    if (!copy)
        return AIPC_ENOMEM;
    memcpy(copy, filter, n);
    s->filters[s->count++] = copy;
    return 1;
}

int aipc__bus_subs_remove(aipc__bus_subs *s, const char *filter)
{
    long i = find(s, filter);
    if (i < 0)
        return 0;
    free(s->filters[i]);
    memmove(&s->filters[i], &s->filters[i + 1], (s->count - (size_t)i - 1) * sizeof *s->filters);
    s->count--;
    return 1;
}

int aipc__bus_subs_match(const aipc__bus_subs *s, const char *topic)
{
    for (size_t i = 0; i < s->count; i++)
        if (aipc__bus_topic_match(s->filters[i], topic))
            return 1;
    return 0;
}
