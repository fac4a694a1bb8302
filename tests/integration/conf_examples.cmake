# Every example in conf/ passes `apm-tls-proxy check`.
proxy_integration_test(conf_examples_test)
