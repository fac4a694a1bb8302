# Shell tests of what a reader runs by hand: the quick start (scripts/quickstart.sh --smoke
# against the built binaries, on free ports, in a temporary state directory) and the ```sh
# blocks of docs/getting-started.md, certutil.md, agents.md and troubleshooting.md
# (convention at the top of docs_commands_test.sh). Included from tests/integration/CMakeLists.txt. Labelled
# "integration"; exit code 77 (a port the docs name is taken) reports the test as skipped.
if(NOT TARGET apm-tls-proxy OR NOT TARGET apm-intake-demo)
  return()
endif()

add_test(NAME "scripts: quickstart --smoke"
         COMMAND bash ${PROJECT_SOURCE_DIR}/tests/integration/quickstart_test.sh
                 $<TARGET_FILE:apm-tls-proxy> $<TARGET_FILE:apm-intake-demo>)
add_test(NAME "scripts: docs commands"
         COMMAND bash ${PROJECT_SOURCE_DIR}/tests/integration/docs_commands_test.sh
                 $<TARGET_FILE:apm-tls-proxy> $<TARGET_FILE:apm-intake-demo>)
set_tests_properties("scripts: quickstart --smoke" "scripts: docs commands" PROPERTIES
                     LABELS integration TIMEOUT 180 SKIP_RETURN_CODE 77)
# Both start servers on 127.0.0.1; the docs name fixed ports (8200, 8201, 8300, 8400), so
# the docs test must not overlap another run of itself.
set_tests_properties("scripts: docs commands" PROPERTIES RESOURCE_LOCK docs_ports)
