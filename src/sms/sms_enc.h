/*
 * sms_enc.h - SMS text encoding: GSM 03.38 (default alphabet plus the
 * extension table) or UCS-2, segment counting and concatenation with UDH.
 *
 * Pure functions: no I/O, no allocation, no globals.
 *
 * GSM-7 output is unpacked, one septet per octet (what SMPP carries with
 * data_coding 0x00); an extension character is two octets, ESC (0x1B) then
 * its code, and the pair is never split across parts. UCS-2 output is
 * UTF-16BE; characters outside the BMP are surrogate pairs, never split.
 * Limits per part: GSM-7 160 septets single / 153 concatenated, UCS-2 70 / 67
 * UTF-16 units. A concatenated part starts with the 8-bit-reference UDH
 * 05 00 03 <ref> <total> <seq> (seq is 1-based).
 */
#ifndef SMS_ENC_H
#define SMS_ENC_H

#include <stddef.h>
#include <stdint.h>

#define SMS_MAX_PARTS 16     /* longer texts are refused with KK_ETOOBIG */
#define SMS_PART_MAX 166     /* UDH (6) + 160 octets */

enum sms_coding {
  SMS_CODING_GSM7 = 0,      /* GSM 03.38 default alphabet, unpacked */
  SMS_CODING_UCS2 = 8,      /* UTF-16BE */
};

struct sms_info {
  enum sms_coding coding;   /* the cheapest coding that holds the whole text */
  size_t chars;             /* Unicode code points in the text */
  size_t units;             /* septets (GSM-7, extension chars count 2) or UTF-16 units */
  int segments;             /* parts needed: 1 if units fit one SMS */
};

struct sms_part {
  size_t len;                   /* octets used in data */
  uint8_t data[SMS_PART_MAX];   /* UDH (if concatenated) followed by the payload */
};

struct sms_encoded {
  enum sms_coding coding;
  int nparts;                   /* 1..SMS_MAX_PARTS */
  int udhi;                     /* 1 when parts carry a UDH (esm_class 0x40) */
  struct sms_part part[SMS_MAX_PARTS];
};

/*
 * Classifies a UTF-8 text and counts its segments.
 * Returns 0, KK_EUTF8 (invalid UTF-8, including overlongs and lone
 * surrogates, or a NUL character), KK_EINVAL (empty text) or KK_ETOOBIG (more
 * than SMS_MAX_PARTS).
 * On KK_ETOOBIG *out is still filled in.
 */
int sms_analyze(const char *utf8, size_t len, struct sms_info *out);

/*
 * Encodes a UTF-8 text into parts ready for submit_sm short_message, using the
 * coding sms_analyze() picks. ref is the concatenation reference (the caller
 * rotates it per destination). Same return codes as sms_analyze().
 */
int sms_encode(const char *utf8, size_t len, uint8_t ref, struct sms_encoded *out);

/*
 * Decodes a received short message (MO or receipt text) to UTF-8 into out
 * (cap bytes including the terminating NUL). data_coding: 0x00 GSM-7 unpacked,
 * 0x01 IA5/ASCII, 0x03 Latin-1, 0x08 UCS-2; other values are treated as
 * Latin-1. Unmappable input and NUL characters become U+FFFD (the output
 * never holds a NUL before its end). Returns the UTF-8 length written,
 * or KK_ENOSPC when out is too small (output is then truncated, NUL-ended).
 */
int sms_decode(uint8_t data_coding, const uint8_t *p, size_t len, char *out, size_t cap);

#endif
