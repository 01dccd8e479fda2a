#pragma once
// "Userspace kTLS": once a TLS 1.3 handshake is over, the connection moves from its
// OpenSSL SSL (about 14 KB each, even idle) to our own record layer (tls/tls13_records.h:
// two cipher contexts and the traffic secrets) and the SSL is freed. TLS 1.2 connections
// keep their SSL.
//
// How the keys get out of OpenSSL 3.0, which has no API for them: the context's keylog
// callback hands over CLIENT_TRAFFIC_SECRET_0 and SERVER_TRAFFIC_SECRET_0 (stashed in the
// SSL's ex_data until the handover, then wiped); its message callback counts the records
// OpenSSL wrote under the server's application key (the NewSessionTickets), which is the
// first write sequence number; the read sequence starts at 0 because the server's
// handshake ends on the client's Finished, read record by record (read_ahead off).
// tests/unit/tls_offload_test.cpp checks all of this against a real OpenSSL client.

#include <event2/buffer.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "tls/tls13_records.h"
#include "tls/tls_io.h"

namespace comet {

/** Sets `ctx` up for handovers (its keylog and message callbacks). Call once per context. */
void prepare_tls_offload(SSL_CTX* ctx);

class TlsOffload {
 public:
  /**
   * Right after SSL_do_handshake returned 1 on `ssl` (a context prepared above): the
   * record state to go on with, or null when the connection must keep OpenSSL (TLS 1.2,
   * secrets missing, bytes OpenSSL read ahead or still has to write). Either way the
   * stashed secrets are wiped and the callbacks stop counting. The caller frees `ssl`
   * on success (SSL_free: it sends nothing and leaves the socket open).
   */
  static std::unique_ptr<TlsOffload> take_over(SSL* ssl);
  /** For tests: from record state made directly. */
  explicit TlsOffload(std::unique_ptr<Tls13Records> records) : records_(std::move(records)) {}
  ~TlsOffload();
  TlsOffload(const TlsOffload&) = delete;
  TlsOffload& operator=(const TlsOffload&) = delete;

  /**
   * One recv from `fd` into `buf` (`cap` >= 2 * Tls13Records::kMaxRecord), after the
   * incomplete record kept from earlier reads; the records it completes are decrypted
   * into the front of `buf` (`got` bytes). kOk with data, kWantRead with none yet (maybe
   * a KeyUpdate: see wants_write), kClosed (close_notify or EOF), kError (close; the
   * closing alert says why). `more`: close_notify came after `got` bytes, call again.
   */
  TlsIo read(int fd, char* buf, size_t cap, size_t& got, bool& more);

  /**
   * Seals `output` into records of up to 16 KiB (small chunks joined first, as
   * tls_write does) and sends them, a few records per send. The plaintext is drained as
   * it is sealed; what the kernel did not take waits here (unsent()). kOk when all was
   * sent, kWantWrite when some waits, kError when the socket failed.
   */
  TlsIo write(int fd, evbuffer* output);

  /** Sealed bytes the kernel did not take yet. */
  size_t unsent() const { return unsent_end_ - unsent_begin_; }
  /** Something to send even with no output: unsent bytes or an owed KeyUpdate. */
  bool wants_write() const { return unsent() > 0 || records_->key_update_owed(); }

  /** Best effort, one send: close_notify (or the alert an error calls for). */
  void close(int fd);

  const Tls13Records& records() const { return *records_; }

 private:
  std::unique_ptr<Tls13Records> records_;
  uint8_t* partial_ = nullptr;  // an incomplete record read (malloc; null when none)
  uint8_t* unsent_ = nullptr;   // sealed bytes the kernel did not take (malloc)
  uint32_t partial_len_ = 0;
  uint32_t unsent_begin_ = 0;
  uint32_t unsent_end_ = 0;
  bool peer_closed_ = false;  // close_notify read: the next read reports it
};

}  // namespace comet
