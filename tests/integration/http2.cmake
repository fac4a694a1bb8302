# HTTP/2 and gRPC end to end against the real proxy binary (issue 10): the OTLP/gRPC
# exporters and grpc-js (tests/clients), curl and nghttp, and raw hostile frames from
# tests/integration/h2/h2peer.py (Debian's python3-h2). Included from CMakeLists.txt in
# this folder; each http2_*_test.cc is one scenario family.
file(GLOB http2_tests CONFIGURE_DEPENDS RELATIVE ${CMAKE_CURRENT_LIST_DIR}
     ${CMAKE_CURRENT_LIST_DIR}/http2_*_test.cc)
foreach(source ${http2_tests})
  get_filename_component(name ${source} NAME_WE)
  proxy_integration_test(${name})
  target_link_libraries(${name} PRIVATE ops_support scripted_upstream)
endforeach()
