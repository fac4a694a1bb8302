# Resource limits: max_connections and running out of file descriptors.
proxy_integration_test(proxy_limits_test)
