# Shared compile settings and helpers.
if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  set(AIPC_WARNINGS -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
      -Wno-missing-field-initializers)
  if(AIPC_WERROR)
    list(APPEND AIPC_WARNINGS -Werror)
  endif()
elseif(MSVC)
  set(AIPC_WARNINGS /W4 /wd4100)
endif()

if(WIN32)
  # Target Windows 7+ APIs (GetNamedPipeClientProcessId, CancelIoEx, SRW locks).
  add_compile_definitions(_WIN32_WINNT=0x0601 WINVER=0x0601 UNICODE _UNICODE
                          WIN32_LEAN_AND_MEAN NOMINMAX)
  if(MINGW)
    # Ship no libgcc/libstdc++/libwinpthread DLLs: `-static` makes the driver pick the static
    # runtime wherever it appends it (import libraries such as libkernel32.a and
    # libasyncipc.dll.a still link the DLLs). Programs then need only asyncipc.dll.
    add_link_options(-static)
  endif()
endif()

if(AIPC_SANITIZE AND NOT WIN32)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# aipc_target_defaults(target): warnings + C11 for our own targets.
function(aipc_target_defaults tgt)
  target_compile_options(${tgt} PRIVATE $<$<COMPILE_LANGUAGE:C>:${AIPC_WARNINGS}>)
endfunction()

if(AIPC_FUZZ AND NOT WIN32)
  # Coverage instrumentation for everything; only fuzz targets link the libFuzzer main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
