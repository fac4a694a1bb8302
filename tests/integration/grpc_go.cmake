# grpc-go through the proxy: tests/clients/go/otlpcall, built with Debian's golang-go against
# golang-google-grpc-dev by scripts/build-go-clients.sh into <build>/go-clients. Included
# from CMakeLists.txt in this folder. Without Go at configure time the client is not built,
# and grpc_go_test fails, saying what to install.
set(GO_CLIENTS_DIR ${PROJECT_BINARY_DIR}/go-clients)
find_program(GO_EXECUTABLE go)
if(GO_EXECUTABLE AND EXISTS /usr/share/gocode/src/google.golang.org/grpc)
  file(GLOB_RECURSE go_client_sources CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/tests/clients/go/*.go)
  add_custom_command(
    OUTPUT ${GO_CLIENTS_DIR}/otlpcall
    COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/build-go-clients.sh ${GO_CLIENTS_DIR}
    DEPENDS ${go_client_sources} ${PROJECT_SOURCE_DIR}/scripts/build-go-clients.sh
    COMMENT "Building the Go gRPC test clients (grpc-go)"
    VERBATIM)
  add_custom_target(go_clients DEPENDS ${GO_CLIENTS_DIR}/otlpcall)
else()
  message(STATUS "go or golang-google-grpc-dev missing: grpc_go_test will fail "
                 "(scripts/setup.sh installs them)")
endif()

proxy_integration_test(grpc_go_test)
target_link_libraries(grpc_go_test PRIVATE ops_support)
target_compile_definitions(grpc_go_test PRIVATE OTLPCALL_BINARY="${GO_CLIENTS_DIR}/otlpcall")
if(TARGET go_clients)
  add_dependencies(grpc_go_test go_clients)
endif()
