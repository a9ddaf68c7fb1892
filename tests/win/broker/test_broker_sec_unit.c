/*
 * test_broker_sec_unit.c - the broker's hardening decisions, in-process and in tables (Wine
 * enforces no descriptor and synthesises file ones, so the decisions are tested on descriptors
 * built from SDDL):
 *   - the file audit (config file/folder, log folder/file in service mode): owners and ACEs;
 *   - the pipe audit behind the config key "sddl" (broker_pipe_security_init refuses, naming the
 *     key, what lets an untrusted SID create instances or change the descriptor);
 *   - service start arguments are refused;
 *   - the log path's reparse-point walk (over a table of attributes).
 */
#include <windows.h>

#include "check_main.h"

#include <sddl.h>
#include <aclapi.h>
#include <shlobj.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "path_guard.h"
#include "raw_proto.h"
#include "sd_audit.h"
#include "security.h"
#include "service.h"
#include "winsec.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A synthetic service account trusted like the broker's own (S-1-5-80-...). */
#define SVC_SID "S-1-5-80-1-2-3-4-5"

static PSECURITY_DESCRIPTOR sd_from(const char *sddl)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    ck_assert_msg(ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd,
                                                                       NULL),
                  "SDDL not parsed: %s (%lu)", sddl, GetLastError());
    return sd;
}

/* SYSTEM, Administrators, TrustedInstaller and the synthetic service account. */
static void synthetic_trust(aipc__trust *t)
{
    memset(t, 0, sizeof *t);
    ck_assert_int_eq(aipc__trust_add(t, "SY"), 0);
    ck_assert_int_eq(aipc__trust_add(t, "BA"), 0);
    ck_assert_int_eq(aipc__trust_add(t, "S-1-5-80-956008885-3418522649-1831038044-1853292631-"
                                       "2271478464"), 0);
    ck_assert_int_eq(aipc__trust_add(t, SVC_SID), 0);
}

static const struct {
    const char *sddl;
    bool ok;
    const char *needle;        /* in the reason when refused */
} files[] = {
    /* what the installer makes: protected, admins full, the service modify, users read */
    {"O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;" SVC_SID ")(A;OICI;0x1200a9;;;BU)",
     true, NULL},
    {"O:SYD:P(A;;FA;;;SY)(A;;FA;;;BA)", true, NULL},
    {"O:S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464D:(A;;FA;;;SY)", true, NULL},
    {"O:" SVC_SID "D:(A;;FA;;;" SVC_SID ")", true, NULL},
    /* owners other than the trusted ones */
    {"O:BUD:P(A;;FA;;;SY)", false, "owned by S-1-5-32-545"},
    {"O:S-1-5-21-1-2-3-1001D:P(A;;FA;;;SY)", false, "owned by S-1-5-21-1-2-3-1001"},
    {"D:P(A;;FA;;;SY)", false, "owned by (no SID)"},
    /* each change right for an untrusted SID */
    {"O:BAD:(A;;FA;;;SY)(A;;0x2;;;BU)", false, "S-1-5-32-545 access 0x2"},
    {"O:BAD:(A;;0x4;;;AU)", false, "S-1-5-11 access 0x4"},
    {"O:BAD:(A;;0x10;;;IU)", false, "S-1-5-4"},
    {"O:BAD:(A;;0x40;;;IU)", false, "S-1-5-4 access 0x40"},
    {"O:BAD:(A;;0x100;;;WD)", false, "S-1-1-0"},
    {"O:BAD:(A;;SD;;;WD)", false, "S-1-1-0 access 0x10000"},
    {"O:BAD:(A;;WD;;;AU)", false, "S-1-5-11 access 0x40000"},
    {"O:BAD:(A;;WO;;;BU)", false, "S-1-5-32-545 access 0x80000"},
    {"O:BAD:(A;;GW;;;AU)", false, "S-1-5-11 access 0x40000000"},
    {"O:BAD:(A;;GA;;;AU)", false, "S-1-5-11 access 0x10000000"},
    {"O:BAD:(A;;FW;;;S-1-5-21-1-2-3-1001)", false, "S-1-5-21-1-2-3-1001"},
    /* read and execute for users is fine */
    {"O:BAD:P(A;;FA;;;SY)(A;;FR;;;BU)(A;;FX;;;WD)(A;;0x1200a9;;;AU)", true, NULL},
    /* inheritable grants count (files created inside would get them) ... */
    {"O:BAD:P(A;OICIIO;FW;;;BU)(A;OICI;FA;;;SY)", false, "S-1-5-32-545"},
    /* ... except CREATOR OWNER / GROUP inherit-only ones; OWNER RIGHTS is the (trusted) owner */
    {"O:BAD:P(A;OICIIO;GA;;;CO)(A;OICIIO;GA;;;CG)(A;OICI;FA;;;SY)(A;;FA;;;OW)", true, NULL},
    {"O:BAD:P(A;;FA;;;CO)", false, "S-1-3-0"},
    /* %ProgramData% as Windows ships it: users may add files and folders */
    {"O:SYG:SYD:PAI(A;OICIIO;GA;;;CO)(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)"
     "(A;CI;0x116;;;BU)", false, "S-1-5-32-545 access 0x116"},
    /* deny ACEs are ignored, whatever they deny */
    {"O:BAD:P(D;;FA;;;BU)(A;;FA;;;SY)", true, NULL},
    {"O:BAD:P(D;;FA;;;BU)(A;;FW;;;BU)", false, "S-1-5-32-545"},
    /* no DACL at all: everyone has full access */
    {"O:BA", false, "no DACL"},
};

START_TEST(file_audit_table)
{
    aipc__trust t;
    synthetic_trust(&t);
    for (size_t i = 0; i < N_OF(files); i++) {
        PSECURITY_DESCRIPTOR sd = sd_from(files[i].sddl);
        char why[400] = "";
        int rc = aipc__sd_audit_file(sd, &t, why, sizeof why);
        ck_assert_msg((rc == 0) == files[i].ok, "row %u %s: %s (%s)", (unsigned)i, files[i].sddl,
                      rc ? "refused" : "accepted", why);
        if (!files[i].ok)
            ck_assert_msg(strstr(why, files[i].needle) != NULL, "row %u: reason \"%s\" lacks %s",
                          (unsigned)i, why, files[i].needle);
        LocalFree(sd);
    }
    aipc__trust_free(&t);
}
END_TEST

/* The broker's own trust list accepts what Wine synthesises for our files (owner = our user,
 * Everyone read) and names our user and the service SID. */
START_TEST(own_trust)
{
    aipc__trust t;
    ck_assert_int_eq(aipc__trust_init(&t, true), 0);
    wchar_t *me = aipc__sec_user_sid_string();
    ck_assert_ptr_nonnull(me);
    char sddl[512];
    snprintf(sddl, sizeof sddl, "O:%lsD:(A;OICI;FA;;;SY)(A;OICI;FA;;;%ls)(A;OICI;0x1200a9;;;WD)",
             me, me);
    PSECURITY_DESCRIPTOR sd = sd_from(sddl);
    char why[400] = "";
    ck_assert_msg(aipc__sd_audit_file(sd, &t, why, sizeof why) == 0, "%s", why);
    LocalFree(sd);
    PSID svc = aipc__sec_service_sid(L"AsyncIPCBroker");
    ck_assert(aipc__trust_has(&t, svc));
    free(svc);
    PSID bu = NULL;
    ck_assert(ConvertStringSidToSidA("BU", &bu));
    ck_assert(!aipc__trust_has(&t, bu));
    LocalFree(bu);
    LocalFree(me);
    aipc__trust_free(&t);
}
END_TEST

/* The pipe's "sddl": what lets an untrusted SID create instances (0x4) or change the
 * descriptor is refused at load, with a message naming the key. */
static const struct {
    const char *sddl;
    bool ok;
    const char *needle;
} pipes[] = {
    {"D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x12019b;;;IU)(A;;0x12019b;;;AU)", true, NULL},
    {"D:P(A;;FA;;;SY)(A;;FA;;;%U)(A;;FRFW;;;S-1-5-21-1-2-3-1001)", false, "S-1-5-21-1-2-3-1001"},
    {"D:P(A;;FA;;;SY)(A;;FA;;;AU)", false, "S-1-5-11"},
    {"D:P(A;;FA;;;SY)(A;;0x4;;;IU)", false, "S-1-5-4 access 0x4"},
    {"D:P(A;;FA;;;SY)(A;;0x1200ad;;;IU)", false, "S-1-5-4"},      /* read + create instance */
    {"D:P(A;;FA;;;SY)(A;;0x1200ab;;;IU)", true, NULL},             /* read + write data */
    {"D:P(A;;FA;;;SY)(A;;WD;;;WD)", false, "S-1-1-0 access 0x40000"},
    {"D:P(A;;FA;;;SY)(A;;WO;;;BU)", false, "S-1-5-32-545 access 0x80000"},
    {"D:P(A;;FA;;;SY)(A;;GW;;;AU)", false, "S-1-5-11"},
    {"D:P(A;;FA;;;SY)(A;;GA;;;AU)", false, "S-1-5-11"},
    {"O:BUD:P(A;;FA;;;SY)", false, "owned by S-1-5-32-545"},
    {"O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x12019b;;;WD)", true, NULL},
    {"D:P(A;;FA;;;SY)(A;;FA;;;%U)(D;;FA;;;AU)(A;;0x12019b;;;AU)", true, NULL},
    /* the service's own SID (NT SERVICE\AsyncIPCBroker) */
    {"D:P(A;;FA;;;SY)(A;;FA;;;S-1-5-80-1367493681-2980605409-3874299912-3683937316-105123856)"
     "(A;;0x12019b;;;AU)", true, NULL},
};

START_TEST(pipe_sddl_table)
{
    /* the row above spells NT SERVICE\AsyncIPCBroker's SID out: check it */
    PSID svc = aipc__sec_service_sid(L"AsyncIPCBroker");
    char *svc_str = NULL;
    ck_assert(svc && ConvertSidToStringSidA(svc, &svc_str));
    ck_assert_msg(strstr(pipes[N_OF(pipes) - 1].sddl, svc_str), "service SID is %s", svc_str);
    LocalFree(svc_str);
    free(svc);
    for (size_t i = 0; i < N_OF(pipes); i++) {
        broker_pipe_security s;
        char err[512] = "";
        int rc = broker_pipe_security_init(&s, pipes[i].sddl, err, sizeof err);
        ck_assert_msg((rc == 0) == pipes[i].ok, "row %u %s: %s (%s)", (unsigned)i, pipes[i].sddl,
                      rc ? "refused" : "accepted", err);
        if (rc == 0) {
            broker_pipe_security_free(&s);
            continue;
        }
        ck_assert_msg(strstr(err, "config key \"sddl\"") && strstr(err, pipes[i].needle),
                      "row %u: \"%s\" lacks the key or %s", (unsigned)i, err, pipes[i].needle);
    }
    /* the default descriptor passes its own audit */
    broker_pipe_security s;
    char err[512] = "";
    ck_assert_msg(broker_pipe_security_init(&s, NULL, err, sizeof err) == 0, "%s", err);
    broker_pipe_security_free(&s);
}
END_TEST

/* ServiceMain arguments (start arguments) are refused; the service name alone is fine. */
START_TEST(start_args)
{
    char why[512] = "";
    const wchar_t *one[] = {L"AsyncIPCBroker"};
    ck_assert_int_eq(aipc__service_start_args_check(1, one, why, sizeof why), 0);
    ck_assert_int_eq(aipc__service_start_args_check(0, NULL, why, sizeof why), 0);
    const wchar_t *cfg[] = {L"AsyncIPCBroker", L"--config", L"C:\\evil.json"};
    ck_assert_int_eq(aipc__service_start_args_check(3, cfg, why, sizeof why), -1);
    ck_assert_msg(strstr(why, "start arguments are refused") && strstr(why, "--config"), "%s",
                  why);
    const wchar_t *pipe[] = {L"AsyncIPCBroker", L"--pipe", L"x"};
    ck_assert_int_eq(aipc__service_start_args_check(3, pipe, why, sizeof why), -1);
    const wchar_t *other[] = {L"AsyncIPCBroker", L"anything"};
    ck_assert_int_eq(aipc__service_start_args_check(2, other, why, sizeof why), -1);
}
END_TEST

/* ---- the reparse-point walk over a table of attributes ------------------------------------- */

typedef struct fake_fs {
    const wchar_t *reparse[4];      /* paths that are reparse points */
    int calls;
    const wchar_t *asked[16];
} fake_fs;

static DWORD fake_attrs(const wchar_t *p, void *ctx)
{
    fake_fs *fs = ctx;
    if (fs->calls < 16)
        fs->asked[fs->calls] = _wcsdup(p);
    fs->calls++;
    for (int i = 0; i < 4 && fs->reparse[i]; i++)
        if (_wcsicmp(fs->reparse[i], p) == 0)
            return FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT;
    return FILE_ATTRIBUTE_DIRECTORY;
}

static void fake_free(fake_fs *fs)
{
    for (int i = 0; i < fs->calls && i < 16; i++)
        free((void *)fs->asked[i]);
}

START_TEST(reparse_walk)
{
    const wchar_t *log = L"C:\\ProgramData\\AsyncIPC\\logs\\broker.log";
    wchar_t bad[512];
    fake_fs fs = {{NULL}, 0, {NULL}};
    ck_assert_int_eq(aipc__guard_reparse_walk(log, fake_attrs, &fs, bad, 512), 0);
    /* every component below the root, from the file up; not "C:" or "C:\" */
    ck_assert_int_eq(fs.calls, 4);
    ck_assert(wcscmp(fs.asked[0], log) == 0);
    ck_assert(wcscmp(fs.asked[3], L"C:\\ProgramData") == 0);
    fake_free(&fs);
    const wchar_t *cases[][2] = {
        {L"C:\\ProgramData\\AsyncIPC\\logs", L"C:\\ProgramData\\AsyncIPC\\logs"},
        {L"C:\\ProgramData\\AsyncIPC", L"C:\\ProgramData\\AsyncIPC"},
        {L"C:\\ProgramData\\AsyncIPC\\logs\\broker.log", L"C:\\ProgramData\\AsyncIPC\\logs\\broker.log"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        fake_fs f2 = {{cases[i][0], NULL}, 0, {NULL}};
        ck_assert_int_eq(aipc__guard_reparse_walk(log, fake_attrs, &f2, bad, 512), -1);
        ck_assert_msg(wcscmp(bad, cases[i][1]) == 0, "case %u: %ls", (unsigned)i, bad);
        fake_free(&f2);
    }
    /* UNC: the share root is not checked, the folders below it are */
    fake_fs f3 = {{NULL}, 0, {NULL}};
    ck_assert_int_eq(aipc__guard_reparse_walk(L"\\\\srv\\share\\a\\b.log", fake_attrs, &f3, bad,
                                             512), 0);
    ck_assert_int_eq(f3.calls, 2);
    ck_assert(wcscmp(f3.asked[1], L"\\\\srv\\share\\a") == 0);
    fake_free(&f3);
    fake_fs f4 = {{L"\\\\srv\\share\\a", NULL}, 0, {NULL}};
    ck_assert_int_eq(aipc__guard_reparse_walk(L"\\\\srv\\share\\a\\b.log", fake_attrs, &f4, bad,
                                             512), -1);
    fake_free(&f4);
    /* the real walk accepts this suite's own folder (no reparse points under Wine's C:) */


    char err[600] = "";
    char tmp[MAX_PATH];
    aipc_test_temp_path(tmp, sizeof tmp, "guard", ".log");
    ck_assert_msg(aipc__guard_log(tmp, err, sizeof err) == 0, "%s", err);
}
END_TEST

/* Service-mode guards on real paths under Wine: our own files pass (Wine reports our user as
 * their owner and Everyone read-only); a missing log folder is created. */
START_TEST(guards_on_own_files)
{
    char cfg[MAX_PATH], err[600] = "";
    aipc_test_temp_path(cfg, sizeof cfg, "guard", ".json");
    FILE *fp = fopen(cfg, "wb");
    ck_assert(fp != NULL);
    fputs("{}", fp);
    fclose(fp);
    wchar_t wcfg[MAX_PATH];
    MultiByteToWideChar(CP_UTF8, 0, cfg, -1, wcfg, MAX_PATH);
    ck_assert_msg(aipc__guard_config(wcfg, err, sizeof err) == 0, "%s", err);
    DeleteFileA(cfg);
    ck_assert_msg(aipc__guard_config(wcfg, err, sizeof err) == 0, "missing config: %s", err);
    char dir[MAX_PATH], log[MAX_PATH + 32];
    aipc_test_temp_path(dir, sizeof dir, "guard-dir", "");
    snprintf(log, sizeof log, "%s\\sub\\broker.log", dir);
    ck_assert_msg(aipc__guard_log(log, err, sizeof err) == 0, "%s", err);
    char sub[MAX_PATH + 8];
    snprintf(sub, sizeof sub, "%s\\sub", dir);
    DWORD attr = GetFileAttributesA(sub);
    ck_assert(attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY));
    RemoveDirectoryA(sub);
    RemoveDirectoryA(dir);
}
END_TEST

/* The folder of this suite + name (the build puts guard-link there: a symbolic link). */
static void beside_me(char *out, size_t cap, const char *name)
{
    DWORD n = GetModuleFileNameA(NULL, out, (DWORD)cap);
    while (n > 0 && out[n - 1] != '\\')
        n--;
    snprintf(out + n, cap - n, "%s", name);
}

/* Paths through a reparse point (a Unix symbolic link, as Wine reports it) are refused, with
 * the message naming the link. */
START_TEST(guards_refuse_links)
{
    char link[MAX_PATH];
    beside_me(link, sizeof link, "guard-link");
    DWORD attr = GetFileAttributesA(link);
    if (attr == INVALID_FILE_ATTRIBUTES || !(attr & FILE_ATTRIBUTE_REPARSE_POINT)) {
        fprintf(stderr, "guards_refuse_links: skipped, %s is not a reparse point here\n", link);
        return;
    }
    char log[MAX_PATH + 32], err[600] = "";
    snprintf(log, sizeof log, "%s\\sub\\broker.log", link);
    ck_assert_int_eq(aipc__guard_log(log, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "reparse point") && strstr(err, "guard-link"), "%s", err);
    /* nothing was created through the link */
    char sub[MAX_PATH + 8];
    snprintf(sub, sizeof sub, "%s\\sub", link);
    ck_assert_uint_eq(GetFileAttributesA(sub), INVALID_FILE_ATTRIBUTES);
    char cfg[MAX_PATH + 32];
    snprintf(cfg, sizeof cfg, "%s\\broker.json", link);
    FILE *fp = fopen(cfg, "wb");
    ck_assert_msg(fp != NULL, "cannot write %s", cfg);
    fputs("{}", fp);
    fclose(fp);
    wchar_t wcfg[MAX_PATH + 32];
    MultiByteToWideChar(CP_UTF8, 0, cfg, -1, wcfg, MAX_PATH + 32);
    ck_assert_int_eq(aipc__guard_config(wcfg, err, sizeof err), -1);
    /* the handle's final path is not the path asked for: the link was followed */
    ck_assert_msg(strstr(err, "config file") && strstr(err, "reached as") &&
                  strstr(err, "guard-target"), "%s", err);
    char *text = (char *)1;
    int missing = 1;
    ck_assert_int_eq(aipc__guard_config_read(wcfg, &text, &missing, err, sizeof err), -1);
    ck_assert_ptr_null(text);
    ck_assert_int_eq(missing, 0);
    DeleteFileA(cfg);
}
END_TEST

/* The config is read through the handle that was checked; only "not found" means absent; a
 * second name (hard link) is refused. */
START_TEST(guard_config_read)
{
    char cfg[MAX_PATH], err[600] = "";
    aipc_test_temp_path(cfg, sizeof cfg, "guard-read", ".json");
    FILE *fp = fopen(cfg, "wb");
    ck_assert(fp != NULL);
    fputs("{\"max_clients\": 7}", fp);
    fclose(fp);
    wchar_t wcfg[MAX_PATH];
    MultiByteToWideChar(CP_UTF8, 0, cfg, -1, wcfg, MAX_PATH);
    char *text = NULL;
    int missing = 1;
    ck_assert_msg(aipc__guard_config_read(wcfg, &text, &missing, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(missing, 0);
    ck_assert_str_eq(text, "{\"max_clients\": 7}");
    free(text);
    /* a second name */
    char hl[MAX_PATH + 8];
    snprintf(hl, sizeof hl, "%s.hl", cfg);
    if (CreateHardLinkA(hl, cfg, NULL)) {
        text = NULL;
        ck_assert_int_eq(aipc__guard_config_read(wcfg, &text, &missing, err, sizeof err), -1);
        ck_assert_msg(strstr(err, "hard links"), "%s", err);
        ck_assert_ptr_null(text);
        DeleteFileA(hl);
    } else {
        fprintf(stderr, "guard_config_read: no hard links here (%lu)\n", GetLastError());
    }
    DeleteFileA(cfg);
    text = (char *)1;
    ck_assert_int_eq(aipc__guard_config_read(wcfg, &text, &missing, err, sizeof err), 0);
    ck_assert_int_eq(missing, 1);
    ck_assert_ptr_null(text);
    /* a folder where the file should be cannot be opened as a file: refused, not "absent" */
    ck_assert(CreateDirectoryA(cfg, NULL));
    ck_assert_int_eq(aipc__guard_config_read(wcfg, &text, &missing, err, sizeof err), -1);
    ck_assert_int_eq(missing, 0);
    ck_assert_msg(strstr(err, "config file") && strstr(err, "refused"), "%s", err);
    RemoveDirectoryA(cfg);
}
END_TEST

/* Service mode never creates %ProgramData%\AsyncIPC; it creates its logs with the installers'
 * descriptor (owner Administrators, protected). */
START_TEST(guard_data_folder)
{
    char pd[MAX_PATH], data[MAX_PATH + 16], logs[MAX_PATH + 32], log[MAX_PATH + 64];
    char err[600] = "";
    ck_assert(SUCCEEDED(SHGetFolderPathA(NULL, CSIDL_COMMON_APPDATA, NULL, 0, pd)));
    snprintf(data, sizeof data, "%s\\AsyncIPC", pd);
    snprintf(logs, sizeof logs, "%s\\logs", data);
    snprintf(log, sizeof log, "%s\\guard-test.log", logs);
    if (GetFileAttributesA(data) != INVALID_FILE_ATTRIBUTES) {
        fprintf(stderr, "guard_data_folder: skipped, %s exists\n", data);
        return;
    }
    ck_assert_int_eq(aipc__guard_log(log, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "data folder") && strstr(err, "installer"), "%s", err);
    ck_assert_uint_eq(GetFileAttributesA(data), INVALID_FILE_ATTRIBUTES);
    /* the installers made it: logs is created by the broker, as the installers would */
    ck_assert(CreateDirectoryA(data, NULL));
    ck_assert_msg(aipc__guard_log(log, err, sizeof err) == 0, "%s", err);
    PSECURITY_DESCRIPTOR sd = NULL;
    PSID owner = NULL;
    ck_assert_uint_eq(GetNamedSecurityInfoA(logs, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION |
                                            DACL_SECURITY_INFORMATION, &owner, NULL, NULL, NULL,
                                            &sd), ERROR_SUCCESS);
    PSID ba = NULL;
    ck_assert(ConvertStringSidToSidA("S-1-5-32-544", &ba));
    /* Wine keeps a descriptor it is given for a new folder; Windows does too */
    ck_assert_msg(EqualSid(owner, ba), "logs is not owned by Administrators");
    SECURITY_DESCRIPTOR_CONTROL ctl = 0;
    DWORD rev;
    ck_assert(GetSecurityDescriptorControl(sd, &ctl, &rev));
    ck_assert_msg(ctl & SE_DACL_PROTECTED, "logs' DACL is not protected");
    LocalFree(ba);
    LocalFree(sd);
    RemoveDirectoryA(logs);
    RemoveDirectoryA(data);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_sec_unit");
    TCase *tc = tcase_create("sec");
    tcase_add_test(tc, file_audit_table);
    tcase_add_test(tc, own_trust);
    tcase_add_test(tc, pipe_sddl_table);
    tcase_add_test(tc, start_args);
    tcase_add_test(tc, reparse_walk);
    tcase_add_test(tc, guards_on_own_files);
    tcase_add_test(tc, guards_refuse_links);
    tcase_add_test(tc, guard_config_read);
    tcase_add_test(tc, guard_data_folder);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
