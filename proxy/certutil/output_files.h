// Writing certutil's PEM files: never over an existing file, into directories created
// private (0700), keys 0600 and certificates 0644, all or nothing. Internal to certutil.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "proxy/certutil/cert_builder.h"

namespace proxy::certutil {

// `dir` + "/" + `name` (just `name` when `dir` is empty).
std::string joinPath(const std::string& dir, const std::string& name);
// Says which of `paths` exist, if any; true when at least one does.
bool reportExisting(const std::vector<std::string>& paths, std::ostream& err);
// Writes a certificate (0644) and its key (0600, encrypted when `pass` is set) as a pair;
// returns the exit code (kExitOk, or kExitFailed with the reason on `err`).
int writePair(const std::string& dir, const Issued& issued, const std::string& pass,
              const std::string& cert_path, const std::string& key_path, std::ostream& err);

}  // namespace proxy::certutil
