# TLS integration tests (issue 3): the real proxy binary against real clients (openssl
# s_client, curl) and a BoringSSL client in the tests. Certificates are minted at test
# time with proxy_certutil, so nothing that can expire is committed. Included by
# CMakeLists.txt in this folder, inside if(TARGET apm-tls-proxy).
if(NOT TARGET proxy_certutil)
  return()
endif()

add_library(tls_integration_support STATIC ${CMAKE_CURRENT_LIST_DIR}/tls_support.cc)
proxy_target_flags(tls_integration_support)
target_link_libraries(tls_integration_support PUBLIC integration_harness proxy_certutil
                      boringssl_ssl Catch2::Catch2)

file(GLOB tls_integration_tests CONFIGURE_DEPENDS RELATIVE ${CMAKE_CURRENT_LIST_DIR}
     ${CMAKE_CURRENT_LIST_DIR}/tls_*_test.cc)
foreach(file ${tls_integration_tests})
  get_filename_component(name ${file} NAME_WE)
  proxy_integration_test(${name})
  target_link_libraries(${name} PRIVATE tls_integration_support)
endforeach()
