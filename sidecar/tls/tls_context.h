#pragma once
// TLS for the public listener: the server certificate and key (PEM) in an OpenSSL
// context shared by every worker. TLS 1.2 and 1.3 only, forward-secret AEAD ciphers,
// ALPN "http/1.1", no renegotiation, no compression, no server-side session cache
// (resumption by stateless tickets), and SSL_MODE_RELEASE_BUFFERS so an idle
// connection holds no record buffers. Contexts are prepared for the TLS 1.3 handover
// (tls/tls_offload.h): only the three TLS 1.3 suites our record layer implements, and
// the callbacks that hand over the traffic secrets. reload() swaps in new files (SIGHUP): new
// connections use them, open ones keep the context they started with.

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>

namespace comet {

class TlsContext {
 public:
  /** Loads `cert_file` (the chain) and `key_file`; null with `error` saying why. */
  static std::unique_ptr<TlsContext> load(const std::string& cert_file, const std::string& key_file,
                                          std::string& error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  /** Reads the files again; on any error keeps the current context. Any thread. */
  bool reload(std::string& error);

  /** A server-side SSL for an accepted socket, from the current context. Any thread. */
  SSL* accept(int fd);

  /** The certificate's subject, for logs. */
  std::string subject() const;

 private:
  TlsContext(std::string cert_file, std::string key_file)
      : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {}

  const std::string cert_file_;
  const std::string key_file_;
  mutable std::mutex mutex_;
  SSL_CTX* current_ = nullptr;
};

}  // namespace comet
