/*
 * http_tls.c - reading and checking the HTTPS certificate and key (see
 * http_tls.h). libmicrohttpd serves TLS with GnuTLS; OpenSSL, linked for
 * hashing already, only checks the files here.
 */
#include "http/http_tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kk_err.h"
#include "core/kk_mem.h"

#define TLS_FILE_MAX (1 << 20)    /* a certificate chain is a few kilobytes */

/* The whole file as a string (malloc'd), or NULL with err set. */
static char *read_pem(const char *what, const char *path, char *err, size_t errcap) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(err, errcap, "%s: cannot read %s: %s", what, path, strerror(errno));
    return NULL;
  }
  char *buf = kk_xmalloc(TLS_FILE_MAX + 1);
  size_t n = fread(buf, 1, TLS_FILE_MAX + 1, f);
  int bad = ferror(f);
  fclose(f);
  if (bad || n == 0 || n > TLS_FILE_MAX) {
    snprintf(err, errcap, "%s: %s is %s", what, path,
             bad ? "unreadable" : n == 0 ? "empty" : "larger than 1 MiB");
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

/* 0 when cert is a PEM certificate and key a PEM private key that belongs
   to it; else KK_EINVAL with err set. */
static int check_pair(const char *cert, const char *key, const char *cert_path,
                      const char *key_path, char *err, size_t errcap) {
  BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
  X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
  EVP_PKEY *pk = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
  int rc = KK_EINVAL;
  if (x == NULL)
    snprintf(err, errcap, "tls_cert: %s holds no PEM certificate", cert_path);
  else if (pk == NULL)
    snprintf(err, errcap, "tls_key: %s holds no unencrypted PEM private key", key_path);
  else if (X509_check_private_key(x, pk) != 1)
    snprintf(err, errcap, "tls_key: %s is not the key of the certificate in %s", key_path,
             cert_path);
  else
    rc = 0;
  ERR_clear_error();
  X509_free(x);
  EVP_PKEY_free(pk);
  BIO_free(cb);
  BIO_free(kb);
  return rc;
}

int http_tls_load(const char *cert_path, const char *key_path, char **cert, char **key,
                  char *err, size_t errcap) {
  *cert = *key = NULL;
  char *c = read_pem("tls_cert", cert_path, err, errcap);
  if (c == NULL) return KK_EINVAL;
  char *k = read_pem("tls_key", key_path, err, errcap);
  if (k == NULL || check_pair(c, k, cert_path, key_path, err, errcap) != 0) {
    free(c);
    free(k);
    return KK_EINVAL;
  }
  *cert = c;
  *key = k;
  return 0;
}
