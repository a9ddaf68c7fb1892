@echo off
rem uninstall.cmd - removes what install.cmd (or the setup program) installed.
rem
rem Usage (from an elevated Command Prompt):  uninstall.cmd [/purge]
rem
rem Stops and deletes the AsyncIPCBroker service (waiting until its process has exited), removes
rem %ProgramFiles%\AsyncIPC and its bin folder from the system PATH. A file still in use by a
rem running program (a client that loaded asyncipc.dll, a running aipc.exe) and the folders
rem holding it are deleted at the next restart of Windows instead, and the output says so
rem (asyncipc-secure remove-tree; without asyncipc-secure.exe next to this script such a file makes
rem it fail). The configuration and logs in
rem %ProgramData%\AsyncIPC are kept unless /purge is given; /purge needs asyncipc-secure.exe next
rem to this script, which first checks that the folder was made by an administrator and holds no
rem reparse point (exit code 6 otherwise; the folder is kept). Without asyncipc-secure.exe next to
rem it, it waits for the service state only and leaves the PATH entry (with a warning).
rem Safe to run again (nothing installed is not an error). Exit code 0 on success.
rem Like install.cmd it calls every external program by its full path and avoids the constructs
rem Wine's cmd.exe gets wrong (see there).
setlocal EnableExtensions DisableDelayedExpansion

set "SVC=AsyncIPCBroker"
if not defined SystemRoot goto :no_env
if not defined ProgramData goto :no_env
set "SYS32=%SystemRoot%\System32"
set "SC=%SYS32%\sc.exe"
set "FIND=%SYS32%\find.exe"
set "NET=%SYS32%\net.exe"
set "FLTMC=%SYS32%\fltmc.exe"
set "PING=%SYS32%\ping.exe"
set "REG=%SYS32%\reg.exe"
set "SECURE=%~dp0asyncipc-secure.exe"
set "PFDIR=%ProgramW6432%"
if not defined PFDIR set "PFDIR=%ProgramFiles%"
set "DEST=%PFDIR%\AsyncIPC"
set "CFGDIR=%ProgramData%\AsyncIPC"
set "ARPKEY=HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\AsyncIPC"
set "EVENTKEY=HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\%SVC%"
set "PURGE="
if /i "%~1"=="/purge" set "PURGE=1"
if "%~1"=="/?" goto :usage
if /i "%~1"=="/h" goto :usage

call :is_admin
if errorlevel 1 goto :not_admin

rem --- service -----------------------------------------------------------------------------------
"%SC%" query %SVC% >nul 2>&1
if errorlevel 1 goto :files
echo Stopping the %SVC% service...
if not exist "%SECURE%" goto :stop_by_state
rem The service manager reports STOPPED before the process has exited and released its files.
"%SECURE%" stop-service %SVC% 30000
if errorlevel 1 goto :stop_failed
goto :stopped
:stop_by_state
"%SC%" query %SVC% | "%FIND%" "STOPPED" >nul
if errorlevel 1 "%SC%" stop %SVC% >nul 2>&1
call :wait_state STOPPED 30
if errorlevel 1 goto :stop_failed
:stopped
echo Deleting the %SVC% service...
"%SC%" delete %SVC% >nul
if errorlevel 1 (
  echo uninstall.cmd: "%SC%" delete %SVC% failed 1>&2
  exit /b 1
)
call :wait_deleted
if errorlevel 1 exit /b 1

rem --- the system PATH entry install.cmd or the setup program added -------------------------------
:files
if not exist "%SECURE%" goto :path_kept
"%SECURE%" path-remove "%DEST%\bin"
if errorlevel 1 echo uninstall.cmd: warning: could not remove "%DEST%\bin" from the system PATH 1>&2
goto :program_files
:path_kept
echo uninstall.cmd: warning: without "%SECURE%" the system PATH keeps "%DEST%\bin" if it holds it 1>&2

rem --- program files ---------------------------------------------------------------------------
:program_files
if not exist "%DEST%\" goto :registry
echo Removing "%DEST%"...
if not exist "%SECURE%" goto :rd_dest
rem It never follows a junction or link inside, and a file in use goes at the next restart.
"%SECURE%" remove-tree "%DEST%"
if errorlevel 1 goto :fail_dest
goto :registry
:rd_dest
rd /s /q "%DEST%" >nul 2>&1
if exist "%DEST%\" goto :fail_dest

rem --- Add/Remove Programs entry of the setup program, if it installed this copy, and the event
rem source (the events already logged stay; Event Viewer shows them without their text) ---------
:registry
"%REG%" query "%EVENTKEY%" >nul 2>&1
if errorlevel 1 goto :arp
"%REG%" delete "%EVENTKEY%" /f >nul 2>&1
"%REG%" query "%EVENTKEY%" >nul 2>&1
if not errorlevel 1 (
  echo uninstall.cmd: cannot delete the registry key %EVENTKEY% 1>&2
  exit /b 1
)
:arp
"%REG%" query "%ARPKEY%" >nul 2>&1
if errorlevel 1 goto :config
"%REG%" delete "%ARPKEY%" /f >nul 2>&1
"%REG%" query "%ARPKEY%" >nul 2>&1
if not errorlevel 1 (
  echo uninstall.cmd: cannot delete the registry key %ARPKEY% 1>&2
  exit /b 1
)

rem --- configuration and logs --------------------------------------------------------------------
:config
if not defined PURGE goto :keep_config
if not exist "%CFGDIR%\" goto :done
if not exist "%SECURE%" goto :no_secure
rem Locks the folder (nothing can be added while it is deleted) and refuses when it is owned by a
rem non-administrator (whoever made it should check it first) or holds a reparse point (planted
rem to aim the deletion elsewhere; rd /s should not follow one, the check does not rely on that).
"%SECURE%" purge "%CFGDIR%"
if errorlevel 1 goto :unsafe_purge
echo Removing "%CFGDIR%" as asked by /purge...
rd /s /q "%CFGDIR%" >nul 2>&1
if exist "%CFGDIR%\" goto :fail_cfg
goto :done
:keep_config
if not exist "%CFGDIR%\" goto :done
echo Keeping the configuration and logs in "%CFGDIR%"; uninstall.cmd /purge removes them.
:done
echo AsyncIPC is uninstalled.
exit /b 0

rem ================================================================================================
:usage
echo Usage: uninstall.cmd [/purge]
echo   Removes the %SVC% service and "%DEST%"; /purge also removes "%CFGDIR%".
exit /b 0

:not_admin
echo uninstall.cmd: Administrator rights are required. Open a Command Prompt with "Run as administrator" and run this script again. 1>&2
exit /b 5

:fail_dest
echo uninstall.cmd: cannot remove "%DEST%" completely - is a program from it still running? 1>&2
exit /b 1

:fail_cfg
echo uninstall.cmd: cannot remove "%CFGDIR%" completely - is a file in it open? 1>&2
exit /b 1

:stop_failed
echo uninstall.cmd: the %SVC% service or its process did not stop within 30 s 1>&2
exit /b 1

:no_secure
echo uninstall.cmd: /purge needs "%SECURE%"; "%CFGDIR%" was kept. 1>&2
exit /b 1

:unsafe_purge
echo uninstall.cmd: "%CFGDIR%" was kept: it is not safe to delete automatically (see the reason above). 1>&2
exit /b 6

:no_env
echo uninstall.cmd: the SystemRoot or ProgramData environment variable is not set 1>&2
exit /b 1

rem Exit code 0 when this process has Administrator rights (see install.cmd).
:is_admin
"%NET%" session >nul 2>&1
if not errorlevel 1 exit /b 0
"%FLTMC%" >nul 2>&1
if not errorlevel 1 exit /b 0
exit /b 1

rem wait_state STATE SECONDS - polls the service's state once a second until the service is in STATE.
:wait_state
set /a WAITLEFT=%~2
:wait_state_loop
"%SC%" query %SVC% | "%FIND%" "%~1" >nul
if not errorlevel 1 exit /b 0
if %WAITLEFT% leq 0 exit /b 1
set /a WAITLEFT-=1
"%PING%" -n 2 127.0.0.1 >nul
goto :wait_state_loop

rem wait_deleted - waits (30 s at most) until the service is gone.
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
echo uninstall.cmd: the %SVC% service is still registered, probably marked for deletion; close the Services console and retry 1>&2
exit /b 1
