// FUZZ_CHECK: the assertion of the fuzz targets. A failed property prints what broke and
// aborts, which libFuzzer reports as a crash and saves the input as crash-<sha1>.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond, what)                                                                   \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  (%s)\n", __FILE__, __LINE__, what, \
                   #cond);                                                                       \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)

namespace proxy::fuzz {

// True when `s` holds no byte that could end or split a header line: no control byte
// (0x00-0x1f, 0x7f). Tab is allowed only when `allow_tab`.
inline bool headerSafe(std::string_view s, bool allow_tab = false) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f) return false;
  }
  return true;
}

}  // namespace proxy::fuzz
