# Cross-compile for 64-bit Windows with Debian's mingw-w64 (x86_64-w64-mingw32-*).
# Usage: cmake -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake ...
# Also the toolchain for programs that use an installed AsyncIPC SDK (README, "Using the
# installed SDK from CMake"): -DCMAKE_PREFIX_PATH=<the installed AsyncIPC folder> is searched.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(_triple x86_64-w64-mingw32)
# The -posix variants give C++ std::thread (winpthreads); the C compiler is the same either way.
find_program(CMAKE_C_COMPILER NAMES ${_triple}-gcc-posix ${_triple}-gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES ${_triple}-g++-posix ${_triple}-g++ REQUIRED)
find_program(CMAKE_RC_COMPILER NAMES ${_triple}-windres REQUIRED)
# build/deps/mingw holds cJSON and Check cross-built by tools/setup.sh.
set(AIPC_MINGW_DEPS "${CMAKE_CURRENT_LIST_DIR}/../build/deps/mingw" CACHE PATH "mingw-w64 dependency prefix")
set(CMAKE_FIND_ROOT_PATH /usr/${_triple} ${AIPC_MINGW_DEPS})
# Libraries, headers and packages come only from the Windows roots, never from the Linux host
# (which may have its own cJSON, say). The prefixes given in CMAKE_PREFIX_PATH (cache or
# environment) are Windows trees too - an installed AsyncIPC, other SDKs - so they become roots
# as well; otherwise find_package(AsyncIPC) would look for them below the roots and fail.
foreach(_p IN LISTS CMAKE_PREFIX_PATH)
  list(APPEND CMAKE_FIND_ROOT_PATH "${_p}")
endforeach()
if(DEFINED ENV{CMAKE_PREFIX_PATH})
  file(TO_CMAKE_PATH "$ENV{CMAKE_PREFIX_PATH}" _env_prefixes)
  list(APPEND CMAKE_FIND_ROOT_PATH ${_env_prefixes})
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# The mingw runtime (libgcc, libstdc++, winpthreads) is linked statically into every program
# and DLL, so they need no runtime DLLs of their own on Windows (import libraries such as
# libkernel32.a and libasyncipc.dll.a still link their DLLs).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")
# Windows test programs run under Wine (tools/wine-run sets up the project-local prefix).
if(NOT CMAKE_CROSSCOMPILING_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${CMAKE_CURRENT_LIST_DIR}/../tools/wine-run")
endif()
