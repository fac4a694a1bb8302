# Real OpenTelemetry/gRPC clients (tests/clients, npm packages installed by
# scripts/setup-npm.sh) against apm-intake-demo over h2c, without the proxy. Included
# from tests/integration/CMakeLists.txt.
proxy_integration_test(otlp_clients_test)
