# ECS logs and the rotatable access log (issue 11 items 1 and 2). Included by
# CMakeLists.txt in this folder when the apm-tls-proxy target exists. Uses the operations
# stack (ops.cmake) and the TLS client that resumes sessions (tls.cmake).
if(NOT TARGET proxy_certutil)
  return()
endif()
proxy_integration_test(ecs_logs_test)
target_link_libraries(ecs_logs_test PRIVATE ops_support tls_integration_support)
