#include "proxy/certutil/output_files.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "proxy/certutil/certutil_cli.h"

namespace proxy::certutil {

namespace {

constexpr unsigned kCertMode = 0644;
constexpr unsigned kKeyMode = 0600;
constexpr unsigned kDirMode = 0700;

// mkdir -p, with kDirMode for the directories it creates; existing ones are left alone.
Status makeDirs(const std::string& path) {
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    struct stat st {};
    if (::stat(partial.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return Status::error(partial + " exists and is not a directory");
      continue;
    }
    if (::mkdir(partial.c_str(), kDirMode) != 0 && errno != EEXIST) {
      return Status::error("cannot create directory " + partial + ": " + std::strerror(errno));
    }
    // mkdir applies the umask; the directory will hold a private key, so set it exactly.
    if (::chmod(partial.c_str(), kDirMode) != 0) {
      return Status::error("cannot set the mode of " + partial + ": " + std::strerror(errno));
    }
  }
  return Status::ok();
}

bool pathExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}
struct Target {
  std::string path;
  std::string contents;
  unsigned mode;
};
// Refuses if any target exists (checking them all first, so nothing is half-written),
// creates `dir`, then writes each file. If a later write fails, the earlier ones are
// removed again.
int writeAll(const std::string& dir, const std::vector<Target>& targets, std::ostream& err) {
  std::vector<std::string> paths;
  for (const Target& t : targets) paths.push_back(t.path);
  if (reportExisting(paths, err)) return kExitFailed;
  if (Status s = makeDirs(dir); !s) {
    err << "certutil: " << s.message() << "\n";
    return kExitFailed;
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    if (Status s = writeNewFile(targets[i].path, targets[i].contents, targets[i].mode); !s) {
      err << "certutil: " << s.message() << "\n";
      for (size_t j = 0; j < i; ++j) ::unlink(targets[j].path.c_str());
      return kExitFailed;
    }
  }
  return kExitOk;
}
}  // namespace

std::string joinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}
// Says which of `paths` exist, if any; true when at least one does.
bool reportExisting(const std::vector<std::string>& paths, std::ostream& err) {
  std::vector<std::string> existing;
  for (const std::string& p : paths) {
    if (pathExists(p)) existing.push_back(p);
  }
  for (const std::string& p : existing) {
    err << "certutil: " << p << " already exists; refusing to overwrite it\n";
  }
  if (!existing.empty()) {
    err << "certutil: nothing was written. Remove the file" << (existing.size() > 1 ? "s" : "")
        << " or choose another --out directory or --name.\n";
  }
  return !existing.empty();
}
// Writes a certificate (0644) and its key (0600, encrypted when `pass` is set) as a pair.
int writePair(const std::string& dir, const Issued& issued, const std::string& pass,
              const std::string& cert_path, const std::string& key_path, std::ostream& err) {
  auto key_pem = keyToPem(issued.key.get(), pass);
  if (!key_pem) {
    err << "certutil: " << key_pem.status().message() << "\n";
    return kExitFailed;
  }
  return writeAll(
      dir,
      {{cert_path, certToPem(issued.cert.get()), kCertMode}, {key_path, key_pem.value(), kKeyMode}},
      err);
}
}  // namespace proxy::certutil
