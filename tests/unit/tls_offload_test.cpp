// The TLS 1.3 handover (tls/tls_offload.h) against a real OpenSSL client: our server
// side does the handshake with OpenSSL exactly as a Connection does (TlsContext,
// tls_handshake on a non-blocking socket), moves to our record layer, frees the SSL,
// and then the OpenSSL client must read what we seal and we must read what it seals:
// that proves the keys, ivs and both sequence numbers taken at the handover.
// The client runs on memory BIOs so the test decides how its bytes reach our socket
// (one at a time, tampered, or with records of our own in between).

#include "tls/tls_offload.h"

#include <doctest/doctest.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tls/tls_context.h"
#include "tls/tls_io.h"

using comet::Tls13Records;
using comet::TlsContext;
using comet::TlsIo;
using comet::TlsOffload;

namespace {

// A self-signed P-256 certificate in two temporary PEM files, once per test binary.
struct Certificate {
  std::string cert_path = "/tmp/comet-tls-offload-test-cert-XXXXXX";
  std::string key_path = "/tmp/comet-tls-offload-test-key-XXXXXX";
  Certificate() {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    write(cert_path, [&](FILE* f) { PEM_write_X509(f, cert); });
    write(key_path,
          [&](FILE* f) { PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr); });
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  ~Certificate() {
    unlink(cert_path.c_str());
    unlink(key_path.c_str());
  }
  template <typename F>
  static void write(std::string& path, F&& body) {
    const int fd = mkstemp(path.data());
    FILE* f = fdopen(fd, "w");
    body(f);
    fclose(f);
  }
};

TlsContext& server_context() {
  static Certificate certificate;
  static std::unique_ptr<TlsContext> context = [] {
    std::string error;
    auto loaded = TlsContext::load(certificate.cert_path, certificate.key_path, error);
    REQUIRE_MESSAGE(loaded != nullptr, error);
    return loaded;
  }();
  return *context;
}

// One connection: our server side on sv[0], an OpenSSL client on memory BIOs whose
// bytes the test carries to and from sv[1].
struct Link {
  int server_fd = -1;
  int wire_fd = -1;  // the client's end of the socket
  SSL_CTX* client_ctx = nullptr;
  SSL* client = nullptr;
  BIO* client_in = nullptr;   // what the client reads (the test writes it)
  BIO* client_out = nullptr;  // what the client wrote (the test carries it)
  SSL* server = nullptr;
  std::unique_ptr<TlsOffload> offload;
  std::vector<char> scratch = std::vector<char>(64 * 1024);

  explicit Link(const char* suite = nullptr, int max_version = TLS1_3_VERSION,
                SSL_SESSION* resume = nullptr, uint8_t max_fragment = 0) {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    server_fd = sv[0];
    wire_fd = sv[1];
    fcntl(server_fd, F_SETFL, O_NONBLOCK);
    fcntl(wire_fd, F_SETFL, O_NONBLOCK);
    client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(client_ctx, max_version);
    if (suite != nullptr) REQUIRE(SSL_CTX_set_ciphersuites(client_ctx, suite) == 1);
    if (max_fragment != 0)
      REQUIRE(SSL_CTX_set_tlsext_max_fragment_length(client_ctx, max_fragment) == 1);
    client = SSL_new(client_ctx);
    client_in = BIO_new(BIO_s_mem());
    client_out = BIO_new(BIO_s_mem());
    SSL_set_bio(client, client_in, client_out);
    SSL_set_connect_state(client);
    SSL_set_tlsext_host_name(client, "localhost");
    if (resume != nullptr) SSL_set_session(client, resume);
    server = server_context().accept(server_fd);
    REQUIRE(server != nullptr);
  }
  ~Link() {
    offload.reset();
    if (server != nullptr) SSL_free(server);
    SSL_free(client);
    SSL_CTX_free(client_ctx);
    close(server_fd);
    close(wire_fd);
  }

  // The client's output onto the wire, `step` bytes per write (0: all at once), calling
  // `each` after every write.
  template <typename F>
  void client_to_wire(size_t step, F&& each) {
    char* data;
    const long pending = BIO_get_mem_data(client_out, &data);
    std::string bytes(data, static_cast<size_t>(pending));
    (void)BIO_reset(client_out);
    for (size_t pos = 0; pos < bytes.size();) {
      const size_t n = step == 0 ? bytes.size() - pos : std::min(step, bytes.size() - pos);
      REQUIRE(::write(wire_fd, bytes.data() + pos, n) == static_cast<ssize_t>(n));
      pos += n;
      each();
    }
  }
  void client_to_wire() {
    client_to_wire(0, [] {});
  }
  std::string take_client_output() {
    char* data;
    const long pending = BIO_get_mem_data(client_out, &data);
    std::string bytes(data, static_cast<size_t>(pending));
    (void)BIO_reset(client_out);
    return bytes;
  }
  void wire_to_client() {
    char buf[16384];
    ssize_t n;
    while ((n = ::read(wire_fd, buf, sizeof buf)) > 0)
      BIO_write(client_in, buf, static_cast<int>(n));
  }

  // The handshake as a Connection drives it; the client sends `early` right after its
  // Finished, before the server reads that Finished. Returns the server's last step.
  TlsIo handshake(const std::string& early = "") {
    TlsIo server_state = TlsIo::kWantRead;
    bool client_done = false;
    for (int i = 0; i < 20 && !(client_done && server_state == TlsIo::kOk); i++) {
      if (!client_done) {
        const int r = SSL_do_handshake(client);
        if (r == 1) {
          client_done = true;
          if (!early.empty())
            REQUIRE(SSL_write(client, early.data(), static_cast<int>(early.size())) > 0);
        } else {
          REQUIRE(SSL_get_error(client, r) == SSL_ERROR_WANT_READ);
        }
      }
      client_to_wire();
      if (server_state != TlsIo::kOk) server_state = comet::tls_handshake(server);
      if (server_state == TlsIo::kError) return server_state;
      wire_to_client();
    }
    return server_state;
  }

  // Handshake and handover; false when the handover was refused (TLS 1.2).
  bool hand_over(const std::string& early = "") {
    REQUIRE(handshake(early) == TlsIo::kOk);
    offload = TlsOffload::take_over(server);
    if (offload == nullptr) return false;
    SSL_free(server);
    server = nullptr;
    return true;
  }

  // What the server reads until `want` bytes came (or it stops with an error/close).
  TlsIo server_read(std::string& got_all, size_t want) {
    for (int spins = 0; got_all.size() < want && spins < 100000; spins++) {
      size_t got = 0;
      bool more = false;
      const TlsIo state = offload->read(server_fd, scratch.data(), scratch.size(), got, more);
      got_all.append(scratch.data(), got);
      if (state == TlsIo::kError || state == TlsIo::kClosed) return state;
      if (state == TlsIo::kWantRead && got == 0) break;
    }
    return TlsIo::kOk;
  }
  std::string client_send_server_reads(const std::string& message, size_t step = 0) {
    REQUIRE(SSL_write(client, message.data(), static_cast<int>(message.size())) ==
            static_cast<int>(message.size()));
    std::string got;
    client_to_wire(step, [&] { REQUIRE(server_read(got, message.size()) == TlsIo::kOk); });
    return got;
  }

  // Server output sealed by us, read by the OpenSSL client.
  std::string server_send_client_reads(const std::string& message) {
    evbuffer* out = evbuffer_new();
    evbuffer_add(out, message.data(), message.size());
    std::string got;
    for (int spins = 0; spins < 10000 && got.size() < message.size(); spins++) {
      const TlsIo state = offload->write(server_fd, out);
      REQUIRE(state != TlsIo::kError);
      wire_to_client();
      char buf[16384];
      int n;
      while ((n = SSL_read(client, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
      REQUIRE(SSL_get_error(client, n) == SSL_ERROR_WANT_READ);
    }
    CHECK(evbuffer_get_length(out) == 0);
    CHECK(offload->unsent() == 0);
    evbuffer_free(out);
    client_to_wire();  // anything the client wrote meanwhile (nothing but KeyUpdates)
    return got;
  }
};

std::string pattern(size_t size, char seed) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; i++) s[i] = static_cast<char>(seed + i * 7 % 251);
  return s;
}

const char* const kSuites[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                               "TLS_CHACHA20_POLY1305_SHA256"};

}  // namespace

TEST_CASE("TLS 1.3: both directions after the handover, every suite") {
  for (const char* suite : kSuites) {
    CAPTURE(suite);
    Link link(suite);
    // The request pipelined right behind the client's Finished stays in the socket for
    // us: OpenSSL read the handshake record by record and nothing else.
    REQUIRE(link.hand_over("GET / HTTP/1.1\r\n\r\n"));
    // OpenSSL wrote its NewSessionTickets under the application key: we go on after them.
    CHECK(link.offload->records().write_seq() == 2);
    CHECK(link.offload->records().read_seq() == 0);
    std::string first;
    REQUIRE(link.server_read(first, 18) == TlsIo::kOk);
    CHECK(first == "GET / HTTP/1.1\r\n\r\n");

    CHECK(link.server_send_client_reads("hello") == "hello");
    CHECK(link.client_send_server_reads("ping") == "ping");
    const std::string big = pattern(100 * 1000, 'a');  // 7 records of up to 16 KiB
    CHECK(link.server_send_client_reads(big) == big);
    CHECK(link.client_send_server_reads(big) == big);
    // Many small records in one read.
    std::string many;
    for (int i = 0; i < 200; i++) {
      const std::string part = "message " + std::to_string(i) + "\n";
      REQUIRE(SSL_write(link.client, part.data(), static_cast<int>(part.size())) > 0);
      many += part;
    }
    std::string got;
    link.client_to_wire();
    REQUIRE(link.server_read(got, many.size()) == TlsIo::kOk);
    CHECK(got == many);
    CHECK(link.offload->records().read_seq() == 1 + 1 + 7 + 200);
  }
}

TEST_CASE("TLS 1.3: records fed one byte at a time") {
  Link link;
  REQUIRE(link.hand_over());
  const std::string message = pattern(20000, 'x');  // two records, the second one partly
  CHECK(link.client_send_server_reads(message, 1) == message);
  CHECK(link.client_send_server_reads("tail", 1) == "tail");
}

TEST_CASE("TLS 1.3: partial writes across turns keep records whole") {
  Link link;
  REQUIRE(link.hand_over());
  int small = 4096;
  setsockopt(link.server_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  evbuffer* out = evbuffer_new();
  const std::string message = pattern(300 * 1000, 'p');
  evbuffer_add(out, message.data(), message.size());
  // The kernel takes a few KB per turn, cutting records anywhere.
  CHECK(link.offload->write(link.server_fd, out) == TlsIo::kWantWrite);
  CHECK(link.offload->unsent() > 0);
  std::string got;
  for (int spins = 0; spins < 100000 && got.size() < message.size(); spins++) {
    link.offload->write(link.server_fd, out);
    link.wire_to_client();
    char buf[16384];
    int n;
    while ((n = SSL_read(link.client, buf, sizeof buf)) > 0)
      got.append(buf, static_cast<size_t>(n));
  }
  CHECK(got == message);
  evbuffer_free(out);
}

TEST_CASE("TLS 1.3: the client's KeyUpdate(update_requested) moves both directions on") {
  for (const char* suite : kSuites) {
    CAPTURE(suite);
    Link link(suite);
    REQUIRE(link.hand_over());
    CHECK(link.client_send_server_reads("before") == "before");
    REQUIRE(SSL_key_update(link.client, SSL_KEY_UPDATE_REQUESTED) == 1);
    CHECK(link.client_send_server_reads("after") == "after");  // read with the next key
    CHECK(link.offload->records().read_seq() == 1);            // KeyUpdate, then from 0
    CHECK(link.offload->wants_write());                        // our KeyUpdate is owed
    // Ours goes first, under the old key; then the data under the new one.
    CHECK(link.server_send_client_reads("reply") == "reply");
    CHECK(link.offload->records().write_seq() == 1);
    CHECK_FALSE(link.offload->wants_write());
    CHECK(link.client_send_server_reads("again") == "again");
    CHECK(link.server_send_client_reads(pattern(50000, 'k')) == pattern(50000, 'k'));
    // Without a request the client moves its key alone; we owe nothing.
    REQUIRE(SSL_key_update(link.client, SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
    CHECK(link.client_send_server_reads("quiet") == "quiet");
    CHECK_FALSE(link.offload->wants_write());
    CHECK(link.server_send_client_reads("still") == "still");
  }
}

TEST_CASE("TLS 1.3: a KeyUpdate asked for while the server is silent goes out with no data") {
  Link link;
  REQUIRE(link.hand_over());
  REQUIRE(SSL_key_update(link.client, SSL_KEY_UPDATE_REQUESTED) == 1);
  CHECK(link.client_send_server_reads("x") == "x");
  evbuffer* empty = evbuffer_new();
  CHECK(link.offload->write(link.server_fd, empty) == TlsIo::kOk);
  CHECK_FALSE(link.offload->wants_write());
  evbuffer_free(empty);
  CHECK(link.server_send_client_reads("later") == "later");
}

TEST_CASE("TLS 1.3: close_notify both ways") {
  Link link;
  REQUIRE(link.hand_over());
  CHECK(link.client_send_server_reads("last words") == "last words");
  // The client's close_notify: data before it is delivered, then kClosed.
  REQUIRE(SSL_write(link.client, "bye", 3) == 3);
  SSL_shutdown(link.client);
  link.client_to_wire();
  size_t got = 0;
  bool more = false;
  CHECK(link.offload->read(link.server_fd, link.scratch.data(), link.scratch.size(), got, more) ==
        TlsIo::kOk);
  CHECK(std::string(link.scratch.data(), got) == "bye");
  CHECK(more);
  CHECK(link.offload->read(link.server_fd, link.scratch.data(), link.scratch.size(), got, more) ==
        TlsIo::kClosed);
  // Ours, when the sidecar closes: the client sees a clean end (not an error).
  link.offload->close(link.server_fd);
  link.wire_to_client();
  char buf[16];
  const int n = SSL_read(link.client, buf, sizeof buf);
  CHECK(n == 0);
  CHECK(SSL_get_error(link.client, n) == SSL_ERROR_ZERO_RETURN);
}

TEST_CASE("TLS 1.3: the sidecar's close_notify after output") {
  Link link;
  REQUIRE(link.hand_over());
  CHECK(link.server_send_client_reads("goodbye") == "goodbye");
  link.offload->close(link.server_fd);
  link.wire_to_client();
  char buf[16];
  const int n = SSL_read(link.client, buf, sizeof buf);
  CHECK(SSL_get_error(link.client, n) == SSL_ERROR_ZERO_RETURN);
}

TEST_CASE("TLS 1.3: a tampered record, an oversized one, a ChangeCipherSpec are errors") {
  SUBCASE("a flipped byte fails the tag") {
    Link link;
    REQUIRE(link.hand_over());
    REQUIRE(SSL_write(link.client, "secret", 6) == 6);
    std::string record = link.take_client_output();
    record[8] ^= 1;
    REQUIRE(::write(link.wire_fd, record.data(), record.size()) ==
            static_cast<ssize_t>(record.size()));
    std::string got;
    CHECK(link.server_read(got, 6) == TlsIo::kError);
    CHECK(got.empty());
    CHECK(link.offload->records().alert() == Tls13Records::kBadRecordMac);
    // The fatal alert we send is one the client can read.
    link.offload->close(link.server_fd);
    link.wire_to_client();
    char buf[16];
    CHECK(SSL_read(link.client, buf, sizeof buf) <= 0);
    CHECK(ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_SSLV3_ALERT_BAD_RECORD_MAC);
    ERR_clear_error();
  }
  SUBCASE("a record longer than 2^14 + 256") {
    Link link;
    REQUIRE(link.hand_over());
    const unsigned char header[] = {23, 3, 3, 0x41, 0x01};  // 16641 bytes
    REQUIRE(::write(link.wire_fd, header, sizeof header) == 5);
    std::string got;
    CHECK(link.server_read(got, 1) == TlsIo::kError);
    CHECK(link.offload->records().alert() == Tls13Records::kRecordOverflow);
  }
  SUBCASE("ChangeCipherSpec after the handshake") {
    Link link;
    REQUIRE(link.hand_over());
    const unsigned char ccs[] = {20, 3, 3, 0, 1, 1};
    REQUIRE(::write(link.wire_fd, ccs, sizeof ccs) == 6);
    std::string got;
    CHECK(link.server_read(got, 1) == TlsIo::kError);
    CHECK(link.offload->records().alert() == Tls13Records::kUnexpectedMessage);
  }
}

TEST_CASE("TLS 1.3: a resumed session hands over too (one ticket written)") {
  SSL_SESSION* session;
  {
    Link first;
    REQUIRE(first.hand_over());
    CHECK(first.server_send_client_reads("t") == "t");  // the client reads its tickets
    session = SSL_get1_session(first.client);
    REQUIRE(session != nullptr);
    // Freeing an SSL that did not shut down marks its session not resumable.
    SSL_set_shutdown(first.client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  }
  Link second(nullptr, TLS1_3_VERSION, session);
  REQUIRE(second.hand_over());
  REQUIRE(SSL_SESSION_is_resumable(session) == 1);
  CHECK(SSL_session_reused(second.client) == 1);
  // A resumption sends one ticket, not two: the count is what OpenSSL wrote, not assumed.
  CHECK(second.offload->records().write_seq() == 1);
  CHECK(second.server_send_client_reads("resumed") == "resumed");
  CHECK(second.client_send_server_reads("yes") == "yes");
  SSL_SESSION_free(session);
}

TEST_CASE("TLS 1.3 with a negotiated max_fragment_length keeps OpenSSL") {
  // RFC 6066: the client takes records of at most 512 bytes; our layer writes 16 KiB.
  Link link(nullptr, TLS1_3_VERSION, nullptr, TLSEXT_max_fragment_length_512);
  CHECK_FALSE(link.hand_over());
  REQUIRE(SSL_SESSION_get_max_fragment_length(SSL_get_session(link.client)) ==
          TLSEXT_max_fragment_length_512);
  // OpenSSL honours it: 2,000 bytes reach the client in records it accepts.
  const std::string message = pattern(2000, 'm');
  for (size_t sent = 0; sent < message.size();) {  // partial writes: a record at a time
    const int n =
        SSL_write(link.server, message.data() + sent, static_cast<int>(message.size() - sent));
    REQUIRE(n > 0);
    CHECK(n <= 512);
    sent += static_cast<size_t>(n);
  }
  link.wire_to_client();
  std::string got;
  char buf[4096];
  int n;
  while ((n = SSL_read(link.client, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  CHECK(got == message);
}

TEST_CASE("TLS 1.2 keeps OpenSSL") {
  Link link(nullptr, TLS1_2_VERSION);
  CHECK_FALSE(link.hand_over());
  CHECK(SSL_version(link.server) == TLS1_2_VERSION);
  // The SSL still works as before.
  REQUIRE(SSL_write(link.client, "hi", 2) == 2);
  link.client_to_wire();
  char buf[8];
  CHECK(SSL_read(link.server, buf, sizeof buf) == 2);
}
