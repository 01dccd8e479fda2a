#include "tls/tls13_records.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <cstring>
#include <limits>

namespace comet {
namespace {

constexpr uint8_t kTypeAlert = 21;
constexpr uint8_t kTypeHandshake = 22;
constexpr uint8_t kTypeApplicationData = 23;
constexpr uint8_t kKeyUpdate = 24;  // handshake message type
constexpr uint8_t kMaxIdleRecords = 32;
constexpr size_t kTag = 16;
constexpr size_t kIv = 12;

struct Suite {
  uint16_t id;
  const char* cipher;  // OpenSSL name
  const char* digest;
  size_t key_len;
};
constexpr Suite kSuites[] = {
    {0x1301, "AES-128-GCM", "SHA256", 16},
    {0x1302, "AES-256-GCM", "SHA384", 32},
    {0x1303, "ChaCha20-Poly1305", "SHA256", 32},
};

const Suite* find_suite(uint16_t id) {
  for (const Suite& suite : kSuites)
    if (suite.id == id) return &suite;
  return nullptr;
}

// Fetched once per process (a fetch takes a lock and a lookup), never freed.
const EVP_CIPHER* cipher_of(const Suite& suite) {
  static EVP_CIPHER* ciphers[3] = {EVP_CIPHER_fetch(nullptr, kSuites[0].cipher, nullptr),
                                   EVP_CIPHER_fetch(nullptr, kSuites[1].cipher, nullptr),
                                   EVP_CIPHER_fetch(nullptr, kSuites[2].cipher, nullptr)};
  return ciphers[&suite - kSuites];
}
const EVP_MD* digest_of(const Suite& suite) {
  static EVP_MD* digests[3] = {EVP_MD_fetch(nullptr, kSuites[0].digest, nullptr),
                               EVP_MD_fetch(nullptr, kSuites[1].digest, nullptr),
                               EVP_MD_fetch(nullptr, kSuites[2].digest, nullptr)};
  return digests[&suite - kSuites];
}

// HKDF-Expand-Label(secret, label, "", out_len) (RFC 8446 7.1). Every output here (a key,
// an iv, the next secret) is at most one hash long, and HKDF-Expand of one block is
// HMAC(secret, info || 0x01) (RFC 5869 2.3): one HMAC, no KDF context to allocate.
bool expand_label(const EVP_MD* md, const uint8_t* secret, size_t secret_len, const char* label,
                  uint8_t* out, size_t out_len) {
  uint8_t info[2 + 1 + 6 + 16 + 1 + 1];
  const size_t label_len = strlen(label);
  size_t n = 0;
  info[n++] = static_cast<uint8_t>(out_len >> 8);
  info[n++] = static_cast<uint8_t>(out_len);
  info[n++] = static_cast<uint8_t>(6 + label_len);
  memcpy(info + n, "tls13 ", 6);
  n += 6;
  memcpy(info + n, label, label_len);
  n += label_len;
  info[n++] = 0;  // empty context
  info[n++] = 1;  // HKDF-Expand's block counter
  uint8_t block[EVP_MAX_MD_SIZE];
  unsigned int block_len = 0;
  if (HMAC(md, secret, static_cast<int>(secret_len), info, n, block, &block_len) == nullptr ||
      block_len < out_len)
    return false;
  memcpy(out, block, out_len);
  OPENSSL_cleanse(block, sizeof block);
  return true;
}

// The per-record nonce: the iv XOR the 64-bit sequence number, left-padded (RFC 8446 5.3).
void make_nonce(const uint8_t* iv, uint64_t seq, uint8_t* nonce) {
  memcpy(nonce, iv, kIv);
  for (int i = 0; i < 8; i++) nonce[kIv - 1 - i] ^= static_cast<uint8_t>(seq >> (8 * i));
}

}  // namespace

std::unique_ptr<Tls13Records> Tls13Records::create(uint16_t suite_id, const uint8_t* read_secret,
                                                   const uint8_t* write_secret, size_t secret_len,
                                                   uint64_t write_seq) {
  const Suite* suite = find_suite(suite_id);
  if (suite == nullptr || cipher_of(*suite) == nullptr || digest_of(*suite) == nullptr ||
      secret_len != static_cast<size_t>(EVP_MD_get_size(digest_of(*suite))))
    return nullptr;
  std::unique_ptr<Tls13Records> records(new Tls13Records());
  records->suite_ = suite_id;
  records->secret_len_ = static_cast<uint8_t>(secret_len);
  records->write_seq_ = write_seq;
  memcpy(records->read_secret_, read_secret, secret_len);
  memcpy(records->write_secret_, write_secret, secret_len);
  records->read_ctx_ = EVP_CIPHER_CTX_new();
  records->write_ctx_ = EVP_CIPHER_CTX_new();
  if (records->read_ctx_ == nullptr || records->write_ctx_ == nullptr ||
      !records->install(records->read_ctx_, records->read_secret_, records->read_iv_, false) ||
      !records->install(records->write_ctx_, records->write_secret_, records->write_iv_, true))
    return nullptr;
  return records;
}

Tls13Records::~Tls13Records() {
  EVP_CIPHER_CTX_free(read_ctx_);  // wipes the key schedule
  EVP_CIPHER_CTX_free(write_ctx_);
  OPENSSL_cleanse(read_secret_, sizeof read_secret_);
  OPENSSL_cleanse(write_secret_, sizeof write_secret_);
  OPENSSL_cleanse(read_iv_, sizeof read_iv_);
  OPENSSL_cleanse(write_iv_, sizeof write_iv_);
}

bool Tls13Records::install(EVP_CIPHER_CTX* ctx, const uint8_t* secret, uint8_t* iv, bool encrypt) {
  const Suite& suite = *find_suite(suite_);
  uint8_t key[32];
  const bool ok =
      expand_label(digest_of(suite), secret, secret_len_, "key", key, suite.key_len) &&
      expand_label(digest_of(suite), secret, secret_len_, "iv", iv, kIv) &&
      EVP_CipherInit_ex2(ctx, cipher_of(suite), key, nullptr, encrypt ? 1 : 0, nullptr) == 1;
  OPENSSL_cleanse(key, sizeof key);
  return ok;
}

bool Tls13Records::next_secret(uint8_t* secret) {
  uint8_t next[kMaxSecret];
  if (!expand_label(digest_of(*find_suite(suite_)), secret, secret_len_, "traffic upd", next,
                    secret_len_))
    return false;
  memcpy(secret, next, secret_len_);
  OPENSSL_cleanse(next, sizeof next);
  return true;
}

size_t Tls13Records::seal_as(uint8_t type, const uint8_t* data, size_t len, uint8_t* out) {
  // A nonce is never used twice: the connection closes before the sequence wraps.
  if (len > kMaxPlaintext || write_seq_ == std::numeric_limits<uint64_t>::max()) return 0;
  const size_t body = len + 1 + kTag;
  out[0] = kTypeApplicationData;  // every TLS 1.3 record shows this type outside
  out[1] = 0x03;
  out[2] = 0x03;
  out[3] = static_cast<uint8_t>(body >> 8);
  out[4] = static_cast<uint8_t>(body);
  uint8_t nonce[kIv];
  make_nonce(write_iv_, write_seq_, nonce);
  int n = 0;
  if (EVP_EncryptInit_ex2(write_ctx_, nullptr, nullptr, nonce, nullptr) != 1 ||
      EVP_EncryptUpdate(write_ctx_, nullptr, &n, out, kHeader) != 1 ||
      (len > 0 &&
       EVP_EncryptUpdate(write_ctx_, out + kHeader, &n, data, static_cast<int>(len)) != 1) ||
      EVP_EncryptUpdate(write_ctx_, out + kHeader + len, &n, &type, 1) != 1 ||
      EVP_EncryptFinal_ex(write_ctx_, out + kHeader + len + 1, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(write_ctx_, EVP_CTRL_AEAD_GET_TAG, kTag, out + kHeader + len + 1) != 1)
    return 0;
  write_seq_++;
  return kHeader + body;
}

size_t Tls13Records::seal_key_update(uint8_t* out) {
  const uint8_t message[] = {kKeyUpdate, 0, 0, 1, 0};  // update_not_requested
  const size_t size = seal_as(kTypeHandshake, message, sizeof message, out);
  if (size == 0 || !next_secret(write_secret_) ||
      !install(write_ctx_, write_secret_, write_iv_, true))
    return 0;
  write_seq_ = 0;
  key_update_owed_ = false;
  return size;
}

size_t Tls13Records::seal_closing_alert(uint8_t* out) {
  if (peer_alerted_ && alert_ != kCloseNotify) return 0;  // its fatal alert: say nothing
  const uint8_t message[] = {static_cast<uint8_t>(alert_ == kCloseNotify ? 1 : 2), alert_};
  peer_alerted_ = true;
  alert_ = kInternalError;  // once: a second call seals nothing
  return seal_as(kTypeAlert, message, sizeof message, out);
}

Tls13Records::Open Tls13Records::fail(uint8_t alert) {
  done_ = true;
  alert_ = alert;
  return Open::kError;
}

Tls13Records::Open Tls13Records::open(uint8_t* in, size_t len, size_t& used, uint8_t*& plain,
                                      size_t& plain_len) {
  used = 0;
  plain = nullptr;
  plain_len = 0;
  if (done_) return Open::kError;
  if (len < kHeader) return Open::kNeedMore;
  // After the handshake only protected records may come: a ChangeCipherSpec (allowed
  // only during it) or a plaintext alert or handshake is refused.
  if (in[0] != kTypeApplicationData) return fail(kUnexpectedMessage);
  if (in[1] != 0x03 || in[2] != 0x03) return fail(kDecodeError);
  const size_t body = (static_cast<size_t>(in[3]) << 8) | in[4];
  if (body > kMaxCiphertext) return fail(kRecordOverflow);
  if (body < 1 + kTag) return fail(kDecodeError);
  if (len < kHeader + body) return Open::kNeedMore;
  if (read_seq_ == std::numeric_limits<uint64_t>::max()) return fail(kInternalError);
  uint8_t nonce[kIv];
  make_nonce(read_iv_, read_seq_, nonce);
  uint8_t* text = in + kHeader;
  const int text_len = static_cast<int>(body - kTag);
  int n = 0;
  if (EVP_DecryptInit_ex2(read_ctx_, nullptr, nullptr, nonce, nullptr) != 1 ||
      EVP_DecryptUpdate(read_ctx_, nullptr, &n, in, kHeader) != 1 ||
      EVP_DecryptUpdate(read_ctx_, text, &n, text, text_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(read_ctx_, EVP_CTRL_AEAD_SET_TAG, kTag, text + text_len) != 1 ||
      EVP_DecryptFinal_ex(read_ctx_, text + text_len, &n) != 1)
    return fail(kBadRecordMac);
  read_seq_++;
  used = kHeader + body;
  // TLSInnerPlaintext: content, the real type, then zero padding.
  size_t end = static_cast<size_t>(text_len);
  while (end > 0 && text[end - 1] == 0) end--;
  if (end == 0) return fail(kUnexpectedMessage);  // no type at all
  const uint8_t type = text[end - 1];
  const size_t content = end - 1;
  if (content > kMaxPlaintext) return fail(kRecordOverflow);
  if (type == kTypeApplicationData && content > 0)
    idle_records_ = 0;
  else if (++idle_records_ > kMaxIdleRecords)
    return fail(kUnexpectedMessage);
  switch (type) {
    case kTypeApplicationData:
      plain = text;
      plain_len = content;
      return Open::kData;
    case kTypeAlert:
      if (content != 2) return fail(kDecodeError);
      done_ = true;
      peer_alerted_ = true;
      alert_ = text[1];
      return text[1] == kCloseNotify ? Open::kClosed : Open::kError;
    case kTypeHandshake:
      // Only KeyUpdate may come after the handshake here (no post-handshake auth is
      // asked for, and clients send no tickets), whole in one record: RFC 8446 4.6.3
      // forbids it to share a record with a later message, and no client splits it.
      if (content != 5 || text[0] != kKeyUpdate || text[1] != 0 || text[2] != 0 || text[3] != 1)
        return fail(kUnexpectedMessage);
      if (text[4] > 1) return fail(kIllegalParameter);  // RFC 8446 4.6.3
      if (!next_secret(read_secret_) || !install(read_ctx_, read_secret_, read_iv_, false))
        return fail(kInternalError);
      read_seq_ = 0;
      if (text[4] == 1) key_update_owed_ = true;  // answered once, however often asked
      return Open::kControl;
    default:
      return fail(kUnexpectedMessage);
  }
}

}  // namespace comet
