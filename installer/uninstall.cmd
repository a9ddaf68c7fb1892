@echo off
rem uninstall.cmd - removes what install.cmd (or the setup program) installed.
rem
rem Usage (from an elevated Command Prompt):  uninstall.cmd [/purge]
rem
rem Stops and deletes the AsyncIPCBroker service and removes %ProgramFiles%\AsyncIPC. The
rem configuration and logs in %ProgramData%\AsyncIPC are kept unless /purge is given.
rem Safe to run again (nothing installed is not an error). Exit code 0 on success.
rem Like install.cmd it avoids the constructs Wine's cmd.exe gets wrong (see there).
setlocal EnableExtensions DisableDelayedExpansion

set "SVC=AsyncIPCBroker"
set "PFDIR=%ProgramW6432%"
if not defined PFDIR set "PFDIR=%ProgramFiles%"
set "DEST=%PFDIR%\AsyncIPC"
set "CFGDIR=%ProgramData%\AsyncIPC"
set "ARPKEY=HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\AsyncIPC"
set "PURGE="
if /i "%~1"=="/purge" set "PURGE=1"
if "%~1"=="/?" goto :usage
if /i "%~1"=="/h" goto :usage

call :is_admin
if errorlevel 1 goto :not_admin

rem --- service -----------------------------------------------------------------------------------
sc query %SVC% >nul 2>&1
if errorlevel 1 goto :files
echo Stopping the %SVC% service...
sc query %SVC% | find "STOPPED" >nul
if errorlevel 1 sc stop %SVC% >nul 2>&1
call :wait_state STOPPED 30
if errorlevel 1 (
  echo uninstall.cmd: the %SVC% service did not stop within 30 s 1>&2
  exit /b 1
)
echo Deleting the %SVC% service...
sc delete %SVC% >nul
if errorlevel 1 (
  echo uninstall.cmd: "sc delete %SVC%" failed 1>&2
  exit /b 1
)
call :wait_deleted
if errorlevel 1 exit /b 1

rem --- program files ---------------------------------------------------------------------------
:files
if not exist "%DEST%\" goto :registry
echo Removing "%DEST%"...
rd /s /q "%DEST%" >nul 2>&1
if exist "%DEST%\" goto :fail_dest

rem --- Add/Remove Programs entry of the setup program, if it installed this copy ---------------
:registry
reg query "%ARPKEY%" >nul 2>&1
if errorlevel 1 goto :config
reg delete "%ARPKEY%" /f >nul 2>&1
reg query "%ARPKEY%" >nul 2>&1
if not errorlevel 1 (
  echo uninstall.cmd: cannot delete the registry key %ARPKEY% 1>&2
  exit /b 1
)

rem --- configuration and logs --------------------------------------------------------------------
:config
if not defined PURGE goto :keep_config
if not exist "%CFGDIR%\" goto :done
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

rem Exit code 0 when this process has Administrator rights (see install.cmd).
:is_admin
net session >nul 2>&1
if not errorlevel 1 exit /b 0
fltmc >nul 2>&1
if not errorlevel 1 exit /b 0
exit /b 1

rem wait_state STATE SECONDS - polls "sc query" once a second until the service is in STATE.
:wait_state
set /a WAITLEFT=%~2
:wait_state_loop
sc query %SVC% | find "%~1" >nul
if not errorlevel 1 exit /b 0
if %WAITLEFT% leq 0 exit /b 1
set /a WAITLEFT-=1
ping -n 2 127.0.0.1 >nul
goto :wait_state_loop

rem wait_deleted - waits (30 s at most) until the service is gone.
:wait_deleted
set /a WAITLEFT=30
:wait_deleted_loop
sc query %SVC% >nul 2>&1
if errorlevel 1 exit /b 0
if %WAITLEFT% leq 0 goto :wait_deleted_fail
set /a WAITLEFT-=1
ping -n 2 127.0.0.1 >nul
goto :wait_deleted_loop
:wait_deleted_fail
echo uninstall.cmd: the %SVC% service is still registered, probably marked for deletion; close the Services console and retry 1>&2
exit /b 1
