# stage.cmake - builds the dist tree (cmake -P, called by installer/CMakeLists.txt):
#   DIST/bin/      BIN_FILES (broker, aipc, asyncipc.dll, asyncipc-secure.exe: the installers'
#                  folder protection, run from here by install.cmd) and SCRIPTS (install.cmd,
#                  uninstall.cmd)
#   DIST/include/asyncipc/   HEADERS;  DIST/include/  TOP_HEADERS (async_ipc.h, the classic name)
#   DIST/lib/      IMPLIB (libasyncipc.dll.a for MinGW; asyncipc.lib for Visual Studio, when made)
#   DIST/lib/cmake/AsyncIPC/  PKG_FILES
#   DIST/docs/     DOCS (README.md's links into docs/ and sdk/include/ rewritten for that place)
# List arguments are separated by "|". The tree is rebuilt from scratch so nothing stale stays.
foreach(v DIST BIN_FILES SCRIPTS HEADERS TOP_HEADERS IMPLIB PKG_FILES DOCS STAMP)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "stage.cmake: ${v} is not set")
  endif()
  string(REPLACE "|" ";" ${v} "${${v}}")
endforeach()
file(REMOVE_RECURSE ${DIST})
file(MAKE_DIRECTORY ${DIST}/bin ${DIST}/include/asyncipc ${DIST}/lib/cmake/AsyncIPC ${DIST}/docs)
file(COPY ${BIN_FILES} ${SCRIPTS} DESTINATION ${DIST}/bin)
file(COPY ${HEADERS} DESTINATION ${DIST}/include/asyncipc)
file(COPY ${TOP_HEADERS} DESTINATION ${DIST}/include)
list(REMOVE_ITEM IMPLIB "")
file(COPY ${IMPLIB} DESTINATION ${DIST}/lib)
file(COPY ${PKG_FILES} DESTINATION ${DIST}/lib/cmake/AsyncIPC)
file(COPY ${DOCS} DESTINATION ${DIST}/docs)
file(READ ${DIST}/docs/README.md readme)   # DOCS always holds README.md
string(REPLACE "](docs/" "](" readme "${readme}")
string(REPLACE "](sdk/include/" "](../include/" readme "${readme}")
file(WRITE ${DIST}/docs/README.md "${readme}")
file(TOUCH ${STAMP})
