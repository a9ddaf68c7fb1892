/*
 * shm.h - the shared-memory wire forms (portable, pure functions, any thread): descriptors,
 * segment names and the control metas. docs/design/shared-memory.md sections 4 and 7.
 *
 * Parsers take one frame's meta (not NUL-terminated) and accept strict JSON only (shm_json.h:
 * RFC 8259 without NUL characters or lone surrogates); they never allocate and are safe on any
 * bytes (tests/fuzz/fuzz_shm_meta.c, differential against cJSON). Keys and string values are
 * compared after unescaping, as cJSON does. Unknown members are ignored; a member this module
 * reads appearing twice is malformed. Integers are plain JSON integers in 0..UINT32_MAX (no
 * sign, fraction or exponent).
 *
 * Frames (direction: creator = the side that created the segment, the sender of payloads):
 *   descriptor   {..., "shm":[seg,off,len]}     any op carrying a payload; p2p: {"shm":[...]}
 *   announce     {"op":"shm_seg","seg":S,"name":"aipc-...","size":N,"session":X,"id":I}
 *   release page the same with "rel":1 (bus client -> broker only: its release counter page,
 *                docs/protocol.md section 11 "Release page")
 *   answer       {"op":"shm_seg","re":I,"seg":S,"ok":true}  or  ...,"ok":false,"code":"..."}
 *   release      {"op":"shm_done","r":[[seg,off],...]}       1..AIPC_SHM_DONE_MAX pairs
 *   retire       {"op":"shm_unseg","seg":S}
 *   p2p hello    {"op":"p2p","v":1,"shm":{"v":1}}  (without "shm": declines shared memory)
 */
#ifndef AIPC_PROTO_SHM_H
#define AIPC_PROTO_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AIPC_SHM_V 1

/* Segment names: "aipc-<pid>-<32 lowercase hex>-<seg>", pid and seg decimal without leading
 * zeros (pid 1..UINT32_MAX, seg 0..UINT32_MAX). At most 59 bytes; a buffer of
 * AIPC_SHM_NAME_BUF holds one with its NUL. */
#define AIPC_SHM_NAME_BUF 64u
/* The longest "code" of a refusing answer ([a-z_], 1..31 bytes) and its buffer. */
#define AIPC_SHM_CODE_BUF 32u
/* Pairs per shm_done frame: 128 x "[4294967295,4294967295]," fits a 4 KiB meta. */
#define AIPC_SHM_DONE_MAX 128u

typedef struct aipc_shm_desc {
    uint32_t seg, off, len;
} aipc_shm_desc;

/* Appends `"shm":[seg,off,len]` (no braces, no leading comma, no NUL) to out; returns bytes
 * written or 0 if cap is too small. */
size_t aipc_shm_desc_put(char *out, size_t cap, const aipc_shm_desc *d);
/* Finds the top-level "shm" member holding [seg,off,len] in the JSON object meta[0..len).
 * 1 found (d filled), 0 absent (a well-formed object without "shm"), AIPC_EPROTO malformed
 * (not a strict JSON object, or "shm" twice, or "shm" not an array of three integers). */
int aipc_shm_desc_find(const char *meta, size_t len, aipc_shm_desc *d);

/* Whether name[0..len) is a valid segment name. */
bool aipc_shm_name_valid(const char *name, size_t len);
/* Writes "aipc-<pid>-<hex of rnd[16]>-<seg>" and a NUL into out; returns its length (without the
 * NUL) or 0 when pid is 0 or cap < AIPC_SHM_NAME_BUF. */
size_t aipc_shm_name_put(char *out, size_t cap, uint32_t pid, const uint8_t rnd[16], uint32_t seg);

/* Control metas. */
typedef enum aipc_shm_op {
    AIPC_SHM_OP_NONE = 0,  /* not one of these (another op, or no "op") */
    AIPC_SHM_OP_SEG,       /* announce */
    AIPC_SHM_OP_SEG_ANSWER,
    AIPC_SHM_OP_DONE,
    AIPC_SHM_OP_UNSEG,
    AIPC_SHM_OP_HELLO      /* p2p hello (either direction) */
} aipc_shm_op;

typedef struct aipc_shm_ref {
    uint32_t seg, off;
} aipc_shm_ref;

typedef struct aipc_shm_ctl {
    aipc_shm_op op;
    uint32_t seg;          /* SEG, SEG_ANSWER, UNSEG */
    uint32_t id;           /* SEG: "id"; SEG_ANSWER: "re" */
    uint32_t size;         /* SEG: > 0 */
    uint32_t session;      /* SEG */
    bool rel;              /* SEG: "rel":1 (a release page); absent: false. Any other value
                            * of "rel", or "rel" twice, is malformed */
    char name[AIPC_SHM_NAME_BUF];   /* SEG: a valid name, NUL-terminated */
    bool ok;               /* SEG_ANSWER */
    char code[AIPC_SHM_CODE_BUF];   /* SEG_ANSWER with ok false: "" or [a-z_]{1,31} */
    uint32_t v;            /* HELLO: "v" (>= 1) */
    uint32_t shm_v;        /* HELLO: "shm":{"v":N} (N >= 1), 0 when absent (declined) */
    size_t nrefs;          /* DONE: pairs stored in the caller's refs */
} aipc_shm_ctl;

/* Parses meta[0..len) as one of the control metas. 1 recognised (c filled; for DONE the pairs
 * go to refs[0..c->nrefs), refs may be NULL when cap is 0 only if the frame is not a DONE),
 * 0 a well-formed object that is not one of them ("op" absent or another op), AIPC_EPROTO
 * malformed (not strict JSON, a member missing or of the wrong type, DONE with 0 or more than
 * min(cap, AIPC_SHM_DONE_MAX) pairs, an answer with both ok true and a code, ...).
 * SEG needs seg, name, size, session, id (and may carry "rel":1); SEG_ANSWER needs re, seg, ok
 * ("re" and "name" never together); UNSEG needs seg; HELLO needs v. */
int aipc_shm_ctl_parse(const char *meta, size_t len, aipc_shm_ctl *c, aipc_shm_ref *refs, size_t cap);

/* Builders: the whole meta (braces included, no NUL); bytes written or 0 if cap is too small or
 * an argument is invalid (a bad name or code, n outside 1..AIPC_SHM_DONE_MAX). */
size_t aipc_shm_seg_put(char *out, size_t cap, uint32_t seg, const char *name, uint32_t size,
                        uint32_t session, uint32_t id);
/* The same announce with "rel":1 at its end: a bus client's release page. */
size_t aipc_shm_relpage_put(char *out, size_t cap, uint32_t seg, const char *name, uint32_t size,
                            uint32_t session, uint32_t id);
size_t aipc_shm_answer_put(char *out, size_t cap, uint32_t re, uint32_t seg, bool ok, const char *code);
size_t aipc_shm_done_put(char *out, size_t cap, const aipc_shm_ref *r, size_t n);
size_t aipc_shm_unseg_put(char *out, size_t cap, uint32_t seg);
/* {"op":"p2p","v":1,"shm":{"v":1}} when with_shm, else {"op":"p2p","v":1}. */
size_t aipc_shm_hello_put(char *out, size_t cap, bool with_shm);

#ifdef __cplusplus
}
#endif
#endif
