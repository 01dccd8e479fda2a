#include "tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "tls/tls_offload.h"

namespace comet {
namespace {

std::string openssl_error(const std::string& what) {
  std::string out = what;
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    out += ": ";
    out += text;
  }
  return out;
}

int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                  unsigned int inlen, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // no ALPN (h2 only): the client speaks HTTP/1.1 anyway
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

SSL_CTX* build_context(const std::string& cert_file, const std::string& key_file,
                       std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    error = openssl_error("cannot create a TLS context");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // TLS 1.2: forward secrecy and AEAD only (TLS 1.3's suites are all of that kind).
  SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS:!RC4:!3DES");
  // TLS 1.3: the three suites tls/tls13_records.h implements (OpenSSL's default set and
  // order; never the CCM ones), so every TLS 1.3 connection can leave OpenSSL after its
  // handshake.
  SSL_CTX_set_ciphersuites(ctx,
                           "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
                           "TLS_AES_128_GCM_SHA256");
  prepare_tls_offload(ctx);
  // No per-connection record buffers while idle: most push connections are idle.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Sessions resume from stateless tickets: no server-side cache growing with clients.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_alpn_select_cb(ctx, select_http11, nullptr);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    error = openssl_error("cannot read the certificate chain " + cert_file);
  } else if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = openssl_error("cannot read the private key " + key_file);
  } else if (SSL_CTX_check_private_key(ctx) != 1) {
    error = openssl_error("the private key does not match the certificate");
  } else {
    return ctx;
  }
  SSL_CTX_free(ctx);
  return nullptr;
}

}  // namespace

std::unique_ptr<TlsContext> TlsContext::load(const std::string& cert_file,
                                             const std::string& key_file, std::string& error) {
  std::unique_ptr<TlsContext> tls(new TlsContext(cert_file, key_file));
  if (!tls->reload(error)) return nullptr;
  return tls;
}

TlsContext::~TlsContext() { SSL_CTX_free(current_); }

bool TlsContext::reload(std::string& error) {
  SSL_CTX* fresh = build_context(cert_file_, key_file_, error);
  if (fresh == nullptr) return false;
  SSL_CTX* old;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    old = current_;
    current_ = fresh;
  }
  SSL_CTX_free(old);  // open connections hold their own reference (SSL_new took one)
  return true;
}

SSL* TlsContext::accept(int fd) {
  SSL* ssl;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ssl = SSL_new(current_);
  }
  if (ssl == nullptr) return nullptr;
  SSL_set_fd(ssl, fd);
  SSL_set_accept_state(ssl);
  return ssl;
}

std::string TlsContext::subject() const {
  std::lock_guard<std::mutex> lock(mutex_);
  X509* cert = SSL_CTX_get0_certificate(current_);
  if (cert == nullptr) return "";
  char name[256];
  X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof name);
  return name;
}

}  // namespace comet
