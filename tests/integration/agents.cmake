# A real Elastic APM agent (elastic-apm-node, tests/clients/apm-agent.mjs) through the
# proxy, configured as docs/agents.md says. Included by CMakeLists.txt in this folder.
proxy_integration_test(apm_agent_test)
target_link_libraries(apm_agent_test PRIVATE ops_support)
