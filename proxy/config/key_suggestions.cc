// Unknown keys and tables: the message names the closest known key ("did you mean
// `idle_timeout`?"), the same name in another table, or the keys the table does have.
#include <algorithm>
#include <string>
#include <vector>

#include "proxy/config/loader.h"

namespace proxy::config::detail {

namespace {

std::string quoted(const std::string& s) { return "`" + s + "`"; }

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so that
// "timeuot" is one step from "timeout".
size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// How close `written` is to `known`, or npos when not close enough to suggest.
size_t closeness(const std::string& written, const std::string& known) {
  size_t shorter = std::min(written.size(), known.size());
  if (shorter >= 3 && (known.compare(0, written.size(), written) == 0 ||
                       written.compare(0, known.size(), known) == 0)) {
    return 2;  // a prefix ("idle" for "idle_timeout") ranks like two edits
  }
  size_t dist = editDistance(written, known);
  size_t limit = written.size() <= 3 ? 1 : 2;
  return dist <= limit ? dist : std::string::npos;
}

std::string parentOf(const std::string& path) {
  size_t dot = path.rfind('.');
  return dot == std::string::npos ? std::string() : path.substr(0, dot);
}

std::string leafOf(const std::string& path) {
  size_t dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

std::string tableLabel(const std::string& table) {
  return table.empty() ? "at the top level" : "in [" + table + "]";
}
}  // namespace

void Loader::reportUnknown(const std::string& path, SourcePos pos, bool is_table) {
  std::string parent = parentOf(path);
  std::string leaf = leafOf(path);
  // Candidates in the same table first, tables and keys alike.
  std::vector<std::string> siblings;
  for (const std::string& t : knownTables()) {
    if (parentOf(t) == parent) siblings.push_back(t);
  }
  for (const KeyInfo& k : knownKeys()) {
    if (parentOf(k.path) == parent) siblings.push_back(k.path);
  }
  std::string best;
  size_t best_score = std::string::npos;
  for (const std::string& s : siblings) {
    size_t score = closeness(leaf, leafOf(s));
    if (score < best_score) {
      best_score = score;
      best = s;
    }
  }
  std::string what = is_table ? "unknown table [" + path + "]"
                              : "unknown key " + quoted(leaf) + " " + tableLabel(parent);
  std::string message;
  if (!best.empty()) {
    bool best_is_table =
        std::find(knownTables().begin(), knownTables().end(), best) != knownTables().end();
    message =
        what + "; did you mean " + (best_is_table ? "[" + best + "]" : quoted(leafOf(best))) + "?";
  } else {
    // The right name in the wrong table ("certificate" under [server]).
    for (const KeyInfo& k : knownKeys()) {
      if (leafOf(k.path) == leaf) {
        message = what + "; did you mean " + quoted(leaf) + " in [" + parentOf(k.path) + "]?";
        break;
      }
    }
  }
  if (message.empty()) {
    std::string list;
    for (const std::string& s : siblings) {
      if (!list.empty()) list += ", ";
      bool s_is_table =
          std::find(knownTables().begin(), knownTables().end(), s) != knownTables().end();
      list += s_is_table ? "[" + s + "]" : leafOf(s);
    }
    message = what + (parent.empty() ? "; known tables: " : "; known keys: ") + list;
  }
  problems_.push_back(Problem{config_.file, pos, path, std::move(message), false});
}
}  // namespace proxy::config::detail
