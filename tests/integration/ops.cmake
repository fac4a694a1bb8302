# Operations scenarios (issue 5): certificate reload, graceful drain, admin endpoint and
# metrics, access and JSON logs, workers. Included by CMakeLists.txt in this directory
# when the apm-tls-proxy target exists; each ops_*_test.cc is one scenario family.
add_library(ops_support STATIC ${CMAKE_CURRENT_LIST_DIR}/ops_support.cc)
proxy_target_flags(ops_support)
target_link_libraries(ops_support PUBLIC integration_harness proxy_certutil boringssl_ssl
                      Catch2::Catch2)

file(GLOB ops_tests RELATIVE ${CMAKE_CURRENT_LIST_DIR} ${CMAKE_CURRENT_LIST_DIR}/ops_*_test.cc)
foreach(source ${ops_tests})
  get_filename_component(name ${source} NAME_WE)
  proxy_integration_test(${name})
  target_link_libraries(${name} PRIVATE ops_support)
endforeach()
