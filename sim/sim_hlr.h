/*
 * sim_hlr.h - the simulator's HLR/MNP service: what an operator's lookup
 * provider answers about a number (its current operator when it was
 * ported, whether it is roaming). Tests set the ported and roaming numbers.
 *
 *   GET  /hlr?phone=79161234567  -> {"phone","ported","operator","inn","roaming"}
 *   POST /hlr/config {"ported":{"7916...":{"operator":"…","inn":"…"}},
 *                     "roaming":["7916..."],"down":false}   (replaces the lists)
 *   GET  /hlr/stats              -> {"lookups":N}
 */
#ifndef SIM_HLR_H
#define SIM_HLR_H

#include <stddef.h>

struct sim_hlr;

struct sim_hlr *sim_hlr_new(void);
void sim_hlr_free(struct sim_hlr *h);

/* One request to a /hlr path: the answer's status and JSON body (malloc'd,
   the caller frees). 0, or KK_ENOENT when path is not the HLR's. */
int sim_hlr_handle(struct sim_hlr *h, const char *method, const char *path, const char *phone,
                   const char *body, size_t len, unsigned *status, char **out);

#endif
