/* rules_table.h - the protocol's rules as one table of cases with their verdicts: topics,
 * filters, client names, pipe names (lengths at and over each limit, control characters, bad
 * UTF-8, '$' topics, '+'/'#' placement) and filter/topic matching pairs. The SDK and the broker
 * must both give every row's verdict: tests/native/test_rules_agree.c runs it against the SDK's
 * portable checks and the broker core. Header-only data (each suite is its own executable). */
#ifndef AIPC_TEST_RULES_TABLE_H
#define AIPC_TEST_RULES_TABLE_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef enum { R_TOPIC, R_FILTER, R_NAME, R_PIPE } rule_kind;

/* A case's text is head + body repeated reps times + tail. */
typedef struct rule_case {
    rule_kind kind;
    const char *head, *body;
    unsigned reps;
    const char *tail;
    bool ok;
    const char *canon;        /* R_PIPE accepted: the canonical full name (NULL: not compared) */
} rule_case;

#define ONE(kind, text, ok) {kind, text, "", 0, "", ok, NULL}
#define PIPE_OK(text, canon) {R_PIPE, text, "", 0, "", true, canon}
#define PX "\\\\.\\pipe\\"
#define EMOJI "\xf0\x9f\x98\x80"       /* U+1F600: 4 bytes, 2 UTF-16 units */

static const rule_case rule_cases[] = {
    /* publication topics */
    ONE(R_TOPIC, "a", true), ONE(R_TOPIC, "a/b", true), ONE(R_TOPIC, "a//b/", true),
    ONE(R_TOPIC, "/", true), ONE(R_TOPIC, "a b/c", true), ONE(R_TOPIC, "a/$x", true),
    ONE(R_TOPIC, "\xc3\xa9/\xc3\xbc", true), ONE(R_TOPIC, "\xe6\x97\xa5/" EMOJI, true),
    ONE(R_TOPIC, "a\x7f", true), ONE(R_TOPIC, "\"q\"/\\", true),
    {R_TOPIC, "", "a", 32000, "", true, NULL},            /* at the limit */
    {R_TOPIC, "", "a", 32001, "", false, NULL},           /* one over */
    {R_TOPIC, "", "\xc3\xa9", 16000, "", true, NULL},     /* 32000 bytes of 2-byte characters */
    {R_TOPIC, "", "\xc3\xa9", 16000, "a", false, NULL},
    {R_TOPIC, "", "\"", 32000, "", true, NULL},           /* escaped, still fits a meta */
    {R_TOPIC, "", "a/", 255, "a", true, NULL},            /* 256 levels */
    {R_TOPIC, "", "a/", 256, "a", false, NULL},           /* 257 levels */
    ONE(R_TOPIC, "", false), ONE(R_TOPIC, "$bus/joined", false), ONE(R_TOPIC, "$x", false),
    ONE(R_TOPIC, "a/+", false), ONE(R_TOPIC, "+", false), ONE(R_TOPIC, "#", false),
    ONE(R_TOPIC, "a/#", false), ONE(R_TOPIC, "a+b", false), ONE(R_TOPIC, "a#", false),
    ONE(R_TOPIC, "a\x01", false), ONE(R_TOPIC, "\x1f", false), ONE(R_TOPIC, "a\nb", false),
    ONE(R_TOPIC, "a\tb", false), ONE(R_TOPIC, "\xc3", false), ONE(R_TOPIC, "\xc3(", false),
    ONE(R_TOPIC, "\xc0\xaf", false), ONE(R_TOPIC, "\xed\xa0\x80", false),
    ONE(R_TOPIC, "\xf4\x90\x80\x80", false), ONE(R_TOPIC, "a\xff", false),
    ONE(R_TOPIC, "\xe0\x80\xaf", false),
    /* subscription filters */
    ONE(R_FILTER, "a", true), ONE(R_FILTER, "#", true), ONE(R_FILTER, "+", true),
    ONE(R_FILTER, "a/+/c", true), ONE(R_FILTER, "a/#", true), ONE(R_FILTER, "+/+", true),
    ONE(R_FILTER, "$bus/+", true), ONE(R_FILTER, "$bus/#", true), ONE(R_FILTER, "$x", true),
    ONE(R_FILTER, "/+", true), ONE(R_FILTER, "+/", true), ONE(R_FILTER, "a//#", true),
    ONE(R_FILTER, "//", true), ONE(R_FILTER, "\xc3\xa9/+", true), ONE(R_FILTER, "+/#", true),
    {R_FILTER, "", "a", 32000, "", true, NULL},
    {R_FILTER, "", "a", 32001, "", false, NULL},
    {R_FILTER, "", "+/", 255, "#", true, NULL},           /* 256 levels */
    {R_FILTER, "", "+/", 256, "#", false, NULL},          /* 257 levels */
    ONE(R_FILTER, "", false), ONE(R_FILTER, "a/#/c", false), ONE(R_FILTER, "#/a", false),
    ONE(R_FILTER, "a+/c", false), ONE(R_FILTER, "a/b#", false), ONE(R_FILTER, "a/+b", false),
    ONE(R_FILTER, "++", false), ONE(R_FILTER, "##", false), ONE(R_FILTER, "a\x01", false),
    ONE(R_FILTER, "+\n", false), ONE(R_FILTER, "\xc3", false), ONE(R_FILTER, "a/\xed\xbf\xbf", false),
    /* client names (hello) */
    ONE(R_NAME, "ui", true), ONE(R_NAME, "a.b_c-9", true), ONE(R_NAME, "A", true),
    ONE(R_NAME, "123", true), ONE(R_NAME, ".", true),
    {R_NAME, "", "x", 128, "", true, NULL},
    {R_NAME, "", "x", 129, "", false, NULL},
    ONE(R_NAME, "", false), ONE(R_NAME, "a b", false), ONE(R_NAME, "a/b", false),
    ONE(R_NAME, "\xc3\xa9", false), ONE(R_NAME, "a\x01", false), ONE(R_NAME, "a*", false),
    ONE(R_NAME, "a+", false), ONE(R_NAME, "$bus", false), ONE(R_NAME, "a\\b", false),
    /* pipe names: "NAME" or "\\.\pipe\NAME" in any ASCII case; canonical "\\.\pipe\NAME" */
    PIPE_OK("asyncipc.broker", PX "asyncipc.broker"), PIPE_OK(PX "x.y", PX "x.y"),
    PIPE_OK("\\\\.\\PIPE\\my.bus", PX "my.bus"), PIPE_OK("\\\\.\\Pipe\\a", PX "a"),
    PIPE_OK("a/b", PX "a/b"), PIPE_OK("/x", PX "/x"), PIPE_OK("\xc3\xa9", PX "\xc3\xa9"),
    PIPE_OK("A b", PX "A b"),
    {R_PIPE, "", "p", 247, "", true, NULL},               /* 256 UTF-16 characters in all */
    {R_PIPE, PX, "p", 247, "", true, NULL},
    {R_PIPE, "", "\xe6\x97\xa5", 247, "", true, NULL},    /* 3-byte characters: 1 unit each */
    {R_PIPE, "", EMOJI, 123, "p", true, NULL},            /* 2 units each: 247 */
    {R_PIPE, "", "p", 248, "", false, NULL},
    {R_PIPE, PX, "p", 248, "", false, NULL},
    {R_PIPE, "", EMOJI, 124, "", false, NULL},            /* 248 units */
    ONE(R_PIPE, "", false), ONE(R_PIPE, PX, false), ONE(R_PIPE, "a\\b", false),
    ONE(R_PIPE, PX "a\\b", false), ONE(R_PIPE, "\\\\server\\pipe\\x", false),
    ONE(R_PIPE, "\\x", false), ONE(R_PIPE, "\\\\.\\pipe", false),
    ONE(R_PIPE, "\\\\?\\pipe\\x", false), ONE(R_PIPE, "a\x01", false),
    ONE(R_PIPE, "\t", false), ONE(R_PIPE, "\xc3", false), ONE(R_PIPE, PX "\xed\xa0\x80", false),
};
#define N_RULE_CASES ((int)(sizeof rule_cases / sizeof rule_cases[0]))

/* The case's text (malloc'd, NUL-terminated). */
static inline char *rule_text(const rule_case *r, size_t *len)
{
    size_t hl = strlen(r->head), bl = strlen(r->body), tl = strlen(r->tail);
    size_t n = hl + bl * r->reps + tl;
    char *s = malloc(n + 1), *p = s;
    memcpy(p, r->head, hl);
    p += hl;
    for (unsigned i = 0; i < r->reps; i++, p += bl)
        memcpy(p, r->body, bl);
    memcpy(p, r->tail, tl + 1);
    if (len)
        *len = n;
    return s;
}

static inline const char *rule_kind_name(rule_kind k)
{
    return k == R_TOPIC ? "topic" : k == R_FILTER ? "filter" : k == R_NAME ? "name" : "pipe";
}

/* Filter/topic pairs. Topics starting with '$' are the broker's own ($bus/joined, $bus/left):
 * clients cannot publish them. */
typedef struct match_row {
    const char *filter, *topic;
    bool match;
} match_row;

static const match_row match_rows[] = {
    {"a/b", "a/b", true},          {"a/b", "a/c", false},         {"a/+", "a/b", true},
    {"a/+", "a/b/c", false},       {"a/+", "a", false},           {"a/+", "a/", true},
    {"a/#", "a", true},            {"a/#", "a/", true},           {"a/#", "a/b/c", true},
    {"a/#", "ab", false},          {"#", "a", true},              {"#", "/", true},
    {"#", "a/b/c", true},          {"+", "a", true},              {"+", "/a", false},
    {"/+", "/a", true},            {"+/+", "/a", true},           {"+/+", "a/b", true},
    {"+/#", "a", true},            {"a/+/#", "a/b", true},        {"+/b/#", "a/b/c/d", true},
    {"a/+/c", "a//c", true},       {"a/+/c", "a/x/y/c", false},   {"a//b", "a//b", true},
    {"//", "//", true},            {"+/+/+", "//", true},         {"A/b", "a/b", false},
    {"a/b", "a/b/", false},        {"a/b/", "a/b", false},        {"a", "ab", false},
    {"ab", "a", false},            {"a/+", "a/$x", true},         {"a/#", "a/$x", true},
    {"\xc3\xa9/+", "\xc3\xa9/x", true},                            {"a b/c", "a b/c", true},
    {"#", "$bus/joined", false},   {"+/joined", "$bus/joined", false},
    {"+/#", "$bus/left", false},   {"+", "$bus/left", false},     {"$bus/#", "$bus/joined", true},
    {"$bus/+", "$bus/left", true}, {"$bus/joined", "$bus/joined", true},
    {"$bus/joined", "$bus/left", false},                           {"$bus", "$bus/left", false},
    {"$bus/#", "$bus/left", true}, {"$bus/+/#", "$bus/left", true},
};
#define N_MATCH_ROWS ((int)(sizeof match_rows / sizeof match_rows[0]))

#endif
