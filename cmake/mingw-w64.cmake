# Cross-compile for 64-bit Windows with Debian's mingw-w64 (x86_64-w64-mingw32-*).
# Usage: cmake -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake ...
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
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Windows test programs run under Wine (tools/wine-run sets up the project-local prefix).
if(NOT CMAKE_CROSSCOMPILING_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${CMAKE_CURRENT_LIST_DIR}/../tools/wine-run")
endif()
