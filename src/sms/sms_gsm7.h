/*
 * sms_gsm7.h - the GSM 03.38 default alphabet and its extension table, as
 * lookups between septet codes and Unicode code points.
 *
 * Pure functions over static const tables; used by sms_enc.c.
 */
#ifndef SMS_GSM7_H
#define SMS_GSM7_H

#include <stdint.h>

#define SMS_GSM7_ESC 0x1B    /* escape to the extension table */
#define SMS_GSM7_EXT 0x100   /* flag in sms_gsm7_from_cp(): an extension code */

/*
 * Returns the septet for cp: 0x00..0x7F for a basic-table character,
 * SMS_GSM7_EXT | code for an extension character (sent as ESC, code), or -1
 * when cp is in neither table (-1 means "no septet", not an error code).
 */
int sms_gsm7_from_cp(uint32_t cp);

/* Returns the code point of basic-table septet c (c < 0x80); ESC gives U+0020. */
uint32_t sms_gsm7_basic_cp(uint8_t c);

/* Returns the code point of extension code c, or -1 when c has none (no value, not
   an error code). */
int32_t sms_gsm7_ext_cp(uint8_t c);

#endif
