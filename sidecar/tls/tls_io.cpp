#include "tls/tls_io.h"

#include <openssl/err.h>

#include <algorithm>
#include <cerrno>

namespace comet {
namespace {

constexpr size_t kMaxRecord = 16 * 1024;

TlsIo classify(SSL* ssl, int result) {
  switch (SSL_get_error(ssl, result)) {
    case SSL_ERROR_WANT_READ:
      return TlsIo::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return TlsIo::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return TlsIo::kClosed;
    case SSL_ERROR_SYSCALL:
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return TlsIo::kWantRead;
      ERR_clear_error();
      return errno == 0 ? TlsIo::kClosed : TlsIo::kError;  // 0: EOF without close_notify
    default:
      ERR_clear_error();  // a bad handshake, a bad record: nothing to keep for later calls
      return TlsIo::kError;
  }
}

}  // namespace

TlsIo tls_handshake(SSL* ssl) {
  errno = 0;
  const int result = SSL_do_handshake(ssl);
  return result == 1 ? TlsIo::kOk : classify(ssl, result);
}

TlsIo tls_read(SSL* ssl, char* buf, size_t cap, size_t& got, bool& more) {
  got = 0;
  more = false;
  while (got < cap) {
    errno = 0;
    const int n = SSL_read(ssl, buf + got, static_cast<int>(std::min<size_t>(cap - got, 1 << 30)));
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    const TlsIo state = classify(ssl, n);
    if (got > 0 && (state == TlsIo::kWantRead || state == TlsIo::kWantWrite)) return TlsIo::kOk;
    return got > 0 && state == TlsIo::kClosed ? TlsIo::kOk : state;
  }
  more = SSL_pending(ssl) > 0;
  return TlsIo::kOk;
}

TlsIo tls_write(SSL* ssl, evbuffer* output) {
  while (evbuffer_get_length(output) > 0) {
    const size_t chunk = std::min(evbuffer_get_length(output), kMaxRecord);
    const unsigned char* data = evbuffer_pullup(output, static_cast<ev_ssize_t>(chunk));
    errno = 0;
    const int n = SSL_write(ssl, data, static_cast<int>(chunk));
    if (n > 0) {
      evbuffer_drain(output, static_cast<size_t>(n));
      continue;
    }
    const TlsIo state = classify(ssl, n);
    // Wanting to read while writing (a TLS 1.3 key update in flight): wait for the socket.
    if (state == TlsIo::kWantRead || state == TlsIo::kWantWrite) return TlsIo::kWantWrite;
    return TlsIo::kError;
  }
  return TlsIo::kOk;
}

}  // namespace comet
