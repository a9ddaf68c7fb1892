/*
 * async_ipc.h - compatibility header under the classic AsyncIPC name.
 *
 * Classic AsyncIPC sources (`#include "async_ipc.h"`, IPipeDelegate / INamedPipe /
 * CreateInstance / InitEasyLog) compile unchanged against this SDK: only the include path
 * changes. C++ gets the classic classes of <asyncipc/asyncipc.hpp>; C gets the C structs of
 * the same names from <asyncipc/asyncipc.h>.
 *
 * Switching a classic Visual Studio project over (all configurations, x64):
 *   1. C/C++ > General > Additional Include Directories: add <install>\include
 *      (by default C:\Program Files\AsyncIPC\include); remove the old AsyncIPC source folder.
 *   2. Linker > General > Additional Library Directories: add <install>\lib; Linker > Input >
 *      Additional Dependencies: add asyncipc.lib (an SDK built with Visual Studio) or
 *      libasyncipc.dll.a (the mingw-w64 build the installer ships). Remove the old AsyncIPC
 *      .cpp files / static library from the project.
 *   3. Copy <install>\bin\asyncipc.dll next to the .exe (a post-build "xcopy /y /d" step),
 *      or put <install>\bin on PATH.
 * CMake projects use find_package(AsyncIPC) and AsyncIPC::asyncipc instead (see README.md).
 */
#ifndef ASYNCIPC_CLASSIC_ASYNC_IPC_H
#define ASYNCIPC_CLASSIC_ASYNC_IPC_H

#ifdef __cplusplus
#include "asyncipc/asyncipc.hpp"
#else
#include "asyncipc/asyncipc.h"
#endif

#endif /* ASYNCIPC_CLASSIC_ASYNC_IPC_H */
