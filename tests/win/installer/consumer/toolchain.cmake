# Plain mingw-w64 toolchain for the consumer project: the compilers only, no find-root
# restriction, so find_package() searches CMAKE_PREFIX_PATH as it would on Windows.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
find_program(CMAKE_C_COMPILER NAMES x86_64-w64-mingw32-gcc-posix x86_64-w64-mingw32-gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES x86_64-w64-mingw32-g++-posix x86_64-w64-mingw32-g++ REQUIRED)
find_program(CMAKE_RC_COMPILER NAMES x86_64-w64-mingw32-windres REQUIRED)
# Static runtime: the programs run in a prefix that has no mingw runtime DLLs.
# (asyncipc.dll is still linked dynamically: its import library is named by full path.)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
