@echo off
rem install.cmd - installs AsyncIPC by hand with sc.exe (the NSIS setup program does the same).
rem
rem Usage (from an elevated Command Prompt):  install.cmd [/nostart] [/nopath]
rem
rem Source layout: this script sits in the folder that holds the binaries (bin\ of a build's
rem dist tree, e.g. build\win\dist\AsyncIPC-<version>\bin):
rem     asyncipc-broker.exe  aipc.exe  asyncipc.dll          (required, installed)
rem     asyncipc-secure.exe                                  (required, run from here, not
rem                                                           installed: protects the data folder,
rem                                                           stops the service, replaces files,
rem                                                           edits the system PATH)
rem     ..\include\asyncipc\  ..\lib\  ..\docs\               (SDK and docs; copied when present)
rem Result: %ProgramFiles%\AsyncIPC\{bin,include,lib,docs}, bin\ added to the system PATH (not
rem with /nopath), the service AsyncIPCBroker (auto start, restarts on failure - also when it
rem stops with an error of its own: failureflag) running as its own virtual account
rem NT SERVICE\AsyncIPCBroker with only SeChangeNotifyPrivilege, and %ProgramData%\AsyncIPC
rem (owner Administrators, protected ACL: SYSTEM and Administrators full control, the service
rem read, in logs\ modify; users nothing) with broker.json written only if there is none yet (an existing config is never overwritten).
rem An existing %ProgramData%\AsyncIPC, broker.json or logs\ that a non-administrator owns, or a
rem reparse point or hard link there, is refused (exit code 6) before any file or the service changes.
rem Safe to run again: it stops the service and waits until its process has exited, replaces the
rem files, updates the service, restarts it. A file still in use by a running program (a client
rem that loaded asyncipc.dll, a running aipc.exe) is renamed aside and deleted at the next restart
rem of Windows; the new one is in place at once (asyncipc-secure replace says so).
rem Exit code 0 on success; non-zero with a message on stderr otherwise.
rem
rem Every external program is called by its full path under %SystemRoot%\System32 (an elevated
rem script must not run whatever a folder in PATH or the current folder offers under that name).
rem
rem Written for Windows' cmd.exe and Wine's (the tests run it under Wine), so it avoids what
rem Wine's cmd gets wrong: "A && B || C" (runs both B and C), "( echo ... ) > file" (the output
rem is lost when cmd's own stdout is not a console), parentheses in an "if ... echo" text,
rem multi-line blocks inside "for ... do", and "rd" exit codes (checked with "if exist" instead).
setlocal EnableExtensions DisableDelayedExpansion

set "SVC=AsyncIPCBroker"
set "SVCACCOUNT=NT SERVICE\%SVC%"
set "SVCKEY=HKLM\SYSTEM\CurrentControlSet\Services\%SVC%"
set "EVENTKEY=HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\%SVC%"
set "SRC=%~dp0"
if "%SRC:~-1%"=="\" set "SRC=%SRC:~0,-1%"
if not defined SystemRoot goto :no_env
if not defined ProgramData goto :no_env
set "SYS32=%SystemRoot%\System32"
set "SC=%SYS32%\sc.exe"
set "FIND=%SYS32%\find.exe"
set "NET=%SYS32%\net.exe"
set "FLTMC=%SYS32%\fltmc.exe"
set "PING=%SYS32%\ping.exe"
set "REG=%SYS32%\reg.exe"
set "XCOPY=%SYS32%\xcopy.exe"
set "SECURE=%SRC%\asyncipc-secure.exe"
rem 64-bit Program Files even when started from a 32-bit cmd.exe.
set "PFDIR=%ProgramW6432%"
if not defined PFDIR set "PFDIR=%ProgramFiles%"
set "DEST=%PFDIR%\AsyncIPC"
set "CFGDIR=%ProgramData%\AsyncIPC"
set "CFG=%CFGDIR%\broker.json"
set "NOSTART="
set "NOPATH="
:args
if "%~1"=="" goto :args_done
if /i "%~1"=="/nostart" goto :arg_nostart
if /i "%~1"=="/nopath" goto :arg_nopath
if "%~1"=="/?" goto :usage
if /i "%~1"=="/h" goto :usage
echo install.cmd: unknown option "%~1" 1>&2
call :usage
exit /b 1
:arg_nostart
set "NOSTART=1"
shift
goto :args
:arg_nopath
set "NOPATH=1"
shift
goto :args
:args_done

rem --- checks ----------------------------------------------------------------------------------
call :is_admin
if errorlevel 1 goto :not_admin
set "FAILED="
for %%F in (asyncipc-broker.exe aipc.exe asyncipc.dll asyncipc-secure.exe) do call :require "%SRC%\%%F"
if defined FAILED exit /b 2

rem --- data folder: created protected, or checked and protected, before anything else changes -----
rem asyncipc-secure.exe refuses (and this script stops) when the folder, broker.json or logs\ is
rem owned by a non-administrator or is a reparse point or hard link: a user may have planted them.
echo Protecting "%CFGDIR%"...
"%SECURE%" data "%CFGDIR%"
if errorlevel 1 goto :unsafe_data

rem --- stop a running broker so that its files can be replaced --------------------------------
rem The service manager reports STOPPED before the broker's process has exited (and released
rem its files): asyncipc-secure waits for both, 30 s at most.
"%SC%" query %SVC% >nul 2>&1
if errorlevel 1 goto :copy
echo Stopping the %SVC% service...
"%SECURE%" stop-service %SVC% 30000
if errorlevel 1 (
  echo install.cmd: the %SVC% service or its process did not stop within 30 s 1>&2
  exit /b 1
)

rem --- program files ---------------------------------------------------------------------------
:copy
echo Copying files to "%DEST%"...
if not exist "%DEST%\bin\" mkdir "%DEST%\bin"
if not exist "%DEST%\bin\" goto :fail_dest
set "FAILED="
for %%F in (asyncipc-broker.exe aipc.exe asyncipc.dll) do call :copy_file "%SRC%\%%F" "%DEST%\bin"
if exist "%SRC%\..\include\asyncipc\" call :copy_tree "%SRC%\..\include" "%DEST%\include"
if exist "%SRC%\..\lib\" call :copy_tree "%SRC%\..\lib" "%DEST%\lib"
if exist "%SRC%\..\docs\" call :copy_tree "%SRC%\..\docs" "%DEST%\docs"
if defined FAILED exit /b 1

rem --- the system PATH: "aipc" and "asyncipc-broker" by name in new Command Prompts -------------
rem asyncipc-secure edits the registry value itself (no setx: it cuts a PATH at 1024 characters).
if defined NOPATH goto :config
"%SECURE%" path-add "%DEST%\bin"
if errorlevel 1 echo install.cmd: warning: "%DEST%\bin" was not added to the system PATH; use the full paths. 1>&2

rem --- configuration (written once, never overwritten; it inherits the data folder's rights) ----
:config
if not exist "%CFGDIR%\logs\" (
  echo install.cmd: the folder "%CFGDIR%\logs" is missing 1>&2
  exit /b 1
)
if exist "%CFG%" (
  echo Keeping the existing configuration "%CFG%".
) else (
  call :write_config
)
if not exist "%CFG%" (
  echo install.cmd: cannot write "%CFG%" 1>&2
  exit /b 1
)
rem Once more over the written config: it gets the rights it inherits, and the owner
rem Administrators should the installing account own it (what the service accepts).
"%SECURE%" data "%CFGDIR%" >nul
if errorlevel 1 (
  echo install.cmd: cannot protect "%CFGDIR%" - see the reason above 1>&2
  exit /b 1
)

rem --- service -----------------------------------------------------------------------------------
rem The service runs as its own virtual account (no password: the service manager manages it).
set "BIN=\"%DEST%\bin\asyncipc-broker.exe\""
"%SC%" query %SVC% >nul 2>&1
if errorlevel 1 goto :create
rem Update the existing registration. Wine's sc.exe has no "config" command: then re-create.
"%SC%" config %SVC% binPath= "%BIN%" start= auto DisplayName= "AsyncIPC Broker" obj= "%SVCACCOUNT%" >nul 2>&1
if not errorlevel 1 goto :configure
echo install.cmd: note: "%SC%" config failed; deleting and registering the %SVC% service again.
"%SC%" delete %SVC% >nul 2>&1
call :wait_deleted
if errorlevel 1 exit /b 1
:create
echo Registering the %SVC% service...
"%SC%" create %SVC% binPath= "%BIN%" start= auto DisplayName= "AsyncIPC Broker" obj= "%SVCACCOUNT%" >nul
if errorlevel 1 (
  echo install.cmd: "%SC%" create %SVC% failed 1>&2
  exit /b 1
)
:configure
"%SC%" description %SVC% "Routes AsyncIPC messages between local processes (topics, direct messages, requests)." >nul
if errorlevel 1 (
  echo install.cmd: "%SC%" description %SVC% failed 1>&2
  exit /b 1
)
"%SC%" failure %SVC% reset= 86400 actions= restart/5000/restart/5000/restart/30000 >nul
if errorlevel 1 (
  echo install.cmd: "%SC%" failure %SVC% failed 1>&2
  exit /b 1
)
rem The failure actions also when the broker stops with an error of its own (a service-specific
rem exit code, e.g. 3 when another program holds the pipe name), not only when it crashes.
"%SC%" failureflag %SVC% 1 >nul 2>&1
if errorlevel 1 call :reg_fallback failureflag FailureActionsOnNonCrashFailures REG_DWORD 1
if errorlevel 1 exit /b 1
call :least_privilege
if errorlevel 1 exit /b 1
rem The broker's Application-log events (a start-up failure) read as text in Event Viewer: the
rem event source's messages are the message table in asyncipc-broker.exe.
"%REG%" add "%EVENTKEY%" /v EventMessageFile /t REG_EXPAND_SZ /d "%DEST%\bin\asyncipc-broker.exe" /f >nul
if errorlevel 1 goto :fail_eventlog
"%REG%" add "%EVENTKEY%" /v TypesSupported /t REG_DWORD /d 7 /f >nul
if errorlevel 1 goto :fail_eventlog
if defined NOSTART goto :done
echo Starting the %SVC% service...
"%SC%" start %SVC% >nul
if errorlevel 1 (
  echo install.cmd: "%SC%" start %SVC% failed 1>&2
  goto :start_failed
)
call :wait_running
if errorlevel 2 goto :start_failed
if errorlevel 1 (
  echo install.cmd: the %SVC% service did not reach RUNNING within 30 s 1>&2
  exit /b 1
)
:done
echo AsyncIPC is installed in "%DEST%".
if not defined NOPATH echo Open a new Command Prompt to run aipc and asyncipc-broker by name.
exit /b 0

rem ================================================================================================
:usage
echo Usage: install.cmd [/nostart] [/nopath]
echo   Installs AsyncIPC into "%DEST%", adds its bin folder to the system PATH
echo   (not with /nopath) and registers the %SVC% service with automatic start; /nostart
echo   leaves it stopped. Run it from an elevated Command Prompt; the binaries must sit next
echo   to this script.
exit /b 0

:not_admin
echo install.cmd: Administrator rights are required. Open a Command Prompt with "Run as administrator" and run this script again. 1>&2
exit /b 5

:start_failed
echo install.cmd: the %SVC% service stopped while starting. Run "%DEST%\bin\asyncipc-broker.exe" run in a console to see why - for example an invalid "%CFG%". 1>&2
exit /b 1

:fail_dest
echo install.cmd: cannot create the folder "%DEST%\bin" 1>&2
exit /b 1

:fail_eventlog
echo install.cmd: cannot register the event source %EVENTKEY% 1>&2
exit /b 1

:no_env
echo install.cmd: the SystemRoot or ProgramData environment variable is not set 1>&2
exit /b 1

:unsafe_data
echo install.cmd: "%CFGDIR%" is not safe to use (see the reason above); nothing was installed and the service was not changed. 1>&2
exit /b 6

rem Exit code 0 when this process has Administrator rights. "net session" needs them (and the
rem Server service); fltmc needs them too and works without that service. Under Wine
rem "net session" succeeds (everything runs as an administrator there).
:is_admin
"%NET%" session >nul 2>&1
if not errorlevel 1 exit /b 0
"%FLTMC%" >nul 2>&1
if not errorlevel 1 exit /b 0
exit /b 1

rem least_privilege - only the privilege the broker needs (SeChangeNotifyPrivilege: bypass
rem traverse checking; no impersonation privilege, so impersonating a pipe client yields an
rem identification-level token, which is all the broker asks for) and an unrestricted service SID,
rem then checks that the service runs as its virtual account. Where this sc.exe lacks "privs" or
rem "sidtype" (Wine's), it warns and writes the registry values those commands store
rem (RequiredPrivileges, ServiceSidType); a service manager that caches them applies them only
rem after Windows restarts, hence the warning.
:least_privilege
"%SC%" privs %SVC% SeChangeNotifyPrivilege >nul 2>&1
if errorlevel 1 call :reg_fallback privs RequiredPrivileges REG_MULTI_SZ SeChangeNotifyPrivilege
if errorlevel 1 exit /b 1
"%SC%" sidtype %SVC% unrestricted >nul 2>&1
if errorlevel 1 call :reg_fallback sidtype ServiceSidType REG_DWORD 1
if errorlevel 1 exit /b 1
rem The account as the registry holds it (value line: "ObjectName  REG_SZ  NT SERVICE\..."); "call"
rem keeps the quoted program path intact inside for /f, and Wine's find.exe has no /i.
set "OBJ="
for /f "tokens=2,*" %%A in ('call "%REG%" query "%SVCKEY%" /v ObjectName 2^>nul') do set "OBJ=%%B"
if /i "%OBJ%"=="%SVCACCOUNT%" exit /b 0
echo install.cmd: the %SVC% service is registered to run as "%OBJ%", not as "%SVCACCOUNT%" 1>&2
exit /b 1

rem reg_fallback COMMAND VALUE TYPE DATA - after "sc.exe COMMAND" failed: warns and writes VALUE.
:reg_fallback
echo install.cmd: warning: "%SC%" %~1 failed - this service control tool may not support it, as under Wine; writing %~2 to %SVCKEY% instead, which Windows may apply only after a restart. 1>&2
"%REG%" add "%SVCKEY%" /v %~2 /t %~3 /d %~4 /f >nul
if not errorlevel 1 exit /b 0
echo install.cmd: cannot write %~2 to %SVCKEY% 1>&2
exit /b 1

rem require FILE - sets FAILED when a file that must be installed is missing.
:require
if exist "%~1" exit /b 0
echo install.cmd: "%~nx1" is missing from the source folder "%~dp1" 1>&2
set "FAILED=1"
exit /b 1

rem copy_file SOURCE DESTDIR - copies one file, sets FAILED on error. A file in use is renamed
rem aside and deleted at the next restart of Windows (asyncipc-secure replace prints that).
:copy_file
"%SECURE%" replace "%~1" "%~2"
if not errorlevel 1 exit /b 0
echo install.cmd: cannot copy "%~1" to "%~2" 1>&2
set "FAILED=1"
exit /b 1

rem copy_tree SOURCE DEST - copies a folder tree, sets FAILED on error.
:copy_tree
"%XCOPY%" "%~1" "%~2\" /E /I /Y /Q >nul 2>&1
if not errorlevel 1 exit /b 0
echo install.cmd: cannot copy "%~1" to "%~2" 1>&2
set "FAILED=1"
exit /b 1

rem write_config - the default broker configuration (the same one the setup program writes).
rem A relative log_file is resolved by the broker against the config file's folder. The file
rem inherits the data folder's rights (the service reads it, users cannot). One
rem redirection per line: Wine's cmd loses the output of "( echo ... ) > file" when its own
rem stdout is not a console.
:write_config
> "%CFG%" echo {
>> "%CFG%" echo   "pipe_name": "asyncipc.broker",
>> "%CFG%" echo   "max_clients": 1024,
>> "%CFG%" echo   "max_payload": 16777216,
>> "%CFG%" echo   "max_queue_bytes": 8388608,
>> "%CFG%" echo   "log_level": "info",
>> "%CFG%" echo   "log_file": "logs\\broker.log",
>> "%CFG%" echo   "sddl": ""
>> "%CFG%" echo }
echo Wrote the default configuration "%CFG%".
exit /b 0

rem wait_running - after "sc start": 0 when the service is RUNNING, 2 as soon as it is STOPPED
rem again (it failed during start-up), 1 when it is still starting after 30 s.
:wait_running
set /a WAITLEFT=30
:wait_running_loop
"%SC%" query %SVC% | "%FIND%" "RUNNING" >nul
if not errorlevel 1 exit /b 0
"%SC%" query %SVC% | "%FIND%" "STOPPED" >nul
if not errorlevel 1 exit /b 2
if %WAITLEFT% leq 0 exit /b 1
set /a WAITLEFT-=1
"%PING%" -n 2 127.0.0.1 >nul
goto :wait_running_loop

rem wait_deleted - waits (30 s at most) until the service is gone (deletion can be delayed while
rem other programs hold a handle to it).
:wait_deleted
set /a WAITLEFT=30
:wait_deleted_loop
"%SC%" query %SVC% >nul 2>&1
if errorlevel 1 exit /b 0
if %WAITLEFT% leq 0 goto :wait_deleted_fail
set /a WAITLEFT-=1
"%PING%" -n 2 127.0.0.1 >nul
goto :wait_deleted_loop
:wait_deleted_fail
echo install.cmd: the %SVC% service is still registered, probably marked for deletion; close the Services console and retry 1>&2
exit /b 1
