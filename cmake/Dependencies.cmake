# Finds the Debian packages apm-tls-proxy builds against and says which package to
# install when one is missing. See ../shared/reference/dependencies.md.
include_guard(GLOBAL)

function(proxy_require_file path package)
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "missing ${path}: install the Debian package '${package}' "
                        "(or run scripts/setup.sh)")
  endif()
endfunction()

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(UV IMPORTED_TARGET libuv>=1.44)
if(NOT UV_FOUND)
  message(FATAL_ERROR "libuv >= 1.44 not found: install the Debian package 'libuv1-dev'")
endif()

find_package(tomlplusplus 3 QUIET)
if(NOT tomlplusplus_FOUND)
  message(FATAL_ERROR "toml++ 3 not found: install the Debian package 'libtomlplusplus-dev'")
endif()

# nghttp2 (HTTP/2 framing, HPACK, flow control) for both sides of the proxy.
pkg_check_modules(NGHTTP2 IMPORTED_TARGET libnghttp2>=1.52)
if(NOT NGHTTP2_FOUND)
  message(FATAL_ERROR "libnghttp2 >= 1.52 not found: install the Debian package 'libnghttp2-dev'")
endif()

# yaml-cpp, only for `apm-tls-proxy import apm-server.yml`.
find_package(yaml-cpp 0.7 QUIET)
if(NOT yaml-cpp_FOUND)
  message(FATAL_ERROR "yaml-cpp 0.7 not found: install the Debian package 'libyaml-cpp-dev'")
endif()

# BoringSSL from Android, as Debian ships it: no pkg-config and no CMake package.
# Its headers must come before the system OpenSSL headers, and its libraries are
# linked by full path so that -lssl never resolves to OpenSSL.
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch
                OUTPUT_VARIABLE PROXY_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT PROXY_MULTIARCH)
  set(PROXY_MULTIARCH x86_64-linux-gnu)
endif()
set(BORINGSSL_INCLUDE_DIR /usr/include/android)
set(BORINGSSL_LIB_DIR /usr/lib/${PROXY_MULTIARCH}/android)
proxy_require_file(${BORINGSSL_INCLUDE_DIR}/openssl/ssl.h android-libboringssl-dev)
proxy_require_file(${BORINGSSL_LIB_DIR}/libssl.so android-libboringssl-dev)
add_library(boringssl_crypto SHARED IMPORTED GLOBAL)
set_target_properties(boringssl_crypto PROPERTIES
  IMPORTED_LOCATION ${BORINGSSL_LIB_DIR}/libcrypto.so
  IMPORTED_NO_SONAME FALSE
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR}
  INTERFACE_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR})
add_library(boringssl_ssl SHARED IMPORTED GLOBAL)
set_target_properties(boringssl_ssl PROPERTIES
  IMPORTED_LOCATION ${BORINGSSL_LIB_DIR}/libssl.so
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR}
  INTERFACE_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR}
  INTERFACE_LINK_LIBRARIES boringssl_crypto)
set(CMAKE_BUILD_RPATH ${BORINGSSL_LIB_DIR})
set(CMAKE_INSTALL_RPATH ${BORINGSSL_LIB_DIR})

# llhttp: Debian ships the C sources; we compile them into a static library.
set(LLHTTP_SRC_DIR /usr/share/llhttp)
set(LLHTTP_INCLUDE_DIR /usr/share/include/llhttp)
proxy_require_file(${LLHTTP_SRC_DIR}/llhttp.c node-llhttp)
proxy_require_file(${LLHTTP_INCLUDE_DIR}/llhttp.h node-llhttp)
add_library(llhttp STATIC ${LLHTTP_SRC_DIR}/llhttp.c ${LLHTTP_SRC_DIR}/api.c
                          ${LLHTTP_SRC_DIR}/http.c)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
set_target_properties(llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 99)
target_compile_options(llhttp PRIVATE -w -O2)
# llhttp's strict mode is a compile-time switch, not a lenient flag: without it llhttp
# 8.1 skips the two bytes after chunk data unchecked ("5\r\nhelloXX0\r\n\r\n") and
# accepts spaces inside header names ("Host : x"), both smuggling vectors. Defined on
# the one llhttp library so no binary can link a non-strict copy (a corpus test in
# tests/unit/http fails without it).
target_compile_definitions(llhttp PRIVATE LLHTTP_STRICT_MODE=1)

if(PROXY_BUILD_TESTS)
  find_package(Catch2 2 QUIET)
  if(NOT Catch2_FOUND)
    message(FATAL_ERROR "Catch2 v2 not found: install the Debian package 'catch2'")
  endif()
endif()
