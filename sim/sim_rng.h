/*
 * sim_rng.h - the simulator's pseudo-random numbers (splitmix64).
 *
 * Deterministic for a given seed so that a run with --seed can be repeated.
 * Not for anything secret.
 */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stdint.h>

struct sim_rng {
  uint64_t state;
};

static inline void sim_rng_seed(struct sim_rng *r, uint64_t seed) {
  r->state = seed;
}

static inline uint64_t sim_rng_next(struct sim_rng *r) {
  uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Returns a uniform double in [0, 1). */
static inline double sim_rng_01(struct sim_rng *r) {
  return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Returns a uniform integer in [lo, hi]; lo <= hi. */
static inline int64_t sim_rng_range(struct sim_rng *r, int64_t lo, int64_t hi) {
  uint64_t span = (uint64_t)(hi - lo) + 1;
  if (span == 0) return lo;
  return lo + (int64_t)(sim_rng_next(r) % span);
}

#endif
