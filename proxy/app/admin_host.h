// ServerAdminHost: answers the admin endpoint's questions (readiness, metrics) from
// the Server's state. Owned by the Server; lives on its control loop.
#pragma once

#include <string>

#include "proxy/admin/admin_server.h"

namespace proxy::app {

class Server;

class ServerAdminHost : public admin::AdminHost {
 public:
  explicit ServerAdminHost(Server& server) : server_(server) {}
  bool ready(std::string* reason) override;
  std::string renderMetrics() override;

 private:
  Server& server_;
};

}  // namespace proxy::app
