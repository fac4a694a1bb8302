#include "proxy/app/admin_host.h"

#include "proxy/admin/metrics.h"
#include "proxy/app/server.h"
#include "proxy/tls/tls_context.h"

namespace proxy::app {

bool ServerAdminHost::ready(std::string* reason) { return server_.ready(reason); }

std::string ServerAdminHost::renderMetrics() { return server_.renderMetrics(); }

Status Server::startAdmin() {
  if (!config_.admin.host) return Status::ok();
  admin_host_ = std::make_unique<ServerAdminHost>(*this);
  admin_ = std::make_unique<admin::AdminServer>(&loop_, *admin_host_);
  Status st = admin_->start(*config_.admin.host);
  if (!st) return st.withContext("admin endpoint " + config::formatHostPort(*config_.admin.host));
  admin_port_ = admin_->boundPort();  // the admin server logs its own address
  return Status::ok();
}

void Server::stopAdmin() {
  if (admin_) admin_->close();
}

std::string Server::renderMetrics() const {
  admin::MetricsSnapshot snap;
  for (const auto& w : workers_) snap.workers.push_back(&w->stats());
  for (size_t i = 0; i < snap.handshake_failure_reasons.size(); ++i) {
    snap.handshake_failure_reasons[i] = tls::toString(static_cast<tls::HandshakeFailure>(i));
  }
  snap.build = admin::currentBuildInfo();
  snap.start_time_seconds = static_cast<double>(start_unix_);
  std::string reason;
  snap.ready = ready(&reason);
  snap.draining = draining_;
  if (tls_) {
    const tls::CertificateInfo& c = tls_->serverCertificate();
    snap.certificates.push_back({"server", c.source, 0, c.subject, c.not_after});
    unsigned idx = 0;
    std::string last_source;
    for (const tls::CertificateInfo& ca : tls_->certificateAuthorities()) {
      idx = ca.source == last_source ? idx + 1 : 0;
      last_source = ca.source;
      snap.certificates.push_back({"ca", ca.source, idx, ca.subject, ca.not_after});
    }
  }
  snap.reload_successes = reload_successes_;
  snap.reload_failures = reload_failures_;
  snap.last_reload_success_seconds = static_cast<double>(last_reload_unix_);
  return admin::renderMetrics(snap);
}

}  // namespace proxy::app
