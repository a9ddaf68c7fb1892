/*
 * chat_window.c - gui_chat's main window: a status line, the transcript (listbox), an edit
 * box and three Send buttons (pipe, bus, both = Enter), all made with CreateWindowEx.
 *
 * WM_CLOSE stops the pipe (Exit + Release) and the bus client (aipc_bus_close) right here in
 * the window procedure: the SDK runs their callbacks on this thread (the window dispatcher),
 * so neither call waits, and no callback of theirs starts after they return.
 * Thread: UI thread only (window procedure, and the functions the callbacks call).
 */
#include "chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDC_STATUS    100
#define IDC_LIST      101
#define IDC_EDIT      102
#define IDC_SEND_PIPE 103
#define IDC_SEND_BUS  104
#define IDC_SEND_BOTH IDOK   /* the default button: Enter in the edit box (IsDialogMessage) */

#define CHAT_MAX_LINES 5000  /* transcript bound: the oldest lines go first */
#define EDIT_MAX_CHARS 300   /* UTF-16 units; at most 3 UTF-8 bytes each: fits CHAT_TEXT_MAX */

static const wchar_t k_class[] = L"AsyncIPC.GuiChat";

static chat_app *app_of(HWND wnd)
{
    return (chat_app *)GetWindowLongPtrW(wnd, GWLP_USERDATA);
}

static HWND make_child(HWND parent, const wchar_t *cls, const wchar_t *text, DWORD style,
                       DWORD ex_style, int id)
{
    HWND h = CreateWindowExW(ex_style, cls, text, WS_CHILD | WS_VISIBLE | style, 0, 0, 0, 0,
                             parent, (HMENU)(INT_PTR)id,
                             (HINSTANCE)GetWindowLongPtrW(parent, GWLP_HINSTANCE), NULL);
    if (h)
        SendMessageW(h, WM_SETFONT, (WPARAM)GetStockObject(DEFAULT_GUI_FONT), FALSE);
    return h;
}

static bool create_controls(chat_app *app, HWND wnd)
{
    app->status = make_child(wnd, L"STATIC", L"", SS_LEFTNOWORDWRAP | SS_NOPREFIX, 0, IDC_STATUS);
    app->list = make_child(wnd, L"LISTBOX", L"",
                           WS_VSCROLL | WS_TABSTOP | LBS_NOINTEGRALHEIGHT | LBS_NOTIFY,
                           WS_EX_CLIENTEDGE, IDC_LIST);
    app->edit = make_child(wnd, L"EDIT", L"", WS_TABSTOP | ES_AUTOHSCROLL, WS_EX_CLIENTEDGE,
                           IDC_EDIT);
    HWND b1 = make_child(wnd, L"BUTTON", L"Send (&pipe)", WS_TABSTOP | BS_PUSHBUTTON, 0,
                         IDC_SEND_PIPE);
    HWND b2 = make_child(wnd, L"BUTTON", L"Send (&bus)", WS_TABSTOP | BS_PUSHBUTTON, 0,
                         IDC_SEND_BUS);
    HWND b3 = make_child(wnd, L"BUTTON", L"&Send", WS_TABSTOP | BS_DEFPUSHBUTTON, 0,
                         IDC_SEND_BOTH);
    if (!app->status || !app->list || !app->edit || !b1 || !b2 || !b3)
        return false;
    SendMessageW(app->edit, EM_LIMITTEXT, EDIT_MAX_CHARS, 0);
    if (!app->opt.use_bus)
        EnableWindow(b2, FALSE);
    return true;
}

/* Status line on top, transcript in the middle, edit box and buttons at the bottom. */
static void layout(HWND wnd, int w, int h)
{
    const int m = 8, row = 24, bw = 88, status_h = 18;
    int list_top = m + status_h + 4;
    int bottom = h - m - row;
    int edit_w = w - 2 * m - 3 * (bw + 4);
    if (edit_w < 40)
        edit_w = 40;
    MoveWindow(GetDlgItem(wnd, IDC_STATUS), m, m, w - 2 * m, status_h, TRUE);
    MoveWindow(GetDlgItem(wnd, IDC_LIST), m, list_top, w - 2 * m, bottom - 6 - list_top, TRUE);
    MoveWindow(GetDlgItem(wnd, IDC_EDIT), m, bottom, edit_w, row, TRUE);
    int x = m + edit_w + 4;
    MoveWindow(GetDlgItem(wnd, IDC_SEND_PIPE), x, bottom, bw, row, TRUE);
    MoveWindow(GetDlgItem(wnd, IDC_SEND_BUS), x + bw + 4, bottom, bw, row, TRUE);
    MoveWindow(GetDlgItem(wnd, IDC_SEND_BOTH), x + 2 * (bw + 4), bottom, bw, row, TRUE);
}

/* A Send button (or Enter): sends the edit box's text over the pipe, the bus, or both. */
static void on_send_command(chat_app *app, bool pipe, bool bus)
{
    wchar_t wtext[EDIT_MAX_CHARS + 1];
    GetWindowTextW(app->edit, wtext, EDIT_MAX_CHARS + 1);
    char *text = chat_narrow(wtext);
    if (!text || !text[0]) {
        free(text);
        return;
    }
    if (pipe)
        chat_pipe_send(app, text);
    if (bus && app->opt.use_bus)
        chat_bus_send(app, text);
    free(text);
    SetWindowTextW(app->edit, L"");
    SetFocus(app->edit);
}

static LRESULT CALLBACK window_proc(HWND wnd, UINT msg, WPARAM wp, LPARAM lp)
{
    chat_app *app = app_of(wnd);
    switch (msg) {
    case WM_NCCREATE: {
        const CREATESTRUCTW *cs = (const CREATESTRUCTW *)lp;
        SetWindowLongPtrW(wnd, GWLP_USERDATA, (LONG_PTR)cs->lpCreateParams);
        break;
    }
    case WM_CREATE:
        app->wnd = wnd;
        return create_controls(app, wnd) ? 0 : -1;
    case WM_SIZE:
        layout(wnd, LOWORD(lp), HIWORD(lp));
        return 0;
    case WM_GETMINMAXINFO:
        ((MINMAXINFO *)lp)->ptMinTrackSize.x = 480;
        ((MINMAXINFO *)lp)->ptMinTrackSize.y = 200;
        return 0;
    case WM_SETFOCUS:
        if (app && app->edit)
            SetFocus(app->edit);
        return 0;
    case WM_COMMAND:
        switch (LOWORD(wp)) {
        case IDC_SEND_PIPE: on_send_command(app, true, false); return 0;
        case IDC_SEND_BUS:  on_send_command(app, false, true); return 0;
        case IDC_SEND_BOTH: on_send_command(app, true, true);  return 0;
        default: break;
        }
        break;
    case WM_TIMER:
        if (wp == CHAT_TIMER_DEADLINE) {
            chat_auto_deadline(app);
            return 0;
        }
        break;
    case WM_CLOSE:
        /* The SDK objects go first, while the transcript still exists: their last callbacks
         * (bus on_state(CLOSED)) run inside these calls, on this thread. */
        KillTimer(wnd, CHAT_TIMER_DEADLINE);
        chat_pipe_stop(app);
        chat_bus_stop(app);
        DestroyWindow(wnd);
        return 0;
    case WM_DESTROY:
        app->status = app->list = app->edit = NULL;
        PostQuitMessage(app->exit_code);
        return 0;
    case WM_NCDESTROY:
        if (app)
            app->wnd = NULL;
        break;
    default:
        break;
    }
    return DefWindowProcW(wnd, msg, wp, lp);
}

bool chat_window_create(chat_app *app, HINSTANCE inst)
{
    WNDCLASSEXW wc;
    memset(&wc, 0, sizeof wc);
    wc.cbSize = sizeof wc;
    wc.lpfnWndProc = window_proc;
    wc.hInstance = inst;
    wc.hCursor = LoadCursorW(NULL, (LPCWSTR)IDC_ARROW);
    wc.hIcon = LoadIconW(NULL, (LPCWSTR)IDI_APPLICATION);
    wc.hbrBackground = (HBRUSH)(COLOR_BTNFACE + 1);
    wc.lpszClassName = k_class;
    if (!RegisterClassExW(&wc) && GetLastError() != ERROR_CLASS_ALREADY_EXISTS)
        return false;

    char title[CHAT_NAME_MAX + 64];
    snprintf(title, sizeof title, "AsyncIPC chat - %s (pipe %s)", app->opt.name,
             app->opt.server ? "server" : "client");
    wchar_t *wtitle = chat_widen(title);
    HWND wnd = CreateWindowExW(WS_EX_CONTROLPARENT, k_class, wtitle ? wtitle : L"AsyncIPC chat",
                               WS_OVERLAPPEDWINDOW, CW_USEDEFAULT, CW_USEDEFAULT, 720, 440, NULL,
                               NULL, inst, app);
    free(wtitle);
    if (!wnd)
        return false;
    ShowWindow(wnd, app->opt.auto_count > 0 ? SW_SHOWNOACTIVATE : SW_SHOWNORMAL);
    UpdateWindow(wnd);
    chat_window_status(app);
    return true;
}

void chat_say(chat_app *app, const char *fmt, ...)
{
    char line[2 * CHAT_TEXT_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    if (!app->list) {   /* no window (yet, or any more): the console gets the line */
        fprintf(stderr, "gui_chat %s: %s\n", app->opt.name, line);
        return;
    }
    wchar_t *w = chat_widen(line);
    if (!w)
        return;
    LRESULT count = SendMessageW(app->list, LB_ADDSTRING, 0, (LPARAM)w);
    free(w);
    if (count == LB_ERR || count == LB_ERRSPACE)
        return;
    while (SendMessageW(app->list, LB_GETCOUNT, 0, 0) > CHAT_MAX_LINES)
        SendMessageW(app->list, LB_DELETESTRING, 0, 0);
    LRESULT last = SendMessageW(app->list, LB_GETCOUNT, 0, 0) - 1;
    SendMessageW(app->list, LB_SETTOPINDEX, (WPARAM)(last > 0 ? last : 0), 0);
}

void chat_window_status(chat_app *app)
{
    if (!app->status)
        return;
    char *pipe = chat_narrow(app->opt.pipe_name);
    char line[512];
    int n = snprintf(line, sizeof line, "pipe %s (%s, %s engine): %s", pipe ? pipe : "?",
                     app->opt.server ? "server" : "client",
                     app->opt.engine == PIPE_OVERLAPPED ? "overlapped" : "APC",
                     chat_pipe_state(app));
    free(pipe);
    if (n > 0 && (size_t)n < sizeof line && app->opt.use_bus)
        snprintf(line + n, sizeof line - (size_t)n, "    |    bus %s as %s: %s, %d other member(s)",
                 app->bus.topic, app->opt.name, chat_bus_state(app), app->bus.npeers);
    wchar_t *w = chat_widen(line);
    if (w) {
        SetWindowTextW(app->status, w);
        free(w);
    }
}

void chat_window_print_transcript(chat_app *app, const char *prefix)
{
    if (!app->list)
        return;
    LRESULT count = SendMessageW(app->list, LB_GETCOUNT, 0, 0);
    for (LRESULT i = 0; i < count; i++) {
        LRESULT len = SendMessageW(app->list, LB_GETTEXTLEN, (WPARAM)i, 0);
        if (len == LB_ERR)
            continue;
        wchar_t *w = malloc(((size_t)len + 1) * sizeof *w);
        if (!w)
            continue;
        if (SendMessageW(app->list, LB_GETTEXT, (WPARAM)i, (LPARAM)w) != LB_ERR) {
            char *s = chat_narrow(w);
            if (s)
                printf("%s%s\n", prefix, s);
            free(s);
        }
        free(w);
    }
    fflush(stdout);
}
