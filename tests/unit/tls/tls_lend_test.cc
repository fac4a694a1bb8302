// TlsSession's zero-copy input (lendCiphertext / keepLentCiphertext) and the decrypt into
// a caller's buffer (readPlaintext(char*, cap, produced)), issue 12: the connection lends
// the worker's shared read buffer and must never see SSL read it after it was reused.
#include <catch2/catch.hpp>
#include <string>

#include "proxy/tls/tls_context.h"
#include "proxy/tls/tls_session.h"
#include "tests/unit/tls/tls_test_support.h"

namespace proxy::tls {
namespace {

using IoStatus = TlsSession::IoStatus;

struct Pair {
  testing::TempDir dir;
  std::shared_ptr<TlsContext> ctx = testing::makeContext(testing::serverOptions(dir));
  testing::SslCtxPtr cctx = testing::clientCtx({});
  std::unique_ptr<TlsSession> client = TlsSession::createClient(cctx.get(), "localhost");
  std::unique_ptr<TlsSession> server = TlsSession::createServer(*ctx);

  // `plain` encrypted by the client, taken from its output.
  std::string ciphertextOf(const std::string& plain) {
    REQUIRE(client->writePlaintext(plain.data(), plain.size(), 0) == IoStatus::kOk);
    std::string wire(client->pendingCiphertext());
    client->consumeCiphertext(wire.size());
    return wire;
  }
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

TEST_CASE("Lent ciphertext is decrypted in place: what SSL leaves survives the lender",
          "[unit][tls]") {
  Pair p;
  REQUIRE(testing::handshake(*p.client, *p.server));
  const std::string plain = pattern(40000);  // three TLS records
  std::string wire = p.ciphertextOf(plain);

  p.server->lendCiphertext(wire.data(), wire.size());
  CHECK(p.server->hasBufferedInput());
  std::string first(20000, '\0');
  size_t produced = 0;
  REQUIRE(p.server->readPlaintext(first.data(), first.size(), &produced) == IoStatus::kOk);
  CHECK(produced == first.size());  // stopped at the cap, in the middle of a record
  p.server->keepLentCiphertext();
  // The lender reuses its buffer: the session must have copied what it had not read.
  std::string(wire.size(), 'Z').swap(wire);

  std::string rest;
  REQUIRE(p.server->readPlaintext(rest, 1 << 20) == IoStatus::kOk);
  CHECK(first + rest == plain);
  CHECK_FALSE(p.server->hasBufferedInput());
}

TEST_CASE("Ciphertext lent after older bytes is copied behind them, in order", "[unit][tls]") {
  Pair p;
  REQUIRE(testing::handshake(*p.client, *p.server));
  const std::string a = pattern(3000), b = pattern(5000);
  std::string wire_a = p.ciphertextOf(a), wire_b = p.ciphertextOf(b);

  p.server->receiveCiphertext(wire_a.data(), wire_a.size());  // not read yet
  p.server->lendCiphertext(wire_b.data(), wire_b.size());
  std::string(wire_b.size(), 'Z').swap(wire_b);  // lent too late to be read in place
  p.server->keepLentCiphertext();

  std::string got;
  REQUIRE(p.server->readPlaintext(got, 1 << 20) == IoStatus::kOk);
  CHECK(got == a + b);
}

TEST_CASE("A partial record lent and kept completes with the next bytes", "[unit][tls]") {
  Pair p;
  REQUIRE(testing::handshake(*p.client, *p.server));
  const std::string plain = pattern(1000);
  const std::string wire = p.ciphertextOf(plain);
  size_t split = GENERATE(1, 5, 200, 1020);
  std::string head = wire.substr(0, split), tail = wire.substr(split);

  p.server->lendCiphertext(head.data(), head.size());
  size_t produced = 0;
  char out[2048];
  REQUIRE(p.server->readPlaintext(out, sizeof out, &produced) == IoStatus::kOk);
  CHECK(produced == 0);  // not a whole record yet
  p.server->keepLentCiphertext();
  std::string(head.size(), 'Z').swap(head);

  p.server->lendCiphertext(tail.data(), tail.size());
  REQUIRE(p.server->readPlaintext(out, sizeof out, &produced) == IoStatus::kOk);
  p.server->keepLentCiphertext();
  CHECK(std::string(out, produced) == plain);
}

}  // namespace
}  // namespace proxy::tls
