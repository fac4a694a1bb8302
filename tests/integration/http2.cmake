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

# The conformance suite (h2/conformance.py, about a hundred connections) takes about 20 s,
# over h2c and again over TLS: each gets 60 s instead of proxy_integration_test's 120 s.
# This include file runs after catch_discover_tests' own, which registers the tests under
# these names (no space after the colon); `ctest --show-only=json-v1` shows the timeouts.
set(http2_conformance_timeout ${CMAKE_CURRENT_BINARY_DIR}/http2_conformance_timeout.cmake)
file(WRITE ${http2_conformance_timeout}
     "set_tests_properties(\"http2_conformance_test:The proxy passes the h2spec-style HTTP/2 "
     "conformance cases over h2c\" \"http2_conformance_test:Over TLS with ALPN h2 the "
     "conformance cases have the same verdicts\" PROPERTIES TIMEOUT 60)\n")
set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${http2_conformance_timeout})
