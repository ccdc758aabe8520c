// TLS contexts: real in-memory TLS 1.3 handshakes (a BIO pair, no sockets) between contexts
// built by MakeTlsContext, checking mTLS, the peer's SPIFFE ID, root rotation, ALPN and
// session resumption, and the configuration errors MakeTlsContext reports.
#include "certs/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <catch2/catch.hpp>
#include <string>

#include "certs/authority.h"
#include "tests/unit/certs/test_pki.h"

namespace outrigger::certs {
namespace {

using testing::Id;
using testing::IssueLeaf;
using testing::Leaf;
using testing::Unwrap;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

SslContextPtr Context(const Leaf& leaf, const std::string& bundle_pem, bool server,
                      std::vector<std::string> alpn = {}, bool require_peer = true) {
  TlsCredentials credentials{leaf.chain_pem, &leaf.key, bundle_pem};
  TlsOptions options{server, require_peer, std::move(alpn)};
  return Unwrap(MakeTlsContext(credentials, options));
}

// One client and one server SSL joined by a BIO pair, driven by hand.
class Connection {
 public:
  Connection(SSL_CTX* client_ctx, SSL_CTX* server_ctx, SSL_SESSION* session = nullptr)
      : client_(SSL_new(client_ctx)), server_(SSL_new(server_ctx)) {
    BIO* c = nullptr;
    BIO* s = nullptr;
    REQUIRE(BIO_new_bio_pair(&c, 0, &s, 0) == 1);
    SSL_set_bio(client_, c, c);
    SSL_set_bio(server_, s, s);
    SSL_set_connect_state(client_);
    SSL_set_accept_state(server_);
    if (session != nullptr) REQUIRE(SSL_set_session(client_, session) == 1);
  }
  ~Connection() {
    SSL_free(client_);
    SSL_free(server_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Both handshakes, then one message each way: in TLS 1.3 the client is done before the server
  // has judged its certificate, and the session tickets arrive after the handshake, so only the
  // exchange shows the server's verdict to the client and gives it a resumable session.
  bool Run() {
    bool client_done = false;
    bool server_done = false;
    for (int i = 0; i < 50 && !(client_done && server_done); ++i) {
      if (!client_done && !Step(client_, SSL_do_handshake(client_), &client_done, "client")) {
        return false;
      }
      if (!server_done && !Step(server_, SSL_do_handshake(server_), &server_done, "server")) {
        return false;
      }
    }
    if (!(client_done && server_done)) return false;
    return Send(client_, server_, "ping") && Send(server_, client_, "pong");
  }

  SSL* client() const { return client_; }
  SSL* server() const { return server_; }
  const std::string& error() const { return error_; }

 private:
  // Whether `ssl` may go on after returning `rc`.
  bool Step(SSL* ssl, int rc, bool* done, const char* side) {
    if (rc == 1) {
      *done = true;
      return true;
    }
    const int err = SSL_get_error(ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
    error_ = absl::StrCat(side, ": ", OpenSslError());
    return false;
  }

  bool Send(SSL* from, SSL* to, absl::string_view message) {
    if (SSL_write(from, message.data(), static_cast<int>(message.size())) <= 0) {
      error_ = absl::StrCat("write: ", OpenSslError());
      return false;
    }
    char buf[64];
    for (int i = 0; i < 10; ++i) {
      const int n = SSL_read(to, buf, sizeof(buf));
      if (n > 0) return absl::string_view(buf, static_cast<size_t>(n)) == message;
      bool ignored = false;
      if (!Step(to, n, &ignored, to == server_ ? "server read" : "client read")) return false;
    }
    error_ = "no data";
    return false;
  }

  SSL* client_;
  SSL* server_;
  std::string error_;
};

struct Mesh {
  CertificateAuthority ca =
      Unwrap(CertificateAuthority::CreateRoot("cluster.local", absl::Hours(24), absl::Now()));
};

TEST_CASE("mTLS between two sidecars of one CA: each side learns the other's SPIFFE ID", "[tls]") {
  Mesh mesh;
  Leaf server = IssueLeaf(mesh.ca, Id("shop", "cart"));
  Leaf client = IssueLeaf(mesh.ca, Id("shop", "frontend"));
  SslContextPtr server_ctx = Context(server, mesh.ca.RootPem(), true);
  SslContextPtr client_ctx = Context(client, mesh.ca.RootPem(), false);
  Connection conn(client_ctx.get(), server_ctx.get());
  INFO(conn.error());
  REQUIRE(conn.Run());
  CHECK(SSL_version(conn.client()) == TLS1_3_VERSION);
  CHECK(Unwrap(PeerSpiffeId(conn.server())) == Id("shop", "frontend"));
  CHECK(Unwrap(PeerSpiffeId(conn.client())) == Id("shop", "cart"));
  CHECK(SSL_session_reused(conn.client()) == 0);
}

TEST_CASE("a leaf of an intermediate CA is accepted by peers that trust only the root", "[tls]") {
  const absl::Time now = absl::Now();
  CertificateAuthority root =
      Unwrap(CertificateAuthority::CreateRoot("cluster.local", absl::Hours(24), now));
  testing::IntermediatePem inter = testing::SignIntermediate(root, "inter", absl::Hours(2), now);
  CertificateAuthority ca =
      Unwrap(CertificateAuthority::FromPem(inter.cert_pem + root.RootPem(), inter.key_pem));
  Leaf server = IssueLeaf(ca, Id("shop", "cart"));
  Leaf client = IssueLeaf(ca, Id("shop", "frontend"));
  Connection conn(Context(client, ca.RootPem(), false).get(),
                  Context(server, ca.RootPem(), true).get());
  INFO(conn.error());
  REQUIRE(conn.Run());
  CHECK(Unwrap(PeerSpiffeId(conn.server())) == Id("shop", "frontend"));
  CHECK(Unwrap(PeerSpiffeId(conn.client())) == Id("shop", "cart"));
}

TEST_CASE("a server requiring client certificates refuses a client without one", "[tls]") {
  Mesh mesh;
  Leaf server = IssueLeaf(mesh.ca, Id("shop", "cart"));
  Leaf client = IssueLeaf(mesh.ca, Id("shop", "frontend"));
  SslContextPtr client_ctx = Context(client, mesh.ca.RootPem(), false);
  {
    Connection conn(client_ctx.get(), Context(server, mesh.ca.RootPem(), true).get());
    SSL_certs_clear(conn.client());  // this connection presents nothing
    CHECK_FALSE(conn.Run());
    CHECK_THAT(conn.error(), Catch::Contains("peer did not return a certificate"));
  }
  {
    // Without require_peer_certificate the client gets in, but has no identity.
    Connection conn(client_ctx.get(), Context(server, mesh.ca.RootPem(), true, {}, false).get());
    SSL_certs_clear(conn.client());
    INFO(conn.error());
    REQUIRE(conn.Run());
    CHECK(Message(PeerSpiffeId(conn.server()).status()) == "the peer sent no certificate");
    CHECK(Unwrap(PeerSpiffeId(conn.client())) == Id("shop", "cart"));
  }
  {
    // ...and a client that has a certificate is still verified and identified.
    Connection conn(client_ctx.get(), Context(server, mesh.ca.RootPem(), true, {}, false).get());
    INFO(conn.error());
    REQUIRE(conn.Run());
    CHECK(Unwrap(PeerSpiffeId(conn.server())) == Id("shop", "frontend"));
  }
}

TEST_CASE("certificates of a foreign CA are refused on either side", "[tls]") {
  Mesh mesh;
  Mesh foreign;
  Leaf server = IssueLeaf(mesh.ca, Id("shop", "cart"));
  Leaf good_client = IssueLeaf(mesh.ca, Id("shop", "frontend"));
  Leaf bad_client = IssueLeaf(foreign.ca, Id("shop", "frontend"));
  Leaf bad_server = IssueLeaf(foreign.ca, Id("shop", "cart"));
  {
    Connection conn(Context(bad_client, mesh.ca.RootPem(), false).get(),
                    Context(server, mesh.ca.RootPem(), true).get());
    CHECK_FALSE(conn.Run());
    CHECK_THAT(conn.error(),
               Catch::StartsWith("server: ") && Catch::Contains("certificate verify failed"));
    CHECK(SSL_get_verify_result(conn.server()) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  }
  {
    Connection conn(Context(good_client, mesh.ca.RootPem(), false).get(),
                    Context(bad_server, foreign.ca.RootPem(), true).get());
    CHECK_FALSE(conn.Run());
    CHECK_THAT(conn.error(),
               Catch::StartsWith("client: ") && Catch::Contains("certificate verify failed"));
  }
}

TEST_CASE("an expired client certificate is refused", "[tls]") {
  Mesh mesh;
  Leaf server = IssueLeaf(mesh.ca, Id("shop", "cart"));
  Leaf expired =
      IssueLeaf(mesh.ca, Id("shop", "frontend"), absl::Hours(1), absl::Now() - absl::Hours(2));
  Connection conn(Context(expired, mesh.ca.RootPem(), false).get(),
                  Context(server, mesh.ca.RootPem(), true).get());
  CHECK_FALSE(conn.Run());
  CHECK(SSL_get_verify_result(conn.server()) == X509_V_ERR_CERT_HAS_EXPIRED);
  CHECK_THAT(Message(PeerSpiffeId(conn.server()).status()),
             Catch::Contains("did not verify: certificate has expired") ||
                 Catch::Contains("no certificate"));
}

TEST_CASE("a bundle with two roots accepts leaves of either (root rotation)", "[tls]") {
  Mesh old_root;
  Mesh new_root;
  const std::string bundle = old_root.ca.RootPem() + new_root.ca.RootPem();
  Leaf server = IssueLeaf(old_root.ca, Id("shop", "cart"));
  Leaf client = IssueLeaf(new_root.ca, Id("shop", "frontend"));
  Connection conn(Context(client, bundle, false).get(), Context(server, bundle, true).get());
  INFO(conn.error());
  REQUIRE(conn.Run());
  CHECK(Unwrap(PeerSpiffeId(conn.server())) == Id("shop", "frontend"));
  CHECK(Unwrap(PeerSpiffeId(conn.client())) == Id("shop", "cart"));
  // A side that trusts only the new root refuses the old root's server.
  Connection only_new(Context(client, new_root.ca.RootPem(), false).get(),
                      Context(server, bundle, true).get());
  CHECK_FALSE(only_new.Run());
}

std::string Alpn(SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

TEST_CASE("ALPN: the server picks the first of its protocols the client offers", "[tls]") {
  Mesh mesh;
  Leaf server = IssueLeaf(mesh.ca, Id("shop", "cart"));
  Leaf client = IssueLeaf(mesh.ca, Id("shop", "frontend"));
  const std::string root = mesh.ca.RootPem();
  auto negotiate = [&](std::vector<std::string> client_alpn, std::vector<std::string> server_alpn) {
    Connection conn(Context(client, root, false, std::move(client_alpn)).get(),
                    Context(server, root, true, std::move(server_alpn)).get());
    INFO(conn.error());
    REQUIRE(conn.Run());
    CHECK(Alpn(conn.client()) == Alpn(conn.server()));
    return Alpn(conn.client());
  };
  CHECK(negotiate({"h2", "http/1.1"}, {"h2", "http/1.1"}) == "h2");
  CHECK(negotiate({"http/1.1", "h2"}, {"h2"}) == "h2");
  CHECK(negotiate({"h2", "http/1.1"}, {"http/1.1", "h2"}) == "http/1.1");
  // Nothing in common, or one side without ALPN: the handshake goes on without a protocol.
  CHECK(negotiate({"h2"}, {"http/1.1"}).empty());
  CHECK(negotiate({}, {"h2"}).empty());
  CHECK(negotiate({"h2"}, {}).empty());
}

TEST_CASE("a client reconnecting with its saved session resumes it", "[tls]") {
  Mesh mesh;
  Leaf server = IssueLeaf(mesh.ca, Id("shop", "cart"));
  Leaf client = IssueLeaf(mesh.ca, Id("shop", "frontend"));
  SslContextPtr server_ctx = Context(server, mesh.ca.RootPem(), true, {"h2"});
  SslContextPtr client_ctx = Context(client, mesh.ca.RootPem(), false, {"h2"});
  SSL_SESSION* session = nullptr;
  {
    Connection first(client_ctx.get(), server_ctx.get());
    INFO(first.error());
    REQUIRE(first.Run());
    CHECK(SSL_session_reused(first.client()) == 0);
    session = SSL_get1_session(first.client());
    // A connection freed without sending close_notify marks its session not resumable.
    CHECK(SSL_shutdown(first.client()) >= 0);
  }
  REQUIRE(session != nullptr);
  CHECK(SSL_SESSION_is_resumable(session) == 1);
  {
    Connection second(client_ctx.get(), server_ctx.get(), session);
    INFO(second.error());
    REQUIRE(second.Run());
    CHECK(SSL_session_reused(second.client()) == 1);
    CHECK(SSL_session_reused(second.server()) == 1);
    // The identities survive resumption (they travel in the session).
    CHECK(Unwrap(PeerSpiffeId(second.server())) == Id("shop", "frontend"));
    CHECK(Unwrap(PeerSpiffeId(second.client())) == Id("shop", "cart"));
    CHECK(Alpn(second.client()) == "h2");
  }
  SSL_SESSION_free(session);
}

TEST_CASE("MakeTlsContext names the part of the configuration that is wrong", "[tls]") {
  Mesh mesh;
  Leaf leaf = IssueLeaf(mesh.ca, Id("shop", "cart"));
  PrivateKey other = Unwrap(PrivateKey::GenerateP256());
  const std::string root = mesh.ca.RootPem();
  auto error = [](TlsCredentials credentials, TlsOptions options = {}) {
    absl::StatusOr<SslContextPtr> ctx = MakeTlsContext(credentials, options);
    REQUIRE_FALSE(ctx.ok());
    return Message(ctx.status());
  };
  CHECK(error({leaf.chain_pem, nullptr, root}) == "key: missing");
  CHECK_THAT(error({leaf.chain_pem, &other, root}),
             Catch::StartsWith("key does not match the certificate (chain_pem certificate 1, "
                               "O=outrigger, CN=spiffe://cluster.local/ns/shop/sa/cart)"));
  CHECK_THAT(error({"", &leaf.key, root}), Catch::StartsWith("chain_pem: no PEM certificate"));
  CHECK_THAT(error({leaf.key.ToPem(), &leaf.key, root}),
             Catch::Equals("chain_pem: PEM block 1 is a private key, not a certificate"));
  CHECK_THAT(error({leaf.chain_pem, &leaf.key, ""}), Catch::StartsWith("bundle_pem: no PEM"));
  CHECK_THAT(error({leaf.chain_pem, &leaf.key, root}, {true, true, {"h2", ""}}),
             Catch::StartsWith("alpn[1]: '' must be 1 to 255 bytes long"));
  CHECK_THAT(error({leaf.chain_pem, &leaf.key, root}, {false, true, {std::string(300, 'x')}}),
             Catch::StartsWith("alpn[0]:"));
  CHECK(Message(PeerSpiffeId(nullptr).status()) == "no connection");
}

}  // namespace
}  // namespace outrigger::certs
