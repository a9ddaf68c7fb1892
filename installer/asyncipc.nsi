; asyncipc.nsi - AsyncIPC-Setup-<version>.exe (built by installer/CMakeLists.txt with makensis).
;
;   makensis -DVERSION=0.1.0 -DDIST=<build>/dist/AsyncIPC-0.1.0 -DOUTFILE=<exe> asyncipc.nsi
;
; Installs from the dist tree: bin\ (asyncipc-broker.exe, aipc.exe, asyncipc.dll), include\,
; lib\ (import libraries + CMake package), docs\. Registers the AsyncIPCBroker service (automatic
; start, restart on failure, also after a stop with an error of its own: failureflag) to run as
; its own virtual account NT SERVICE\AsyncIPCBroker with only SeChangeNotifyPrivilege, and starts
; it; writes %ProgramData%\AsyncIPC\broker.json only when there is none; adds bin\ to the system
; PATH (the component "Add to PATH", on by default; /NOPATH when silent turns it off). Over an
; existing installation (an upgrade) it stops the service and waits until its process has exited,
; replaces the files (one still in use by a running program is renamed aside and deleted at the
; next restart of Windows), keeps the configuration and starts the service again. The uninstaller
; removes the PATH entry.
; Before anything changes, asyncipc-secure.exe (dist bin\, extracted to $PLUGINSDIR, not
; installed) creates or checks and protects the installation folder when it is outside Program
; Files, and %ProgramData%\AsyncIPC with logs\; it refuses folders or files a non-administrator
; owns, reparse points, hard links and unsafe parent folders, and setup then aborts (exit code 2
; when silent) with nothing installed. Its descriptors are the only definition of those rights.
; Every program setup runs is given by its full path ($SYSDIR\sc.exe, $PLUGINSDIR\...).
; Silent: Setup.exe /S [/NOPATH] [/D=C:\Path\Without\Quotes]   Uninstall: uninstall.exe /S [/PURGE]
; (/PURGE also removes %ProgramData%\AsyncIPC; without it configuration and logs are kept.)
; /NOPATH over an existing installation leaves the system PATH as it is (an entry an earlier
; installation added stays; the uninstaller removes it). A file the uninstaller finds in use (a
; client that loaded asyncipc.dll, a running aipc.exe) is deleted at the next restart of Windows
; with the folders holding it; the uninstaller then says so (details, a message box when not
; silent) and exits with 3010 (ERROR_SUCCESS_REBOOT_REQUIRED) instead of 0.

Target amd64-unicode          ; a 64-bit installer: the product is 64-bit, and wine64 runs no 32-bit code here
!ifndef VERSION
  !error "define VERSION (makensis -DVERSION=x.y.z)"
!endif
!ifndef DIST
  !error "define DIST (the dist tree made by installer/stage.cmake)"
!endif
!ifndef OUTFILE
  !define OUTFILE "AsyncIPC-Setup-${VERSION}.exe"
!endif

!define PRODUCT "AsyncIPC"
!define PUBLISHER "AsyncIPC project"
!define SVC "AsyncIPCBroker"
!define SVC_DISPLAY "AsyncIPC Broker"
!define SVC_DESCRIPTION "Routes AsyncIPC messages between local processes (topics, direct messages, requests)."
!define ARPKEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\AsyncIPC"
!define SVCKEY "SYSTEM\CurrentControlSet\Services\${SVC}"
!define EVENTKEY "SYSTEM\CurrentControlSet\Services\EventLog\Application\${SVC}"
!define SVC_ACCOUNT "NT SERVICE\${SVC}"
; The only privilege the broker keeps (bypass traverse checking). REG_MULTI_SZ, UTF-16LE with the
; list's two terminating NULs, for WriteRegMultiStr /REGEDIT5: "SeChangeNotifyPrivilege".
!define SVC_PRIVS "SeChangeNotifyPrivilege"
!define SVC_PRIVS_HEX "53,00,65,00,43,00,68,00,61,00,6e,00,67,00,65,00,4e,00,6f,00,74,00,69,00,66,00,79,00,50,00,72,00,69,00,76,00,69,00,6c,00,65,00,67,00,65,00,00,00,00,00"

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"
!include "StrFunc.nsh"
${StrStr}

Name "${PRODUCT} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${PRODUCT}"
InstallDirRegKey HKLM "${ARPKEY}" "InstallLocation"
RequestExecutionLevel admin
SetCompressor /SOLID lzma
ShowInstDetails show
ShowUninstDetails show
VIProductVersion "${VERSION}.0"
VIAddVersionKey /LANG=1033 "ProductName" "${PRODUCT}"
VIAddVersionKey /LANG=1033 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "FileDescription" "${PRODUCT} ${VERSION} Setup"
VIAddVersionKey /LANG=1033 "CompanyName" "${PUBLISHER}"
VIAddVersionKey /LANG=1033 "LegalCopyright" "${PUBLISHER}"

!define MUI_ABORTWARNING
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

; ---- service helpers (macros so that installer and uninstaller each get a copy) --------------
; WAIT_STATE STATE (installer only): polls `sc query` (every 500 ms, 30 s at most) until the output names STATE;
; leaves "ok", "timeout" or (waiting for RUNNING) "stopped" in $R9.
!macro WAIT_STATE STATE
  StrCpy $R8 0
  ${Do}
    nsExec::ExecToStack '"$SYSDIR\sc.exe" query ${SVC}'
    Pop $R7
    Pop $R6
    ${StrStr} $R5 $R6 "${STATE}"
    ${If} $R5 != ""
      StrCpy $R9 "ok"
      ${Break}
    ${EndIf}
    !if "${STATE}" == "RUNNING"
      ; STOPPED again after a successful "sc start": the broker failed during start-up.
      ${StrStr} $R5 $R6 "STOPPED"
      ${If} $R5 != ""
        StrCpy $R9 "stopped"
        ${Break}
      ${EndIf}
    !endif
    IntOp $R8 $R8 + 1
    ${If} $R8 > 60
      StrCpy $R9 "timeout"
      ${Break}
    ${EndIf}
    Sleep 500
  ${Loop}
!macroend

; WAIT_GONE: polls the service's registry key (every 500 ms, 30 s at most) until the service
; manager has really deleted it; "ok" or "timeout" in $R9.
!macro WAIT_GONE
  StrCpy $R8 0
  ${Do}
    ClearErrors
    ReadRegStr $R4 HKLM "${SVCKEY}" "ImagePath"
    ${If} ${Errors}
      StrCpy $R9 "ok"
      ${Break}
    ${EndIf}
    IntOp $R8 $R8 + 1
    ${If} $R8 > 60
      StrCpy $R9 "timeout"
      ${Break}
    ${EndIf}
    Sleep 500
  ${Loop}
!macroend

; STOP_SERVICE: stops the broker if it is registered and running, and waits (30 s at most) until
; the service manager reports STOPPED and the broker's process has exited (it holds its files a
; little longer than its service status says); aborts when it won't stop. Needs
; $PLUGINSDIR\asyncipc-secure.exe.
!macro STOP_SERVICE
  ClearErrors
  ReadRegStr $R4 HKLM "${SVCKEY}" "ImagePath"
  ${IfNot} ${Errors}
    DetailPrint "Stopping the ${SVC} service..."
    nsExec::ExecToLog '"$PLUGINSDIR\asyncipc-secure.exe" stop-service ${SVC} 30000'
    Pop $R7
    ${If} $R7 != 0
      Abort "The ${SVC} service or its process did not stop within 30 s (asyncipc-secure exit code $R7)."
    ${EndIf}
  ${EndIf}
!macroend

; INSTALL_BIN NAME: puts the new bin\NAME in place. A copy in use by a running program (a client
; that loaded asyncipc.dll, a running aipc.exe) is renamed aside and deleted at the next restart
; of Windows (asyncipc-secure replace; its message is in the details log).
!macro INSTALL_BIN NAME
  File "/oname=$PLUGINSDIR\bin\${NAME}" "${DIST}/bin/${NAME}"
  nsExec::ExecToLog '"$PLUGINSDIR\asyncipc-secure.exe" replace "$PLUGINSDIR\bin\${NAME}" "$INSTDIR\bin"'
  Pop $0
  ${If} $0 != 0
    Abort "Cannot install $INSTDIR\bin\${NAME} (asyncipc-secure exit code $0; the reason is in the details)."
  ${EndIf}
!macroend

; SECURE ARGS MESSAGE: runs asyncipc-secure.exe (extracted to $PLUGINSDIR) with ARGS; aborts with
; MESSAGE when it refuses (its reason is in the details log) or fails.
!macro SECURE ARGS MESSAGE
  nsExec::ExecToLog '"$PLUGINSDIR\asyncipc-secure.exe" ${ARGS}'
  Pop $0
  ${If} $0 != 0
    Abort "${MESSAGE} (asyncipc-secure exit code $0; the reason is in the details)."
  ${EndIf}
!macroend

Section "AsyncIPC (programs, service, SDK)" SecMain
  SectionIn RO
  SetShellVarContext all

  ; Folders first, before the service or any file changes: a refusal leaves everything as it was.
  InitPluginsDir
  File "/oname=$PLUGINSDIR\asyncipc-secure.exe" "${DIST}/bin/asyncipc-secure.exe"
  !insertmacro SECURE 'install "$INSTDIR" "$PROGRAMFILES64"' "The installation folder $INSTDIR is not safe to use; nothing was installed and the service was not changed"
  !insertmacro SECURE 'data "$APPDATA\AsyncIPC"' "$APPDATA\AsyncIPC is not safe to use; nothing was installed and the service was not changed"

  ; Upgrade / reinstall: the running broker holds its files.
  !insertmacro STOP_SERVICE

  SetOverwrite on
  SetOutPath "$INSTDIR\bin"
  CreateDirectory "$PLUGINSDIR\bin"
  !insertmacro INSTALL_BIN "asyncipc-broker.exe"
  !insertmacro INSTALL_BIN "aipc.exe"
  !insertmacro INSTALL_BIN "asyncipc.dll"
  SetOutPath "$INSTDIR\include"
  File "${DIST}/include/async_ipc.h"
  SetOutPath "$INSTDIR\include\asyncipc"
  File "${DIST}/include/asyncipc/*.h"
  File /nonfatal "${DIST}/include/asyncipc/*.hpp"
  SetOutPath "$INSTDIR\lib"
  File "${DIST}/lib/libasyncipc.dll.a"
  File /nonfatal "${DIST}/lib/asyncipc.lib"
  SetOutPath "$INSTDIR\lib\cmake\AsyncIPC"
  File "${DIST}/lib/cmake/AsyncIPC/AsyncIPCConfig.cmake"
  File "${DIST}/lib/cmake/AsyncIPC/AsyncIPCConfigVersion.cmake"
  SetOutPath "$INSTDIR\docs"
  File /r "${DIST}/docs/*"
  SetOutPath "$INSTDIR"

  ; Configuration: written once, never overwritten (an upgrade keeps the administrator's edits).
  ; It inherits the protected data folder's rights (the service reads it; users cannot).
  ${If} ${FileExists} "$APPDATA\AsyncIPC\broker.json"
    DetailPrint "Keeping the existing configuration $APPDATA\AsyncIPC\broker.json"
  ${Else}
    DetailPrint "Writing the default configuration $APPDATA\AsyncIPC\broker.json"
    ClearErrors
    FileOpen $0 "$APPDATA\AsyncIPC\broker.json" w
    ${If} ${Errors}
      Abort "Cannot write $APPDATA\AsyncIPC\broker.json"
    ${EndIf}
    ; A relative log_file is resolved by the broker against the config file's folder.
    FileWrite $0 '{$\r$\n'
    FileWrite $0 '  "pipe_name": "asyncipc.broker",$\r$\n'
    FileWrite $0 '  "max_clients": 1024,$\r$\n'
    FileWrite $0 '  "max_payload": 16777216,$\r$\n'
    FileWrite $0 '  "max_queue_bytes": 8388608,$\r$\n'
    FileWrite $0 '  "log_level": "info",$\r$\n'
    FileWrite $0 '  "log_file": "logs\\broker.log",$\r$\n'
    FileWrite $0 '  "sddl": ""$\r$\n'
    FileWrite $0 '}$\r$\n'
    FileClose $0
  ${EndIf}
  ; Once more over the written config: it gets the rights it inherits, and the owner
  ; Administrators should the installing account own it (what the service accepts).
  !insertmacro SECURE 'data "$APPDATA\AsyncIPC"' "Cannot protect $APPDATA\AsyncIPC"

  ; Uninstaller and the Add/Remove Programs entry.
  WriteUninstaller "$INSTDIR\uninstall.exe"
  WriteRegStr HKLM "${ARPKEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKLM "${ARPKEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${ARPKEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKLM "${ARPKEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${ARPKEY}" "DisplayIcon" "$INSTDIR\bin\asyncipc-broker.exe"
  WriteRegStr HKLM "${ARPKEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${ARPKEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${ARPKEY}" "NoModify" 1
  WriteRegDWORD HKLM "${ARPKEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKLM "${ARPKEY}" "EstimatedSize" "$0"

  ; Service: update an existing registration (sc config; Wine's sc has no config, so fall back
  ; to delete + create), or create it. $R3 = "create" when it must be created. It runs as its
  ; own virtual account (obj= NT SERVICE\<name>, no password: the service manager manages it).
  StrCpy $R3 "create"
  ClearErrors
  ReadRegStr $R4 HKLM "${SVCKEY}" "ImagePath"
  ${IfNot} ${Errors}
    nsExec::ExecToLog '"$SYSDIR\sc.exe" config ${SVC} binPath= "\"$INSTDIR\bin\asyncipc-broker.exe\"" start= auto DisplayName= "${SVC_DISPLAY}" obj= "${SVC_ACCOUNT}"'
    Pop $0
    ${If} $0 == 0
      StrCpy $R3 "keep"
    ${Else}
      DetailPrint "sc.exe config failed ($0); registering the ${SVC} service again"
      nsExec::ExecToLog '"$SYSDIR\sc.exe" delete ${SVC}'
      Pop $0
      !insertmacro WAIT_GONE
      ${If} $R9 != "ok"
        Abort "The ${SVC} service is still registered (marked for deletion?); close the Services console and retry."
      ${EndIf}
    ${EndIf}
  ${EndIf}
  ${If} $R3 == "create"
    DetailPrint "Registering the ${SVC} service..."
    nsExec::ExecToLog '"$SYSDIR\sc.exe" create ${SVC} binPath= "\"$INSTDIR\bin\asyncipc-broker.exe\"" start= auto DisplayName= "${SVC_DISPLAY}" obj= "${SVC_ACCOUNT}"'
    Pop $0
    ${If} $0 != 0
      Abort "sc create ${SVC} failed ($0)."
    ${EndIf}
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\sc.exe" description ${SVC} "${SVC_DESCRIPTION}"'
  Pop $0
  ${If} $0 != 0
    Abort "sc description ${SVC} failed ($0)."
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\sc.exe" failure ${SVC} reset= 86400 actions= restart/5000/restart/5000/restart/30000'
  Pop $0
  ${If} $0 != 0
    Abort "sc failure ${SVC} failed ($0)."
  ${EndIf}
  ; The failure actions also when the broker stops with an error of its own (a service-specific
  ; exit code, e.g. 3 when another program holds the pipe name), not only when it crashes.
  nsExec::ExecToLog '"$SYSDIR\sc.exe" failureflag ${SVC} 1'
  Pop $0
  ${If} $0 != 0
    DetailPrint "warning: sc.exe failureflag failed ($0; Wine's sc.exe has no failureflag): writing FailureActionsOnNonCrashFailures to HKLM\${SVCKEY} instead"
    ClearErrors
    WriteRegDWORD HKLM "${SVCKEY}" "FailureActionsOnNonCrashFailures" 1
    ${If} ${Errors}
      Abort "Cannot write FailureActionsOnNonCrashFailures of the ${SVC} service."
    ${EndIf}
  ${EndIf}
  ; Least privilege: only SeChangeNotifyPrivilege (no impersonation privilege: impersonating a
  ; pipe client yields an identification-level token, all the broker needs) and an unrestricted
  ; service SID. Wine's sc.exe has no privs/sidtype: then warn and write the registry values
  ; those commands store (Windows may apply values written that way only after a restart).
  nsExec::ExecToLog '"$SYSDIR\sc.exe" privs ${SVC} ${SVC_PRIVS}'
  Pop $0
  ${If} $0 != 0
    DetailPrint "warning: sc.exe privs failed ($0; Wine's sc.exe has no privs): writing RequiredPrivileges to HKLM\${SVCKEY} instead"
    ClearErrors
    WriteRegMultiStr /REGEDIT5 HKLM "${SVCKEY}" "RequiredPrivileges" ${SVC_PRIVS_HEX}
    ${If} ${Errors}
      Abort "Cannot write RequiredPrivileges of the ${SVC} service."
    ${EndIf}
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\sc.exe" sidtype ${SVC} unrestricted'
  Pop $0
  ${If} $0 != 0
    DetailPrint "warning: sc.exe sidtype failed ($0; Wine's sc.exe has no sidtype): writing ServiceSidType to HKLM\${SVCKEY} instead"
    ClearErrors
    WriteRegDWORD HKLM "${SVCKEY}" "ServiceSidType" 1
    ${If} ${Errors}
      Abort "Cannot write ServiceSidType of the ${SVC} service."
    ${EndIf}
  ${EndIf}
  ; The broker's Application-log events read as text in Event Viewer: the event source's
  ; messages are the message table in asyncipc-broker.exe.
  ClearErrors
  WriteRegExpandStr HKLM "${EVENTKEY}" "EventMessageFile" "$INSTDIR\bin\asyncipc-broker.exe"
  WriteRegDWORD HKLM "${EVENTKEY}" "TypesSupported" 7
  ${If} ${Errors}
    Abort "Cannot register the event source HKLM\${EVENTKEY}."
  ${EndIf}
  ReadRegStr $0 HKLM "${SVCKEY}" "ObjectName"
  ${If} $0 != "${SVC_ACCOUNT}"
    Abort "The ${SVC} service is registered to run as '$0', not as ${SVC_ACCOUNT}."
  ${EndIf}
  DetailPrint "Starting the ${SVC} service..."
  nsExec::ExecToLog '"$SYSDIR\sc.exe" start ${SVC}'
  Pop $0
  !insertmacro WAIT_STATE "RUNNING"
  ${If} $R9 != "ok"
    ; Silent installs end with exit code 2; the broker's reason shows with `asyncipc-broker run`.
    Abort "The ${SVC} service did not start ($R9). Run $\"$INSTDIR\bin\asyncipc-broker.exe$\" run in a console to see why (for example an invalid $APPDATA\AsyncIPC\broker.json)."
  ${EndIf}
SectionEnd

; aipc and asyncipc-broker by name in new Command Prompts. asyncipc-secure edits the registry
; value itself: an NSIS string holds 1024 characters, a PATH up to 32767.
Section "Add AsyncIPC to the system PATH" SecPath
  SetShellVarContext all
  nsExec::ExecToLog '"$PLUGINSDIR\asyncipc-secure.exe" path-add "$INSTDIR\bin"'
  Pop $0
  ${If} $0 != 0
    DetailPrint "warning: $INSTDIR\bin was not added to the system PATH (asyncipc-secure exit code $0); use the full paths"
  ${EndIf}
SectionEnd

Function .onInit
  SetShellVarContext all
  UserInfo::GetAccountType
  Pop $0
  ${If} $0 != "Admin"
    MessageBox MB_ICONSTOP|MB_OK "Administrator rights are required to install ${PRODUCT}." /SD IDOK
    SetErrorLevel 5
    Quit
  ${EndIf}
  ; /NOPATH: leave the system PATH alone (the component unticked).
  ${GetParameters} $0
  ClearErrors
  ${GetOptions} $0 "/NOPATH" $1
  ${IfNot} ${Errors}
    SectionSetFlags ${SecPath} 0
  ${EndIf}
FunctionEnd

Function un.onInit
  SetShellVarContext all
  UserInfo::GetAccountType
  Pop $0
  ${If} $0 != "Admin"
    MessageBox MB_ICONSTOP|MB_OK "Administrator rights are required to uninstall ${PRODUCT}." /SD IDOK
    SetErrorLevel 5
    Quit
  ${EndIf}
FunctionEnd

Section "Uninstall"
  SetShellVarContext all
  InitPluginsDir
  File "/oname=$PLUGINSDIR\asyncipc-secure.exe" "${DIST}/bin/asyncipc-secure.exe"
  !insertmacro STOP_SERVICE
  ClearErrors
  ReadRegStr $R4 HKLM "${SVCKEY}" "ImagePath"
  ${IfNot} ${Errors}
    DetailPrint "Deleting the ${SVC} service..."
    nsExec::ExecToLog '"$SYSDIR\sc.exe" delete ${SVC}'
    Pop $0
    ${If} $0 != 0
      Abort "sc delete ${SVC} failed ($0)."
    ${EndIf}
    !insertmacro WAIT_GONE
    ${If} $R9 != "ok"
      Abort "The ${SVC} service is still registered (marked for deletion?); close the Services console and retry."
    ${EndIf}
  ${EndIf}

  ; The PATH entry the setup program added (none when it was installed with /NOPATH).
  nsExec::ExecToLog '"$PLUGINSDIR\asyncipc-secure.exe" path-remove "$INSTDIR\bin"'
  Pop $0
  ${If} $0 != 0
    DetailPrint "warning: could not remove $INSTDIR\bin from the system PATH (asyncipc-secure exit code $0)"
  ${EndIf}

  ; Only what the setup program installed: $INSTDIR may be a folder the user chose with /D=.
  ; A file in use by a running program is deleted at the next restart of Windows.
  Delete /REBOOTOK "$INSTDIR\bin\asyncipc-broker.exe"
  Delete /REBOOTOK "$INSTDIR\bin\aipc.exe"
  Delete /REBOOTOK "$INSTDIR\bin\asyncipc.dll"
  Delete /REBOOTOK "$INSTDIR\bin\*.old"
  RMDir /REBOOTOK "$INSTDIR\bin"
  RMDir /r "$INSTDIR\include\asyncipc"
  Delete "$INSTDIR\include\async_ipc.h"
  RMDir "$INSTDIR\include"
  Delete "$INSTDIR\lib\libasyncipc.dll.a"
  Delete "$INSTDIR\lib\asyncipc.lib"
  RMDir /r "$INSTDIR\lib\cmake\AsyncIPC"
  RMDir "$INSTDIR\lib\cmake"
  RMDir "$INSTDIR\lib"
  RMDir /r "$INSTDIR\docs"
  Delete "$INSTDIR\uninstall.exe"
  ${If} ${RebootFlag}
    ; A file above was in use: it goes at the next restart, and the folder holding it after it.
    RMDir /REBOOTOK "$INSTDIR"
    DetailPrint "Files in use by running programs (above) are deleted at the next restart of Windows."
    MessageBox MB_ICONINFORMATION|MB_OK "${PRODUCT} is uninstalled. Some of its files were in use by running programs; Windows deletes them at its next restart." /SD IDOK
    SetErrorLevel 3010   ; ERROR_SUCCESS_REBOOT_REQUIRED: what silent callers look for
  ${Else}
    RMDir "$INSTDIR"
  ${EndIf}
  DeleteRegKey HKLM "${ARPKEY}"
  DeleteRegKey HKLM "${EVENTKEY}"

  ${GetParameters} $0
  ClearErrors
  ${GetOptions} $0 "/PURGE" $1
  ${IfNot} ${Errors}
    ; Lock the folder, then refuse if a non-administrator owns it or it holds a reparse point
    ; (RMDir /r must not walk into what a junction points to).
    nsExec::ExecToLog '"$PLUGINSDIR\asyncipc-secure.exe" purge "$APPDATA\AsyncIPC"'
    Pop $0
    ${If} $0 != 0
      Abort "$APPDATA\AsyncIPC was kept: it is not safe to delete automatically (asyncipc-secure exit code $0; the reason is in the details)."
    ${EndIf}
    DetailPrint "Removing $APPDATA\AsyncIPC (/PURGE)"
    RMDir /r "$APPDATA\AsyncIPC"
  ${Else}
    DetailPrint "Keeping the configuration and logs in $APPDATA\AsyncIPC"
  ${EndIf}
SectionEnd
