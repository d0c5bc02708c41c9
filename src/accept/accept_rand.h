/*
 * accept_rand.h - random bytes for the ids accept makes, drawn from the
 * system's generator (OpenSSL's RAND_bytes) a block at a time instead of
 * once per message: a buffer of ACCEPT_RAND_BLOCK bytes, owned by the
 * accept context (struct accept), handed out in order and drawn again when
 * too few are left. Each byte is handed out once and wiped from the buffer
 * as it is. Not shared between threads: the context's thread alone uses it.
 */
#ifndef ACCEPT_RAND_H
#define ACCEPT_RAND_H

#include <stddef.h>

#define ACCEPT_RAND_BLOCK 4096

struct accept_rand {
  unsigned char buf[ACCEPT_RAND_BLOCK];
  size_t left;              /* bytes not handed out yet, at the end of buf */
  unsigned long draws;      /* blocks drawn so far */
};

/* n bytes (1 to ACCEPT_RAND_BLOCK) into out, from r's block; a new block
   is drawn first when fewer than n are left (the rest is dropped). Aborts
   when the generator fails, as a message id without them cannot be made. */
void accept_rand_take(struct accept_rand *r, void *out, size_t n);

#endif
