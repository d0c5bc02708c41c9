/*
 * sim_jobs.c - job pool, timing wheel and acknowledgement table
 * (see sim_jobs.h).
 */
#include "sim_jobs.h"

#include <stdlib.h>
#include <string.h>

#include "core/kk_mem.h"

#define CHUNK_JOBS 1024
#define ACK_INITIAL 1024          /* table slots; a power of two */

#define SLOT_MASK (SIM_WHEEL_SLOTS - 1)

void sim_jobs_init(struct sim_jobs *j, int64_t now) {
  memset(j, 0, sizeof *j);
  j->cursor = now;
  j->ack_mask = ACK_INITIAL - 1;
  j->ack_keys = kk_xcalloc(ACK_INITIAL, sizeof *j->ack_keys);
  j->ack_vals = kk_xcalloc(ACK_INITIAL, sizeof *j->ack_vals);
}

void sim_jobs_fini(struct sim_jobs *j) {
  for (size_t i = 0; i < j->nchunks; i++) free(j->chunks[i]);
  free(j->chunks);
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
  job->slot = SIM_JOB_IDLE;
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

/* ---- timing wheel ---- */

void sim_jobs_unschedule(struct sim_jobs *j, struct sim_job *job) {
  if (job->slot == SIM_JOB_IDLE) return;
  uint32_t i = job->slot;
  if (job->prev) job->prev->next = job->next;
  else j->head[i] = job->next;
  if (job->next) job->next->prev = job->prev;
  else j->tail[i] = job->prev;
  if (j->head[i] == NULL) j->busy[i / 64] &= ~(1ull << (i % 64));
  job->prev = job->next = NULL;
  job->slot = SIM_JOB_IDLE;
  j->queued--;
}

void sim_jobs_schedule(struct sim_jobs *j, struct sim_job *job, int64_t due) {
  sim_jobs_unschedule(j, job);
  job->due = due;
  /* A job already due goes in the first slot the next run looks at. */
  int64_t at = due > j->cursor ? due : j->cursor + 1;
  uint32_t i = (uint32_t)(at & SLOT_MASK);
  job->slot = i;
  job->next = NULL;
  job->prev = j->tail[i];
  if (j->tail[i]) j->tail[i]->next = job;
  else j->head[i] = job;
  j->tail[i] = job;
  j->busy[i / 64] |= 1ull << (i % 64);
  j->queued++;
}

size_t sim_jobs_run_due(struct sim_jobs *j, int64_t now, size_t max,
                        void (*fn)(void *arg, struct sim_job *job), void *arg) {
  size_t ran = 0;
  if (j->queued == 0) {
    if (now > j->cursor) j->cursor = now;
    return 0;
  }
  /* One turn of the wheel visits every slot; a longer gap needs no more. */
  int64_t t = j->cursor + 1;
  if (now - j->cursor > SIM_WHEEL_SLOTS) t = now - SIM_WHEEL_SLOTS + 1;
  for (; t <= now; t++) {
    j->cursor = t;
    uint32_t i = (uint32_t)(t & SLOT_MASK);
    struct sim_job *job = j->head[i];
    while (job != NULL) {
      struct sim_job *next = job->next;
      if (job->due <= now) {
        if (ran == max) {
          j->cursor = t - 1;   /* this slot is not finished */
          return ran;
        }
        sim_jobs_unschedule(j, job);
        fn(arg, job);
        ran++;
      }
      job = next;
    }
  }
  return ran;
}

int64_t sim_jobs_next_due(const struct sim_jobs *j) {
  if (j->queued == 0) return SIM_JOBS_NONE;
  /* Find the first busy slot after the cursor, a bitmap word at a time,
     wrapping around once. */
  uint32_t i = (uint32_t)((j->cursor + 1) & SLOT_MASK);
  for (uint32_t dist = 0; dist < SIM_WHEEL_SLOTS + 64;) {
    uint64_t word = j->busy[i / 64] >> (i % 64);
    if (word) return j->cursor + 1 + dist + __builtin_ctzll(word);
    uint32_t step = 64 - i % 64;
    dist += step;
    i = (i + step) & SLOT_MASK;
  }
  return SIM_JOBS_NONE;
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
