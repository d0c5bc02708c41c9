/*
 * phone_plan.h - the Russian numbering-plan register: who holds a mobile
 * number's range, in which region it was issued, and that region's time zone.
 *
 * The register is published monthly by the ministry (open data, file
 * DEF-9xx.csv: `DEF;From;To;Capacity;Operator;Region;GAR territory;INN`,
 * `;`-separated, UTF-8 or Windows-1251); region_tz.csv maps each GAR
 * territory to an IANA zone and UTC offset. kaskad reads both from the folder
 * the `numbering` setting names, once at start; nothing of them is compiled in.
 *
 * Lookup is a binary search over the ranges sorted by their first number.
 * The holder's name is the same for every range of one INN (the register
 * spells some holders several ways): the spelling with the most numbers.
 * A number keeps its region when it is ported (MNP moves it between
 * operators of one region only), not necessarily its operator.
 */
#ifndef PHONE_PLAN_H
#define PHONE_PLAN_H

#include <stddef.h>

struct phone_plan;

/* What the register says of one number. The strings belong to the plan. */
struct phone_plan_info {
  const char *operator_name; /* the range holder, e.g. ПАО "МТС" */
  const char *inn;           /* the holder's tax id, the key to group by */
  const char *region;        /* the subject of the federation; "" nationwide */
  const char *timezone;      /* IANA name; "" when the region has none */
  int utc_offset_min;        /* the zone's offset (no DST in Russia); 0 when unknown */
};

/*
 * Parses the register (def, len bytes) and the zone table (tz, tz_len
 * bytes; may be empty: no zones). Rows that are not ranges (a header, a
 * line with the wrong number of fields, a bad code or range, a range that
 * overlaps another) are skipped and counted in *skipped. 0 and *out (free
 * with phone_plan_free), KK_EINVAL when no range at all was read, or
 * KK_EUTF8 when the text is neither UTF-8 nor Windows-1251.
 */
int phone_plan_parse(const char *def, size_t len, const char *tz, size_t tz_len,
                     struct phone_plan **out, int *skipped);

/* Reads DIR/DEF-9xx.csv and DIR/region_tz.csv (optional) and parses them;
   0, KK_EIO (a file could not be read, logged) or phone_plan_parse's code. */
int phone_plan_open(const char *dir, struct phone_plan **out);

void phone_plan_free(struct phone_plan *p);

/* The number (E.164 digits without '+'). 0 and *out, or KK_ENOENT when no
   range holds it (not a Russian mobile number, or one the register lacks). */
int phone_plan_lookup(const struct phone_plan *p, const char *e164, struct phone_plan_info *out);

/* Ranges held. */
size_t phone_plan_size(const struct phone_plan *p);

#endif
