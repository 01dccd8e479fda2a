// comet-tls-footprint: heap that OpenSSL itself keeps per server-side TLS connection,
// without any server around it. tls-vs-nchan.sh reports it next to the sidecar's
// measured memory per TLS subscriber, so what TLS adds can be told apart from the
// sidecar's own per-connection state.
//
// usage: comet-tls-footprint CERT KEY [N]
// N (default 1000) socketpairs; a forked child runs the client side of each handshake,
// this process the server side with an SSL_CTX set up as the sidecar's
// (sidecar/tls/tls_context.cpp: TLS 1.2+, SSL_MODE_RELEASE_BUFFERS, no session cache).
// Prints one JSON line: glibc heap in use per connection after SSL_new alone, after a
// full handshake (what a TLS 1.2 subscriber keeps), after the handshake without
// SSL_MODE_RELEASE_BUFFERS, and after the TLS 1.3 handover to the sidecar's own record
// layer (sidecar/tls/tls_offload.h: the SSL freed, what a TLS 1.3 subscriber keeps).
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "tls/tls_offload.h"

namespace {

size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

SSL_CTX* server_context(const char* cert, const char* key, bool release_buffers) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS:!RC4:!3DES");
  long mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
  if (release_buffers) mode |= SSL_MODE_RELEASE_BUFFERS;
  SSL_CTX_set_mode(ctx, mode);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    exit(2);
  }
  return ctx;
}

// Bytes per connection held by n server SSLs after SSL_new (handshake = false) or after
// a full handshake with a client in a child process; with `offload`, by the record state
// each connection moved to after the handshake (the SSL freed).
size_t measure(SSL_CTX* ctx, int n, bool handshake, bool offload = false) {
  std::vector<int> server_fd(n), client_fd(n);
  for (int i = 0; i < n; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      perror("socketpair");
      exit(2);
    }
    server_fd[i] = sv[0];
    client_fd[i] = sv[1];
  }
  pid_t child = -1;
  if (handshake) {
    child = fork();
    if (child == 0) {
      SSL_CTX* c = SSL_CTX_new(TLS_client_method());
      SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
      for (int i = 0; i < n; i++) {
        SSL* s = SSL_new(c);
        SSL_set_fd(s, client_fd[i]);
        SSL_set_tlsext_host_name(s, "localhost");
        if (SSL_connect(s) != 1) _exit(1);
      }
      pause();
      _exit(0);
    }
  }
  for (int i = 0; i < n; i++) close(client_fd[i]);
  std::vector<SSL*> ssl(n);
  std::vector<std::unique_ptr<comet::TlsOffload>> offloaded(n);
  // One connection first, so one-time allocations (provider caches) are not counted.
  SSL* warm = SSL_new(ctx);
  SSL_free(warm);
  const size_t before = heap_in_use();
  for (int i = 0; i < n; i++) {
    ssl[i] = SSL_new(ctx);
    SSL_set_fd(ssl[i], server_fd[i]);
    if (handshake && SSL_accept(ssl[i]) != 1) {
      ERR_print_errors_fp(stderr);
      exit(2);
    }
    if (offload) {
      offloaded[i] = comet::TlsOffload::take_over(ssl[i]);
      if (offloaded[i] == nullptr) {
        fprintf(stderr, "comet-tls-footprint: no TLS 1.3 handover\n");
        exit(2);
      }
      SSL_free(ssl[i]);
      ssl[i] = nullptr;
    }
  }
  const size_t after = heap_in_use();
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  }
  for (int i = 0; i < n; i++) {
    SSL_free(ssl[i]);
    offloaded[i].reset();
    close(server_fd[i]);
  }
  return after > before ? (after - before) / static_cast<size_t>(n) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: comet-tls-footprint CERT KEY [N]\n");
    return 2;
  }
  const int n = argc > 3 ? atoi(argv[3]) : 1000;
  if (n < 1 || n > 5000) {
    fprintf(stderr, "comet-tls-footprint: N must be 1..5000 (two files per connection)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  SSL_CTX* released = server_context(argv[1], argv[2], true);
  SSL_CTX* kept = server_context(argv[1], argv[2], false);
  SSL_CTX* offloading = server_context(argv[1], argv[2], true);
  comet::prepare_tls_offload(offloading);
  // The handshake first: it warms what SSL_new alone would otherwise count.
  const size_t idle = measure(released, n, true);
  const size_t no_release = measure(kept, n, true);
  const size_t bare = measure(released, n, false);
  const size_t handed_over = measure(offloading, n, true, true);
  printf(
      "{\"openssl\":\"%s\",\"n\":%d,\"ssl_new_bytes\":%zu,\"after_handshake_bytes\":%zu,"
      "\"after_handshake_no_release_buffers_bytes\":%zu,\"after_handover_bytes\":%zu}\n",
      OpenSSL_version(OPENSSL_VERSION), n, bare, idle, no_release, handed_over);
  SSL_CTX_free(released);
  SSL_CTX_free(kept);
  SSL_CTX_free(offloading);
  return 0;
}
