/*
 * http_tls.h - the HTTPS key material of the listeners: read once at start
 * from PEM files and checked, so that a wrong file stops kaskad with a clear
 * message instead of a listener that fails every handshake.
 */
#ifndef HTTP_TLS_H
#define HTTP_TLS_H

#include <stddef.h>

/*
 * Reads the certificate (chain) at cert_path and the private key at
 * key_path, checks that both parse and that the key belongs to the
 * certificate. On success *cert and *key receive malloc'd PEM texts (the
 * caller frees them) and 0 is returned; else KK_EINVAL with a sentence in
 * err.
 */
int http_tls_load(const char *cert_path, const char *key_path, char **cert, char **key,
                  char *err, size_t errcap);

#endif
