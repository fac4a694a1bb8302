# `apm-tls-proxy import` then `check`, and ${VAR} at check time (issue 11 items 3 and 4).
# Included by CMakeLists.txt in this folder, inside if(TARGET apm-tls-proxy).
proxy_integration_test(import_command_test)
