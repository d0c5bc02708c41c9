/*
 * chan_ready.h - the channel engine's queue of attempts due now: a ring in
 * the order they came due, and the set of every attempt queued or being
 * sent, so that none is taken twice (an attempt leaves the set when its
 * result is committed, chan_ready_forget).
 */
#ifndef CHAN_READY_H
#define CHAN_READY_H

#include <stddef.h>
#include <stdint.h>

struct chan_ready {
  int64_t *known;            /* open addressing, 0 empty */
  size_t known_cap;          /* power of two */
  size_t nknown;
  struct chan_ready_item {
    int64_t id;
    void *row;               /* the caller's, NULL when none came with it */
  } *ring;                   /* ids due now, waiting for room */
  size_t head, len, cap;
};

/* Embedded: _init allocates, _fini frees. */
void chan_ready_init(struct chan_ready *r);
void chan_ready_fini(struct chan_ready *r);
/* Queues id unless it is known already. 1 when queued, 0 when known. */
int chan_ready_push(struct chan_ready *r, int64_t id);
/* The same with what the caller has of it (row, which the ring keeps for
   the caller until it pops it; not queued, the caller keeps it). */
int chan_ready_push_row(struct chan_ready *r, int64_t id, void *row);
/* The oldest queued id (r->len > 0); it stays known. */
int64_t chan_ready_pop(struct chan_ready *r);
/* The same, with the row it was pushed with into *row (NULL: none). */
int64_t chan_ready_pop_row(struct chan_ready *r, void **row);
/* 1 when id is queued or being sent. */
int chan_ready_has(const struct chan_ready *r, int64_t id);
/* id is done with (its result committed, or it is no longer due). */
void chan_ready_forget(struct chan_ready *r, int64_t id);

#endif
