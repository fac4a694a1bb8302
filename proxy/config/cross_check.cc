// Rules that span keys, checked once every section is read: settings that contradict
// each other, addresses that collide or loop, plaintext beyond loopback.
#include <string>

#include "proxy/config/loader.h"
#include "proxy/config/upstream_url.h"

namespace proxy::config::detail {

void Loader::crossCheck() {
  const Config& c = config_;
  const SslConfig& ssl = c.ssl;
  if (ssl.present && !ssl.enabled) {
    bool others = false;
    if (const toml::table* t = find("ssl")->as_table()) others = t->size() > 1;
    if (others) {
      warn("ssl.enabled",
           "enabled = false: TLS is off and the proxy serves plain HTTP; the other [ssl] "
           "settings are ignored");
    }
  }
  if (ssl.enabled) {
    if (!ssl.allowed_clients.empty() && ssl.client_authentication == ClientAuth::kNone) {
      error("ssl.allowed_clients", nullptr,
            "an allow-list needs client certificates, but client_authentication is \"none\"; "
            "set it to \"required\" (or \"optional\")");
    }
    if (ssl.client_authentication == ClientAuth::kNone && ssl.client_authentication_explicit &&
        !ssl.certificate_authorities.empty()) {
      warn("ssl.client_authentication",
           "\"none\" is written explicitly, so no client certificate is requested and "
           "certificate_authorities is ignored (remove this key to require client "
           "certificates, as APM Server does)");
    }
    // client authentication without CAs: the TLS module warns when it loads the system
    // trust store (it names the file), so the warning is not repeated here.
    if (ssl.client_authentication == ClientAuth::kNone && !ssl.ca_sha256.empty()) {
      warn("ssl.ca_sha256",
           "client_authentication is \"none\", so no client chain is ever checked against "
           "these pins");
    }
    if (present("ssl.verification_mode") && ssl.verification_mode == VerificationMode::kNone) {
      warn("ssl.verification_mode",
           "\"none\" has no effect here: on the server side APM Server never disables "
           "client-certificate verification, and neither does apm-tls-proxy (use "
           "client_authentication to control client certificates)");
    }
    if (c.upstream.tcp && !isLoopbackHost(c.upstream.tcp->host)) {
      warn("upstream.url", "TLS is on but the upstream \"" + c.upstream.url +
                               "\" is plain HTTP and not on loopback: plaintext leaves the host");
    }
  }
  if (!c.ssl.enabled && !isLoopbackHost(c.server.host.host)) {
    // APM Server's own default, but never silently: agents send secret tokens and API keys.
    warn("server.host",
         "TLS is off (no [ssl] table, or ssl.enabled = false) and the proxy listens beyond "
         "loopback: agents' events, secret tokens and API keys travel in plaintext");
  }
  if (c.upstream.idle_timeout >= Millis{45'000} && present("upstream.idle_timeout")) {
    warn("upstream.idle_timeout",
         "should be shorter than the upstream's own idle timeout (APM Server: 45s), or the "
         "proxy may reuse a connection the upstream is closing");
  }
  auto sameAddress = [](const HostPort& a, const HostPort& b) {
    return a.port != 0 && a.port == b.port &&
           (a.host == b.host || isWildcardHost(a.host) || isWildcardHost(b.host));
  };
  if (c.admin.host && sameAddress(*c.admin.host, c.server.host)) {
    error("admin.host", find("admin.host"),
          "the same address as server.host (" + formatHostPort(c.server.host) +
              "); give the admin endpoint its own port");
  }
  if (c.upstream.tcp && c.upstream.tcp->port == c.server.host.port &&
      (c.upstream.tcp->host == c.server.host.host ||
       (isWildcardHost(c.server.host.host) && isLoopbackHost(c.upstream.tcp->host)))) {
    error("upstream.url", find("upstream.url"),
          "points at the proxy's own listen address (server.host = \"" +
              formatHostPort(c.server.host) + "\"): requests would loop");
  }
}
}  // namespace proxy::config::detail
