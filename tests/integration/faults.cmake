# Fault scenarios (issue 9): an upstream that resets, stalls, closes keep-alive
# connections at a chosen moment or never answers, scripted in the test itself.
add_library(scripted_upstream STATIC ${CMAKE_CURRENT_LIST_DIR}/scripted_upstream.cc)
proxy_target_flags(scripted_upstream)
target_link_libraries(scripted_upstream PUBLIC Threads::Threads)

proxy_integration_test(proxy_faults_test)
target_link_libraries(proxy_faults_test PRIVATE ops_support scripted_upstream)

# The client-fault matrix: every connection state x FIN, RST, stall, lie; HTTP/1.1 and h2.
foreach(name client_fault_matrix_http1_test client_fault_matrix_http2_test)
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/${name}.cc)
    proxy_integration_test(${name})
    target_link_libraries(${name} PRIVATE ops_support)
  endif()
endforeach()

# The upstream-fault matrix: every upstream exchange state x FIN, RST, stall, lie; HTTP/1.1
# and h2c upstreams; the request body still streaming, and the idle pool from HTTP/2.
foreach(name upstream_fault_matrix_test upstream_fault_matrix_h2c_test
        upstream_fault_matrix_midbody_test)
  proxy_integration_test(${name})
  target_link_libraries(${name} PRIVATE ops_support scripted_upstream)
endforeach()
