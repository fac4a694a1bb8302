// PROXY_CHECK: abort with a message when an invariant breaks, in every build.
// For broken invariants and OOM only; never for conditions the network controls.
#pragma once

#include <cstdio>
#include <cstdlib>

#define PROXY_CHECK(cond, msg)                                                                 \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "PROXY_CHECK failed at %s:%d: %s: %s\n", __FILE__, __LINE__, #cond, \
                   msg);                                                                       \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

#ifndef NDEBUG
#define PROXY_DCHECK(cond, msg) PROXY_CHECK(cond, msg)
#else
#define PROXY_DCHECK(cond, msg) \
  do {                          \
  } while (0)
#endif
