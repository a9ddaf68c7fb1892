# implib.cmake - the MSVC import library asyncipc.lib (cmake -P, called by installer/CMakeLists.txt):
#   reads the export table of DLL with READOBJ (llvm-readobj --coff-exports), writes DEF
#   (LIBRARY <dll name> / EXPORTS / one name a line) and runs DLLTOOL (llvm-dlltool) to make LIB,
#   a short-format import library as Microsoft's lib.exe makes it, for link.exe / lld-link
#   (Visual Studio). MinGW programs keep using libasyncipc.dll.a.
# Taken from the DLL itself, the .lib names exactly what the DLL exports.
foreach(v DLL READOBJ DLLTOOL DEF LIB)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "implib.cmake: ${v} is not set")
  endif()
endforeach()
execute_process(COMMAND ${READOBJ} --coff-exports ${DLL}
                OUTPUT_VARIABLE out RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "implib.cmake: ${READOBJ} --coff-exports ${DLL} failed: ${err}")
endif()
string(REGEX MATCHALL "\n  Name: [A-Za-z_][A-Za-z0-9_@]*" names "${out}")
list(TRANSFORM names REPLACE "^\n  Name: " "")
list(LENGTH names n)
if(n EQUAL 0)
  message(FATAL_ERROR "implib.cmake: ${DLL} exports nothing")
endif()
get_filename_component(dll_name ${DLL} NAME)
list(JOIN names "\n  " body)
file(WRITE ${DEF} "; ${dll_name}: the exports of the built DLL (made by installer/implib.cmake)\nLIBRARY ${dll_name}\nEXPORTS\n  ${body}\n")
execute_process(COMMAND ${DLLTOOL} -m i386:x86-64 -d ${DEF} -D ${dll_name} -l ${LIB}
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "implib.cmake: ${DLLTOOL} failed: ${err}")
endif()
message(STATUS "implib.cmake: ${LIB} with ${n} exports of ${dll_name}")
