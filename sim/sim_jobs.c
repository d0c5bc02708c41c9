/*
 * sim_jobs.c - job pool, due-time heap and acknowledgement table
 * (see sim_jobs.h).
 */
#include "sim_jobs.h"

#include <stdlib.h>
#include <string.h>

#include "core/kk_mem.h"

#define CHUNK_JOBS 1024
#define ACK_INITIAL 1024          /* table slots; a power of two */

void sim_jobs_init(struct sim_jobs *j) {
  memset(j, 0, sizeof *j);
  j->ack_mask = ACK_INITIAL - 1;
  j->ack_keys = kk_xcalloc(ACK_INITIAL, sizeof *j->ack_keys);
  j->ack_vals = kk_xcalloc(ACK_INITIAL, sizeof *j->ack_vals);
}

void sim_jobs_fini(struct sim_jobs *j) {
  for (size_t i = 0; i < j->nchunks; i++) free(j->chunks[i]);
  free(j->chunks);
  free(j->heap);
  free(j->ack_keys);
  free(j->ack_vals);
  memset(j, 0, sizeof *j);
}

/* ---- pool ---- */

struct sim_job *sim_jobs_alloc(struct sim_jobs *j) {
  if (j->live >= SIM_JOBS_MAX) return NULL;
  if (j->free_list == NULL) {
    struct sim_job *chunk = kk_xmalloc(CHUNK_JOBS * sizeof *chunk);
    j->chunks = kk_xrealloc(j->chunks, (j->nchunks + 1) * sizeof *j->chunks);
    j->chunks[j->nchunks++] = chunk;
    for (size_t i = CHUNK_JOBS; i-- > 0;) {
      chunk[i].next_free = j->free_list;
      j->free_list = &chunk[i];
    }
  }
  struct sim_job *job = j->free_list;
  j->free_list = job->next_free;
  memset(job, 0, sizeof *job);
  job->heap_idx = SIM_JOB_IDLE;
  j->live++;
  return job;
}

void sim_jobs_release(struct sim_jobs *j, struct sim_job *job) {
  sim_jobs_unschedule(j, job);
  if (job->ack_seq) sim_jobs_take_ack(j, job->ack_seq);
  job->next_free = j->free_list;
  j->free_list = job;
  j->live--;
}

/* ---- heap ---- */

static int earlier(const struct sim_job *a, const struct sim_job *b) {
  return a->due < b->due || (a->due == b->due && a->order < b->order);
}

static void place(struct sim_jobs *j, size_t i, struct sim_job *job) {
  j->heap[i] = job;
  job->heap_idx = (uint32_t)i;
}

static void sift_up(struct sim_jobs *j, size_t i) {
  struct sim_job *job = j->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!earlier(job, j->heap[parent])) break;
    place(j, i, j->heap[parent]);
    i = parent;
  }
  place(j, i, job);
}

static void sift_down(struct sim_jobs *j, size_t i) {
  struct sim_job *job = j->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= j->nheap) break;
    if (c + 1 < j->nheap && earlier(j->heap[c + 1], j->heap[c])) c++;
    if (!earlier(j->heap[c], job)) break;
    place(j, i, j->heap[c]);
    i = c;
  }
  place(j, i, job);
}

void sim_jobs_unschedule(struct sim_jobs *j, struct sim_job *job) {
  if (job->heap_idx == SIM_JOB_IDLE) return;
  size_t i = job->heap_idx;
  job->heap_idx = SIM_JOB_IDLE;
  struct sim_job *last = j->heap[--j->nheap];
  if (i == j->nheap) return;
  place(j, i, last);
  sift_down(j, i);
  sift_up(j, last->heap_idx);
}

void sim_jobs_schedule(struct sim_jobs *j, struct sim_job *job, int64_t due) {
  sim_jobs_unschedule(j, job);
  if (j->nheap == j->heap_cap) {
    j->heap_cap = j->heap_cap ? 2 * j->heap_cap : 1024;
    j->heap = kk_xrealloc(j->heap, j->heap_cap * sizeof *j->heap);
  }
  job->due = due;
  job->order = j->next_order++;
  place(j, j->nheap++, job);
  sift_up(j, job->heap_idx);
}

struct sim_job *sim_jobs_pop_due(struct sim_jobs *j, int64_t now) {
  if (j->nheap == 0 || j->heap[0]->due > now) return NULL;
  struct sim_job *job = j->heap[0];
  sim_jobs_unschedule(j, job);
  return job;
}

int64_t sim_jobs_next_due(const struct sim_jobs *j) {
  return j->nheap ? j->heap[0]->due : -1;
}

/* ---- acknowledgement table (linear probing, backward-shift deletion) ---- */

static size_t home(const struct sim_jobs *j, uint32_t seq) {
  return (size_t)(seq * 2654435761u) & j->ack_mask;
}

static void ack_insert(struct sim_jobs *j, uint32_t seq, struct sim_job *job) {
  size_t i = home(j, seq);
  while (j->ack_keys[i] != 0) i = (i + 1) & j->ack_mask;
  j->ack_keys[i] = seq;
  j->ack_vals[i] = job;
  j->ack_used++;
}

static void ack_grow(struct sim_jobs *j) {
  uint32_t *keys = j->ack_keys;
  struct sim_job **vals = j->ack_vals;
  size_t old = j->ack_mask + 1;
  j->ack_mask = 2 * old - 1;
  j->ack_keys = kk_xcalloc(2 * old, sizeof *j->ack_keys);
  j->ack_vals = kk_xcalloc(2 * old, sizeof *j->ack_vals);
  j->ack_used = 0;
  for (size_t i = 0; i < old; i++)
    if (keys[i]) ack_insert(j, keys[i], vals[i]);
  free(keys);
  free(vals);
}

void sim_jobs_await(struct sim_jobs *j, struct sim_job *job, uint32_t seq) {
  if (2 * (j->ack_used + 1) > j->ack_mask + 1) ack_grow(j);
  ack_insert(j, seq, job);
  job->ack_seq = seq;
}

struct sim_job *sim_jobs_take_ack(struct sim_jobs *j, uint32_t seq) {
  if (seq == 0) return NULL;
  size_t i = home(j, seq);
  while (j->ack_keys[i] != seq) {
    if (j->ack_keys[i] == 0) return NULL;
    i = (i + 1) & j->ack_mask;
  }
  struct sim_job *job = j->ack_vals[i];
  job->ack_seq = 0;
  j->ack_used--;
  /* Close the gap: move back later entries whose home slot allows it. */
  size_t k = i;
  for (;;) {
    k = (k + 1) & j->ack_mask;
    if (j->ack_keys[k] == 0) break;
    size_t h = home(j, j->ack_keys[k]);
    int stays = (i <= k) ? (i < h && h <= k) : (i < h || h <= k);
    if (stays) continue;
    j->ack_keys[i] = j->ack_keys[k];
    j->ack_vals[i] = j->ack_vals[k];
    i = k;
  }
  j->ack_keys[i] = 0;
  j->ack_vals[i] = NULL;
  return job;
}
