/* UTF-8 coding and the Unicode character classes the tokenizer needs, with utf8proc for
 * categories, case and normalisation forms. The classes follow the Rust functions that
 * Hugging Face tokenizers calls, so that splits agree character for character. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

#include "alloc.h"
#include "error.h"
#include "tok_internal.h"

/* The accepted range of the second byte after lead byte b, and the sequence length
 * (0 for a byte that cannot start a character). Table 3-7 of the Unicode standard. */
static int utf8_lead(unsigned char b, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b == 0xE0) {
        *lo = 0xA0;
        return 3;
    }
    if (b == 0xED) {
        *hi = 0x9F; /* no surrogates */
        return 3;
    }
    if (b >= 0xE1 && b <= 0xEF)
        return 3;
    if (b == 0xF0) {
        *lo = 0x90;
        return 4;
    }
    if (b == 0xF4) {
        *hi = 0x8F; /* nothing above U+10FFFF */
        return 4;
    }
    if (b >= 0xF1 && b <= 0xF3)
        return 4;
    return 0;
}

/* Length of the valid character at s[0..n), or 0 with *bad = the length of the maximal
 * invalid subpart (at least 1). */
static size_t utf8_valid_at(const unsigned char *s, size_t n, size_t *bad) {
    unsigned char lo, hi;
    int len = utf8_lead(s[0], &lo, &hi);
    if (len == 0) {
        *bad = 1;
        return 0;
    }
    for (int k = 1; k < len; k++) {
        unsigned char c = k < (int)n ? s[k] : 0;
        int ok = k < (int)n && (k == 1 ? c >= lo && c <= hi : c >= 0x80 && c <= 0xBF);
        if (!ok) {
            *bad = (size_t)k;
            return 0;
        }
    }
    return (size_t)len;
}

size_t oc_utf8_check(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t bad, len = utf8_valid_at(u + i, n - i, &bad);
        if (!len)
            return i;
        i += len;
    }
    return n;
}

size_t oc_utf8_next(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned char b = u[0];
    if (b < 0x80 || n < 2) {
        *cp = b;
        return 1;
    }
    if (b < 0xE0) {
        *cp = ((uint32_t)(b & 0x1F) << 6) | (u[1] & 0x3F);
        return 2;
    }
    if (b < 0xF0 || n < 4) {
        *cp = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
          ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    return 4;
}

size_t oc_utf8_put(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

oc_status oc_utf8_lossy(oc_buf *out, const unsigned char *s, size_t n) {
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] < 0x80)
            j++;
        size_t bad = 0;
        while (j < n) {
            size_t len = s[j] < 0x80 ? 1 : utf8_valid_at(s + j, n - j, &bad);
            if (!len)
                break;
            j += len;
        }
        OC_TRY(oc_buf_append(out, s + i, j - i));
        if (j < n) {
            OC_TRY(oc_buf_append(out, replacement, 3));
            j += bad;
        }
        i = j;
    }
    return OC_OK;
}

/* ---- classes ------------------------------------------------------------------- */

int oc_uni_is_space(uint32_t cp) {
    if (cp < 0x80)
        return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static int category(uint32_t cp) { return (int)utf8proc_category((utf8proc_int32_t)cp); }

int oc_uni_is_word(uint32_t cp) {
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               cp == '_';
    if (cp == 0x200C || cp == 0x200D) /* Join_Control */
        return 1;
    /* Other_Alphabetic symbols: circled and squared Latin letters */
    if ((cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) ||
        (cp >= 0x1F150 && cp <= 0x1F169) || (cp >= 0x1F170 && cp <= 0x1F189))
        return 1;
    switch (category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}

int oc_uni_is_numeric(uint32_t cp) {
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    int c = category(cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

int oc_uni_is_punct(uint32_t cp) {
    if (cp < 0x80)
        return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) ||
               (cp >= 0x5B && cp <= 0x60) || (cp >= 0x7B && cp <= 0x7E);
    int c = category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

int oc_uni_is_other(uint32_t cp) {
    int c = category(cp);
    return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CN ||
           c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CS;
}

int oc_uni_is_mark(uint32_t cp) {
    int c = category(cp);
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME;
}

int oc_uni_is_mark_nonspacing(uint32_t cp) { return category(cp) == UTF8PROC_CATEGORY_MN; }

oc_status oc_uni_lower(oc_buf *out, uint32_t cp) {
    /* The one unconditional multi-character lowercase mapping (SpecialCasing.txt) that
     * utf8proc's simple mapping lacks: U+0130 -> "i" + U+0307. */
    if (cp == 0x130)
        return oc_buf_append(out, "i\xCC\x87", 3);
    return oc_buf_append_cp(out, (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
}

/* Normalizes s[0..n) with utf8proc, appending to out. utf8proc_map would allocate with
 * malloc: size the buffer first and use ours. */
static oc_status normalize_run(oc_buf *out, const char *s, size_t n, const char *form) {
    int opt = UTF8PROC_STABLE;
    if (form[2] == 'K')
        opt |= UTF8PROC_COMPAT;
    opt |= form[strlen(form) - 1] == 'C' ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE;
    if (n > (size_t)PTRDIFF_MAX / 8)
        return oc_err(OC_ERR_LIMIT, "tokenizer: text of %zu bytes is too long to normalize", n);
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t need = utf8proc_decompose(u, (utf8proc_ssize_t)n, NULL, 0,
                                               (utf8proc_option_t)opt);
    if (need < 0)
        return oc_err(OC_ERR_INVALID_ARG, "tokenizer: %s normalization failed: %s", form,
                      utf8proc_errmsg(need));
    utf8proc_int32_t *cps = oc_malloc(((size_t)need + 1) * sizeof *cps);
    if (!cps)
        return oc_err(OC_ERR_NOMEM, "tokenizer: out of memory normalizing %zu bytes", n);
    utf8proc_ssize_t m = utf8proc_decompose(u, (utf8proc_ssize_t)n, cps, need,
                                            (utf8proc_option_t)opt);
    if (m >= 0 && (opt & UTF8PROC_COMPOSE))
        m = utf8proc_normalize_utf32(cps, m, (utf8proc_option_t)opt);
    oc_status st = OC_OK;
    if (m < 0)
        st = oc_err(OC_ERR_INVALID_ARG, "tokenizer: %s normalization failed: %s", form,
                    utf8proc_errmsg(m));
    else
        st = oc_buf_reserve(out, (size_t)m * 4);
    for (utf8proc_ssize_t k = 0; st == OC_OK && k < m; k++)
        out->len += oc_utf8_put((uint32_t)cps[k], out->data + out->len);
    oc_free(cps);
    return st;
}

/* A character NFC leaves alone whatever surrounds it: a starter (combining class 0)
 * that cannot be the second half of a composition and is its own NFC. The text can be
 * cut before such a character and each part normalized alone. */
static int nfc_inert(uint32_t cp) {
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    if (p->combining_class != 0)
        return 0;
    if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000)
        return 0; /* composes with a preceding starter */
    if ((cp >= 0x1161 && cp <= 0x1175) || (cp >= 0x11A8 && cp <= 0x11C2))
        return 0; /* Hangul vowel and trailing jamo compose algorithmically */
    if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0)
        return 1; /* no canonical decomposition (Hangul syllables are algorithmic) */
    /* a precomposed character: inert if it recomposes to itself */
    utf8proc_int32_t buf[8];
    int bound = 0;
    utf8proc_ssize_t k = utf8proc_decompose_char((utf8proc_int32_t)cp, buf, 8,
                                                 UTF8PROC_STABLE | UTF8PROC_COMPOSE, &bound);
    if (k < 1 || k > 8)
        return 0;
    k = utf8proc_normalize_utf32(buf, k, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    return k == 1 && (uint32_t)buf[0] == cp;
}

/* NFC through utf8proc only where it can change something: the runs from the starter
 * before a non-inert character to the next inert one. */
static oc_status nfc(oc_buf *out, const char *s, size_t n) {
    size_t flushed = 0, starter = 0, i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = (unsigned char)s[i] < 0x80 ? (cp = (unsigned char)s[i], 1)
                                              : oc_utf8_next(s + i, n - i, &cp);
        if (cp < 0x300 || nfc_inert(cp)) { /* below U+0300: no combining marks */
            starter = i;
            i += k;
            continue;
        }
        size_t j = i + k;
        while (j < n) {
            size_t k2 = oc_utf8_next(s + j, n - j, &cp);
            if (cp < 0x300 || nfc_inert(cp))
                break;
            j += k2;
        }
        OC_TRY(oc_buf_append(out, s + flushed, starter - flushed));
        OC_TRY(normalize_run(out, s + starter, j - starter, "NFC"));
        flushed = starter = i = j;
    }
    return oc_buf_append(out, s + flushed, n - flushed);
}

oc_status oc_uni_normalize(oc_buf *out, const char *s, size_t n, const char *form) {
    out->len = 0;
    size_t i = 0;
    while (i < n && (unsigned char)s[i] < 0x80)
        i++;
    if (i == n) /* ASCII is invariant under every form */
        return oc_buf_append(out, s, n);
    if (!strcmp(form, "NFC"))
        return nfc(out, s, n);
    return normalize_run(out, s, n, form);
}

/* ---- GPT-2 byte-level map --------------------------------------------------------- */

/* Printable bytes stand for themselves; the others (controls, space, 0x7F-0xA0, 0xAD)
 * are numbered from U+0100 upwards in byte order. */
static int byte_is_printable(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t oc_bytelevel_char(uint8_t b) {
    if (byte_is_printable(b))
        return b;
    if (b <= 0x20)
        return 256u + b;        /* 0x00-0x20: U+0100-U+0120 */
    if (b <= 0xA0)
        return b + 162u;        /* 0x7F-0xA0: U+0121-U+0142 */
    return 323;                 /* 0xAD: U+0143 */
}

int oc_bytelevel_byte(uint32_t cp) {
    if (cp < 256)
        return byte_is_printable(cp) ? (int)cp : -1;
    if (cp <= 288)
        return (int)(cp - 256);
    if (cp <= 322)
        return (int)(cp - 162);
    return cp == 323 ? 0xAD : -1;
}
