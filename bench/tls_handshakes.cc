// tls_handshakes: how many mesh mTLS handshakes one core does, full and resumed, with the
// contexts the sidecars use (certs::MakeTlsContext: TLS 1.3, X25519/P-256, P-256 leaves from
// certs::CertificateAuthority, client certificate required). Used by bench/mtls_compare.py,
// which prints it next to `openssl speed ecdsap256 ecdhx25519` for the same machine.
//
// Both ends run in this one thread over an in-memory BIO pair, so there is no network and no
// scheduler in the figure: a handshake/s number is the CPU cost of client + server together,
// per core. The CPU time of each side is measured too (CLOCK_THREAD_CPUTIME_ID around its
// calls), which says what one sidecar pays per outbound (client) and inbound (server)
// connection. After the handshake each side checks the peer's SPIFFE ID as the proxy does, the
// client reads the server's session tickets, and both close with close_notify (a session of a
// connection freed without it cannot be resumed). A resumed handshake offers the ticket of the
// previous connection, as a sidecar does with the last ticket a peer sent.
//
//   tls_handshakes [--seconds 3]
//
// Prints one JSON object on stdout. Exit status 1 when a handshake fails or a resumption is
// refused (the figures would be wrong), 2 on a bad command line.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "certs/authority.h"
#include "certs/certificate.h"
#include "certs/key.h"
#include "certs/spiffe_id.h"
#include "certs/tls_context.h"

ABSL_FLAG(double, seconds, 3, "Seconds of handshakes of each kind (full, resumed).");

namespace {

using outrigger::certs::CertificateAuthority;
using outrigger::certs::PrivateKey;
using outrigger::certs::SpiffeId;
using outrigger::certs::SslContextPtr;

constexpr char kTrustDomain[] = "cluster.local";

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;
struct SessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using SessionPtr = std::unique_ptr<SSL_SESSION, SessionFree>;

// This thread's CPU time, in seconds.
double ThreadCpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A sidecar's identity: its own key and the chain the CA signed for it.
struct Identity {
  PrivateKey key;
  std::string chain_pem;
};

absl::StatusOr<Identity> Issue(const CertificateAuthority& ca, absl::string_view service) {
  absl::StatusOr<PrivateKey> key = PrivateKey::GenerateP256();
  if (!key.ok()) return key.status();
  const SpiffeId id{kTrustDomain, "default", std::string(service)};
  absl::StatusOr<std::string> csr = outrigger::certs::CreateCsr(*key, id);
  if (!csr.ok()) return csr.status();
  absl::StatusOr<std::string> chain = ca.Sign(*csr, id, absl::Hours(1), absl::Now());
  if (!chain.ok()) return chain.status();
  return Identity{*std::move(key), *std::move(chain)};
}

struct Totals {
  int64_t handshakes = 0;
  int64_t resumed = 0;
  double client_cpu = 0;
  double server_cpu = 0;
  double wall = 0;
  double cpu = 0;      // the whole loop: handshakes, SSL_new/SSL_free, BIO pairs
  std::string cipher;  // of the last connection
  std::string group;   // its key exchange
};

// Runs `fn` (one SSL call of one side) and adds its CPU time to `cpu`.
template <typename Fn>
int Timed(double& cpu, Fn fn) {
  const double t0 = ThreadCpu();
  const int r = fn();
  cpu += ThreadCpu() - t0;
  return r;
}

// One connection: handshake, identity checks, ticket read, close_notify both ways. Returns the
// client's session for the next connection (with its newest ticket).
absl::StatusOr<SessionPtr> Connect(SSL_CTX* client_ctx, SSL_CTX* server_ctx, SSL_SESSION* offer,
                                   Totals& t) {
  SslPtr client(SSL_new(client_ctx));
  SslPtr server(SSL_new(server_ctx));
  if (client == nullptr || server == nullptr) {
    return absl::InternalError("SSL_new: " + outrigger::certs::OpenSslError());
  }
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  if (BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) != 1) {
    return absl::InternalError("BIO_new_bio_pair: " + outrigger::certs::OpenSslError());
  }
  SSL_set_bio(client.get(), client_bio, client_bio);
  SSL_set_bio(server.get(), server_bio, server_bio);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  if (offer != nullptr && SSL_set_session(client.get(), offer) != 1) {
    return absl::InternalError("SSL_set_session: " + outrigger::certs::OpenSslError());
  }

  bool client_done = false;
  bool server_done = false;
  for (int round = 0; !(client_done && server_done); ++round) {
    if (round > 20) return absl::InternalError("the handshake does not progress");
    if (!client_done) {
      const int r = Timed(t.client_cpu, [&] { return SSL_do_handshake(client.get()); });
      if (r == 1) {
        client_done = true;
      } else if (SSL_get_error(client.get(), r) != SSL_ERROR_WANT_READ) {
        return absl::InternalError("client handshake: " + outrigger::certs::OpenSslError());
      }
    }
    if (!server_done) {
      const int r = Timed(t.server_cpu, [&] { return SSL_do_handshake(server.get()); });
      if (r == 1) {
        server_done = true;
      } else if (SSL_get_error(server.get(), r) != SSL_ERROR_WANT_READ) {
        return absl::InternalError("server handshake: " + outrigger::certs::OpenSslError());
      }
    }
  }
  // What the proxy does after every handshake: the peer's identity, from its verified chain.
  absl::StatusOr<SpiffeId> server_id;
  Timed(t.client_cpu, [&] {
    server_id = outrigger::certs::PeerSpiffeId(client.get());
    return 0;
  });
  absl::StatusOr<SpiffeId> client_id;
  Timed(t.server_cpu, [&] {
    client_id = outrigger::certs::PeerSpiffeId(server.get());
    return 0;
  });
  if (!server_id.ok())
    return absl::InternalError(absl::StrCat("client: ", server_id.status().message()));
  if (!client_id.ok())
    return absl::InternalError(absl::StrCat("server: ", client_id.status().message()));

  // The tickets arrive after the handshake: a read on the client takes them in.
  char byte;
  const int r = Timed(t.client_cpu, [&] { return SSL_read(client.get(), &byte, 1); });
  if (r > 0 || SSL_get_error(client.get(), r) != SSL_ERROR_WANT_READ) {
    return absl::InternalError("client: reading the session tickets failed: " +
                               outrigger::certs::OpenSslError());
  }
  const bool reused = SSL_session_reused(client.get()) == 1;
  if (offer != nullptr && !reused) {
    return absl::InternalError("the server did not resume the offered session");
  }
  ++t.handshakes;
  if (reused) ++t.resumed;
  if (t.cipher.empty()) {
    t.cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(client.get()));
    const char* group = OBJ_nid2sn(SSL_get_negotiated_group(client.get()));
    t.group = group != nullptr ? group : "?";
  }
  SessionPtr session(SSL_get1_session(client.get()));
  Timed(t.client_cpu, [&] { return SSL_shutdown(client.get()); });
  Timed(t.server_cpu, [&] {
    SSL_read(server.get(), &byte, 1);  // takes the client's close_notify
    return SSL_shutdown(server.get());
  });
  ERR_clear_error();
  if (session == nullptr || SSL_SESSION_is_resumable(session.get()) != 1) {
    return absl::InternalError("the client has no resumable session after the handshake");
  }
  return session;
}

// Handshakes for `seconds` of wall time; resumed ones each offer the previous connection's
// session (the first connection, a full handshake that makes one, is not counted).
absl::StatusOr<Totals> Measure(SSL_CTX* client_ctx, SSL_CTX* server_ctx, bool resume,
                               double seconds) {
  Totals warm;
  absl::StatusOr<SessionPtr> session = Connect(client_ctx, server_ctx, nullptr, warm);
  if (!session.ok()) return session.status();
  Totals t;
  const double cpu_start = ThreadCpu();
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(seconds);
  while (absl::Now() < end) {
    for (int i = 0; i < 16; ++i) {
      absl::StatusOr<SessionPtr> next =
          Connect(client_ctx, server_ctx, resume ? session->get() : nullptr, t);
      if (!next.ok()) return next.status();
      session = std::move(next);
    }
  }
  t.wall = absl::ToDoubleSeconds(absl::Now() - start);
  t.cpu = ThreadCpu() - cpu_start;
  return t;
}

// per_core_per_s counts all the thread's CPU time (connection setup and teardown too);
// client_cpu_us and server_cpu_us only each side's SSL calls; other_cpu_us is the rest
// (SSL_new, SSL_free, the BIO pair, the timing itself).
std::string Json(const Totals& t) {
  const double n = static_cast<double>(t.handshakes);
  const double per = n > 0 ? 1e6 / n : 0;
  return absl::StrCat(
      "{\"handshakes\": ", t.handshakes, ", \"resumed\": ", t.resumed, ", \"wall_s\": ", t.wall,
      ", \"cpu_s\": ", t.cpu, ", \"per_core_per_s\": ", t.cpu > 0 ? n / t.cpu : 0,
      ", \"wall_per_s\": ", t.wall > 0 ? n / t.wall : 0,
      ", \"client_cpu_us\": ", t.client_cpu * per, ", \"server_cpu_us\": ", t.server_cpu * per,
      ", \"other_cpu_us\": ", (t.cpu - t.client_cpu - t.server_cpu) * per, ", \"cipher\": \"",
      t.cipher, "\", \"group\": \"", t.group, "\"}");
}

int Fail(absl::string_view what, const absl::Status& status) {
  std::fprintf(stderr, "tls_handshakes: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "mesh mTLS handshakes per second and core, full and resumed, in memory.\n"
      "  tls_handshakes [--seconds 3]");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  if (rest.size() > 1 || !(seconds > 0) || seconds > 600) {
    std::fprintf(stderr, "tls_handshakes: --seconds must be in (0, 600], no other arguments\n");
    return 2;
  }

  absl::StatusOr<CertificateAuthority> ca =
      CertificateAuthority::CreateRoot(kTrustDomain, absl::Hours(24), absl::Now());
  if (!ca.ok()) return Fail("creating the CA", ca.status());
  absl::StatusOr<Identity> client_id = Issue(*ca, "productpage");
  if (!client_id.ok()) return Fail("issuing the client certificate", client_id.status());
  absl::StatusOr<Identity> server_id = Issue(*ca, "reviews");
  if (!server_id.ok()) return Fail("issuing the server certificate", server_id.status());

  const std::string bundle = ca->RootPem();
  const std::vector<std::string> alpn = {"http/1.1"};
  absl::StatusOr<SslContextPtr> client_ctx = outrigger::certs::MakeTlsContext(
      {client_id->chain_pem, &client_id->key, bundle}, {.server = false, .alpn = alpn});
  if (!client_ctx.ok()) return Fail("client context", client_ctx.status());
  absl::StatusOr<SslContextPtr> server_ctx = outrigger::certs::MakeTlsContext(
      {server_id->chain_pem, &server_id->key, bundle},
      {.server = true, .require_peer_certificate = true, .alpn = alpn});
  if (!server_ctx.ok()) return Fail("server context", server_ctx.status());

  absl::StatusOr<Totals> full = Measure(client_ctx->get(), server_ctx->get(), false, seconds);
  if (!full.ok()) return Fail("full handshakes", full.status());
  absl::StatusOr<Totals> resumed = Measure(client_ctx->get(), server_ctx->get(), true, seconds);
  if (!resumed.ok()) return Fail("resumed handshakes", resumed.status());

  std::printf("{\"openssl\": \"%s\", \"full\": %s, \"resumed\": %s}\n",
              OpenSSL_version(OPENSSL_VERSION), Json(*full).c_str(), Json(*resumed).c_str());
  return 0;
}
