#pragma once
// Reading and writing a connection through its SSL (socket BIO on the connection's
// non-blocking fd): the handshake (tls_handshake), then, for TLS 1.2 only, the records
// (TLS 1.3 connections move to tls/tls_offload.h once the handshake is done).

#include <event2/buffer.h>
#include <openssl/ssl.h>

#include <cstddef>

namespace comet {

enum class TlsIo {
  kOk,         // progress (bytes read, or everything written)
  kWantRead,   // nothing more until the socket is readable
  kWantWrite,  // nothing more until the socket is writable (output left, or a handshake
               // flight the kernel did not take)
  kClosed,     // the peer closed (close_notify or EOF)
  kError,      // a TLS or socket error: close
};

/**
 * Runs the handshake (no application data is read): kOk once it is complete (and
 * everything it had to write went out), kWantRead/kWantWrite until then.
 */
TlsIo tls_handshake(SSL* ssl);

/**
 * Reads decrypted bytes into `buf` until it is full or the socket has no more (kOk with
 * `got` > 0; kWantRead/kWantWrite with `got` == 0 when nothing came yet). `more` is set
 * when decrypted bytes are left in the SSL because `buf` filled up: read again soon.
 */
TlsIo tls_read(SSL* ssl, char* buf, size_t cap, size_t& got, bool& more);

/**
 * Encrypts and sends queued output, in records of up to 16 KiB (small chunks are joined
 * first, so a burst of small messages is one record and one send, not one per message).
 * kOk when all was sent, kWantWrite when the kernel took less, kError when it failed.
 */
TlsIo tls_write(SSL* ssl, evbuffer* output);

}  // namespace comet
