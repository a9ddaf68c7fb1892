/*
 * test_sdk_log.c - the SDK logger (sdk/src/win/log.c): InitEasyLog's file location and name,
 * the line format, levels (API and AIPC_LOG_LEVEL), aipc_log_open_file (directories, append,
 * close), many threads at once, and ERROR lines on stderr before any file (AIPC_LOG_STDERR=1).
 * Environment-dependent behaviour is checked in p2p_peer.exe processes (the logger reads the
 * environment once per process).
 */
#include "p2p_common.h"

/* Splits text into lines (CRLF-terminated, as the logger writes them); returns the count and
 * checks that every line ends with CRLF. */
static int count_lines(const char *text, int *bad_endings)
{
    int n = 0;
    *bad_endings = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl) {
            (*bad_endings)++;
            break;
        }
        if (nl == p || nl[-1] != '\r')
            (*bad_endings)++;
        n++;
        p = nl + 1;
    }
    return n;
}

/* Parses "YYYY-MM-DD HH:MM:SS.mmm LEVEL pid=N tid=N message"; returns the message or NULL. */
static const char *parse_line(const char *line, char level[8], unsigned long *pid, unsigned long *tid)
{
    int y, mo, d, h, mi, s, ms, used = 0;
    if (sscanf(line, "%4d-%2d-%2d %2d:%2d:%2d.%3d %5c pid=%lu tid=%lu %n", &y, &mo, &d, &h, &mi, &s, &ms,
               level, pid, tid, &used) != 10 || used == 0)
        return NULL;
    level[5] = 0;
    if (line[4] != '-' || line[10] != ' ' || line[19] != '.' || line[23] != ' ' || line[29] != ' ')
        return NULL;
    return line + used;
}

/* Sets (value) or removes (NULL) an environment variable of this process, inherited by peers. */
static void set_env(const char *name, const char *value)
{
    SetEnvironmentVariableA(name, value);
}

START_TEST(easy_log_location_name_and_format)
{
    char dir[MAX_PATH], path[MAX_PATH * 2];
    aipc_test_temp_path(dir, sizeof dir, "localappdata", "");
    char saved[MAX_PATH];
    DWORD had = GetEnvironmentVariableA("LOCALAPPDATA", saved, sizeof saved);
    set_env("LOCALAPPDATA", dir);   /* the directory does not exist yet: InitEasyLog creates it */
    InitEasyLog("logtest");
    g_log_opened = 1;
    aipc_log(AIPC_LOG_INFO, "hello %d %s", 42, "world");
    aipc_log(AIPC_LOG_ERROR, "line with a trailing newline\n");
    set_env("LOCALAPPDATA", had && had < sizeof saved ? saved : NULL);

    SYSTEMTIME st;
    GetLocalTime(&st);
    snprintf(path, sizeof path, "%s\\AsyncIPC\\logs\\AsyncIPC_logtest_%04u%02u%02u.log", dir,
             (unsigned)st.wYear, (unsigned)st.wMonth, (unsigned)st.wDay);
    size_t len = 0;
    char *text = aipc_test_read_file(path, &len);
    ck_assert_msg(text != NULL, "no log file at %s", path);
    int bad = 0;
    ck_assert_int_eq(count_lines(text, &bad), 2);
    ck_assert_int_eq(bad, 0);
    char level[8];
    unsigned long pid = 0, tid = 0;
    const char *msg = parse_line(text, level, &pid, &tid);
    ck_assert_msg(msg != NULL, "bad line format: %s", text);
    ck_assert_str_eq(level, "INFO ");
    ck_assert_uint_eq(pid, GetCurrentProcessId());
    ck_assert_uint_eq(tid, GetCurrentThreadId());
    ck_assert_msg(!strncmp(msg, "hello 42 world\r\n", 16), "message: %s", msg);
    const char *second = strchr(text, '\n') + 1;
    msg = parse_line(second, level, &pid, &tid);
    ck_assert_ptr_nonnull(msg);
    ck_assert_str_eq(level, "ERROR");
    ck_assert_msg(!strcmp(msg, "line with a trailing newline\r\n"), "message: %s", msg);
    free(text);
    aipc_log_open_file(NULL);
    DeleteFileA(path);
}
END_TEST

START_TEST(levels_filter_lines)
{
    char path[MAX_PATH];
    open_test_log(path, sizeof path, "levels");
    aipc_log_set_level(AIPC_LOG_WARN);
    aipc_log(AIPC_LOG_INFO, "hidden-info");
    aipc_log(AIPC_LOG_WARN, "shown-warn");
    aipc_log_set_level(AIPC_LOG_DEBUG);
    aipc_log(AIPC_LOG_DEBUG, "shown-debug");
    aipc_log(AIPC_LOG_TRACE, "hidden-trace");
    aipc_log_set_level(AIPC_LOG_INFO);
    aipc_log(AIPC_LOG_DEBUG, "hidden-debug");
    char *text = aipc_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_null(strstr(text, "hidden"));
    ck_assert_ptr_nonnull(strstr(text, " WARN  pid="));
    ck_assert_ptr_nonnull(strstr(text, "shown-warn"));
    ck_assert_ptr_nonnull(strstr(text, " DEBUG pid="));
    ck_assert_ptr_nonnull(strstr(text, "shown-debug"));
    free(text);
}
END_TEST

START_TEST(open_file_creates_dirs_appends_and_closes)
{
    char base[MAX_PATH], path[MAX_PATH * 2];
    aipc_test_temp_path(base, sizeof base, "logdir", "");
    snprintf(path, sizeof path, "%s\\a\\b\\broker.log", base);
    ck_assert_int_eq(aipc_log_open_file(path), AIPC_OK);
    g_log_opened = 1;
    aipc_log(AIPC_LOG_INFO, "first");
    ck_assert_int_eq(aipc_log_open_file(NULL), AIPC_OK);
    aipc_log(AIPC_LOG_ERROR, "while closed");
    ck_assert_int_eq(aipc_log_open_file(path), AIPC_OK);   /* appends, does not truncate */
    aipc_log(AIPC_LOG_INFO, "second");
    ck_assert_int_eq(aipc_log_open_file(NULL), AIPC_OK);
    char *text = aipc_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(text);
    int bad = 0;
    ck_assert_int_eq(count_lines(text, &bad), 2);
    ck_assert_ptr_nonnull(strstr(text, "first"));
    ck_assert_ptr_nonnull(strstr(text, "second"));
    ck_assert_ptr_null(strstr(text, "while closed"));
    ck_assert(strstr(text, "first") < strstr(text, "second"));
    free(text);
    DeleteFileA(path);
    ck_assert_int_eq(aipc_log_open_file(""), AIPC_EINVAL);
}
END_TEST

enum { LOG_THREADS = 4, LOG_LINES = 500 };

/* A logging thread: numbered lines, one after the other. */
static DWORD WINAPI log_thread(void *arg)
{
    int id = (int)(INT_PTR)arg;
    for (int i = 0; i < LOG_LINES; i++)
        aipc_log(AIPC_LOG_INFO, "thread %d line %d %s", id, i, i % 50 == 0 ? "with a longer tail to vary the length" : "");
    return 0;
}

START_TEST(many_threads_whole_lines)
{
    char path[MAX_PATH];
    open_test_log(path, sizeof path, "threads");
    HANDLE th[LOG_THREADS];
    for (int i = 0; i < LOG_THREADS; i++)
        th[i] = CreateThread(NULL, 0, log_thread, (void *)(INT_PTR)i, 0, NULL);
    ck_assert_msg(WaitForMultipleObjects(LOG_THREADS, th, TRUE, WAIT_MS) == WAIT_OBJECT_0, "logging threads hung");
    for (int i = 0; i < LOG_THREADS; i++)
        CloseHandle(th[i]);
    char *text = aipc_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(text);
    int bad = 0;
    ck_assert_int_eq(count_lines(text, &bad), LOG_THREADS * LOG_LINES);
    ck_assert_int_eq(bad, 0);
    int next[LOG_THREADS] = {0};
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        *nl = 0;
        char level[8];
        unsigned long pid, tid;
        const char *msg = parse_line(line, level, &pid, &tid);
        ck_assert_msg(msg != NULL, "damaged line: %s", line);
        int id = -1, n = -1;
        ck_assert_int_eq(sscanf(msg, "thread %d line %d", &id, &n), 2);
        ck_assert(id >= 0 && id < LOG_THREADS);
        ck_assert_int_eq(n, next[id]);   /* each thread's lines in its own order */
        next[id]++;
        line = nl + 1;
    }
    free(text);
}
END_TEST

/* AIPC_LOG_LEVEL=debug in the environment: DEBUG lines appear, TRACE lines do not;
 * AIPC_LOG_LEVEL=error: only ERROR lines. */
START_TEST(env_log_level_is_honoured)
{
    static const struct {
        const char *env;
        const char *present[5], *absent[5];
    } cases[] = {
        {"debug", {"peer-error", "peer-warn", "peer-info", "peer-debug"}, {"peer-trace"}},
        {"ERROR", {"peer-error"}, {"peer-warn", "peer-info", "peer-debug", "peer-trace"}},
        {"trace", {"peer-error", "peer-info", "peer-debug", "peer-trace"}, {NULL}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[MAX_PATH];
        aipc_test_temp_path(path, sizeof path, "envlevel", ".log");
        set_env("AIPC_LOG_LEVEL", cases[c].env);
        aipc_proc peer;
        int rc = aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode log --log \"%s\"", path);
        set_env("AIPC_LOG_LEVEL", NULL);
        ck_assert_int_eq(rc, AIPC_OK);
        PEER_DONE(&peer, 0);
        char *text = aipc_test_read_file(path, NULL);
        ck_assert_ptr_nonnull(text);
        for (int i = 0; i < 5 && cases[c].present[i]; i++)
            ck_assert_msg(strstr(text, cases[c].present[i]) != NULL, "AIPC_LOG_LEVEL=%s: %s missing", cases[c].env,
                          cases[c].present[i]);
        for (int i = 0; i < 5 && cases[c].absent[i]; i++)
            ck_assert_msg(strstr(text, cases[c].absent[i]) == NULL, "AIPC_LOG_LEVEL=%s: %s logged", cases[c].env,
                          cases[c].absent[i]);
        free(text);
        DeleteFileA(path);
    }
}
END_TEST

/* Before any log file: with AIPC_LOG_STDERR=1 only ERROR lines reach stderr; without it,
 * nothing does. */
START_TEST(stderr_errors_before_any_file)
{
    for (int with_env = 0; with_env < 2; with_env++) {
        char path[MAX_PATH];
        aipc_test_temp_path(path, sizeof path, "stderr", ".txt");
        set_env("AIPC_LOG_STDERR", with_env ? "1" : NULL);
        aipc_proc peer;
        int rc = aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode log-stderr --log \"%s\"", path);
        set_env("AIPC_LOG_STDERR", NULL);
        ck_assert_int_eq(rc, AIPC_OK);
        PEER_DONE(&peer, 0);
        size_t len = 0;
        char *text = aipc_test_read_file(path, &len);
        ck_assert_ptr_nonnull(text);
        if (with_env) {
            ck_assert_msg(strstr(text, " ERROR pid=") && strstr(text, "peer-error"), "stderr: %s", text);
            ck_assert_ptr_null(strstr(text, "peer-warn"));
            ck_assert_ptr_null(strstr(text, "peer-info"));
        } else {
            ck_assert_msg(len == 0, "stderr without AIPC_LOG_STDERR: %s", text);
        }
        free(text);
        DeleteFileA(path);
    }
}
END_TEST

static Suite *sdk_log_suite(void)
{
    Suite *s = suite_create("sdk_log");
    TCase *t = tcase_create("log");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_test(t, easy_log_location_name_and_format);
    tcase_add_test(t, levels_filter_lines);
    tcase_add_test(t, open_file_creates_dirs_appends_and_closes);
    tcase_add_test(t, many_threads_whole_lines);
    tcase_add_test(t, env_log_level_is_honoured);
    tcase_add_test(t, stderr_errors_before_any_file);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(sdk_log_suite, NULL, NULL, CHECK_MAIN_VERBOSE); /* a line per test, unbuffered */
