/* The COCO caption evaluation's preprocessing without Java. pycocoevalcap runs Stanford
 * CoreNLP's PTBTokenizer (-preserveLines -lowerCase, PTB3 escaping) on every caption,
 * then drops the tokens of its PUNCTUATIONS list. This reproduces the tokenizer's rules
 * that captions meet, token by token:
 *  - words split at whitespace; opening quotes (" “ ` ‘ ') become `` or `, closing ones
 *    '' or ', brackets -LRB- -RRB- -LSB- -RSB- -LCB- -RCB-, dashes (--, —, –) --;
 *  - final punctuation split off: . , ; : ? ! % and runs of dots as "..."; a period
 *    stays on abbreviations (u.s., mr., st., etc.: letters and periods, or a known short
 *    word) and inside numbers (3.5, 1,000 and 10:30 stay whole);
 *  - clitics split: n't ('can't' -> ca n't), 's 're 've 'll 'd 'm; "cannot" -> can not;
 *  - a leading $ or # split off; '/' and '*' escaped as \/ and \*; &amp; -> &;
 *  - every token lower-cased after escaping, as the tokenizer's -lowerCase does it: so
 *    "(" ends up as "-lrb-", which the PUNCTUATIONS list (upper-case "-LRB-") keeps;
 *  - then the tokens '' ' `` ` . ? ! , : - -- ... ; are removed.
 * Not reproduced: CoreNLP's Americanization, SGML/URL/e-mail/phone rules, and its
 * splitting inside words of other punctuation; such captions may tokenize differently
 * (docs/EVAL.md). */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "ocellus.h"
#include "pytext.h"
#include "strbuf.h"

/* pycocoevalcap's PUNCTUATIONS, compared with the lower-cased tokens. */
static const char *const DROP[] = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                                   ".", "?", "!", ",", ":", "-", "--", "...", ";"};

/* Short words that keep their period (CoreNLP's abbreviation lists, the common ones). */
static const char *const ABBREV[] = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "mt", "ft", "prof", "gen", "sen", "rep",
    "gov", "lt", "col", "capt", "sgt", "inc", "co", "corp", "ltd", "bros", "vs", "etc",
    "no", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "ave", "blvd", "rd", "dept", "approx", "est", "fig"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    char **v;
    size_t n, cap;
    int failed;
} toks;

static void push(toks *t, const char *s, size_t n) {
    if (t->failed)
        return;
    if (t->n == t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 16;
        char **nv = oc_realloc(t->v, nc * sizeof *nv);
        if (!nv) {
            t->failed = 1;
            return;
        }
        t->v = nv;
        t->cap = nc;
    }
    if (!(t->v[t->n] = oc_strndup(s, n)))
        t->failed = 1;
    else
        t->n++;
}

static void push_str(toks *t, const char *s) { push(t, s, strlen(s)); }

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int starts(const char *s, size_t n, const char *lit) {
    size_t k = strlen(lit);
    return n >= k && memcmp(s, lit, k) == 0;
}

static int ends(const char *s, size_t n, const char *lit) {
    size_t k = strlen(lit);
    return n >= k && memcmp(s + n - k, lit, k) == 0;
}

/* ASCII case-insensitive suffix test. */
static int iends(const char *s, size_t n, const char *lit) {
    size_t k = strlen(lit);
    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++) {
        char c = s[n - k + i];
        if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != lit[i])
            return 0;
    }
    return 1;
}

/* s[0:n) without its final period: an abbreviation that keeps it? */
static int abbreviation(const char *s, size_t n) {
    if (n == 0)
        return 0;
    /* letters separated by periods: u.s, a.m, e.g */
    int dotted = n >= 3;
    for (size_t i = 0; i < n && dotted; i++)
        dotted = i % 2 == 0 ? is_alpha(s[i]) : s[i] == '.';
    if (dotted && n % 2 == 1)
        return 1;
    for (size_t i = 0; i < COUNT(ABBREV); i++) {
        size_t k = strlen(ABBREV[i]);
        if (k == n && iends(s, n, ABBREV[i]))
            return 1;
    }
    return 0;
}

static const char *const CLITICS[] = {"n't", "'s", "'re", "'ve", "'ll", "'d", "'m",
                                       "n\xE2\x80\x99t", "\xE2\x80\x99s", "\xE2\x80\x99re",
                                       "\xE2\x80\x99ve", "\xE2\x80\x99ll", "\xE2\x80\x99\x64",
                                       "\xE2\x80\x99m"};

/* The clitic at the end of a longer word (with ' or ’), or 0 bytes. */
static size_t clitic_len(const char *s, size_t n) {
    for (size_t i = 0; i < COUNT(CLITICS); i++) {
        size_t k = strlen(CLITICS[i]);
        if (n > k && iends(s, n, CLITICS[i]))
            return k;
    }
    return 0;
}

/* A chunk that is a clitic alone ("'s" after a space, as in "the dog 's"). */
static int clitic_word(const char *s, size_t n) {
    for (size_t i = 0; i < COUNT(CLITICS); i++)
        if (strlen(CLITICS[i]) == n && iends(s, n, CLITICS[i]))
            return 1;
    return 0;
}

/* The middle of a chunk: "--" splits it; '/' and '*' are escaped; &amp; is &. */
static void core_tokens(toks *t, const char *s, size_t n) {
    while (n) {
        const char *dd = NULL;
        for (size_t i = 0; i + 1 < n; i++)
            if (s[i] == '-' && s[i + 1] == '-') {
                dd = s + i;
                break;
            }
        size_t len = dd ? (size_t)(dd - s) : n;
        if (len) {
            oc_strbuf b = {0};
            for (size_t i = 0; i < len; i++) {
                if (s[i] == '/' || s[i] == '*')
                    oc_sb_putn(&b, "\\", 1);
                if (starts(s + i, len - i, "&amp;")) {
                    oc_sb_putn(&b, "&", 1);
                    i += 4;
                    continue;
                }
                oc_sb_putn(&b, s + i, 1);
            }
            if (b.failed || !b.data)
                t->failed = 1;
            else
                push(t, b.data, b.len);
            oc_sb_free(&b);
        }
        if (!dd)
            break;
        push_str(t, "--");
        size_t skip = len + 2;
        while (skip < n && s[skip] == '-')
            skip++;
        s += skip;
        n -= skip;
    }
}

/* One whitespace-free chunk into PTB tokens. */
static void chunk_tokens(toks *t, const char *s, size_t n) {
    /* leading marks */
    for (;;) {
        if (starts(s, n, "``")) {
            push_str(t, "``"), s += 2, n -= 2;
        } else if (starts(s, n, "\"")) {
            push_str(t, "``"), s += 1, n -= 1;
        } else if (starts(s, n, "\xE2\x80\x9C") || starts(s, n, "\xE2\x80\x9E")) {
            push_str(t, "``"), s += 3, n -= 3;
        } else if (starts(s, n, "`")) {
            push_str(t, "`"), s += 1, n -= 1;
        } else if (starts(s, n, "\xE2\x80\x98")) {
            push_str(t, "`"), s += 3, n -= 3;
        } else if (starts(s, n, "'") && n > 1 && !clitic_word(s, n)) {
            push_str(t, "`"), s += 1, n -= 1;
        } else if (starts(s, n, "(")) {
            push_str(t, "-LRB-"), s += 1, n -= 1;
        } else if (starts(s, n, "[")) {
            push_str(t, "-LSB-"), s += 1, n -= 1;
        } else if (starts(s, n, "{")) {
            push_str(t, "-LCB-"), s += 1, n -= 1;
        } else if (starts(s, n, "\xE2\x80\x94") || starts(s, n, "\xE2\x80\x93")) {
            push_str(t, "--"), s += 3, n -= 3;
        } else if (starts(s, n, "--")) {
            push_str(t, "--"), s += 2, n -= 2;
            while (n && *s == '-')
                s++, n--;
        } else if (n > 1 && *s == '-' && !is_digit(s[1]) && s[1] != '.') {
            push_str(t, "-"), s += 1, n -= 1;
        } else if (n > 1 && (*s == '$' || *s == '#')) {
            push(t, s, 1), s += 1, n -= 1;
        } else {
            break;
        }
    }
    /* trailing marks, collected outside-in */
    toks tail = {0};
    for (;;) {
        if (n >= 3 && ends(s, n, "...")) {
            while (n && s[n - 1] == '.')
                n--;
            push_str(&tail, "...");
        } else if (ends(s, n, "\xE2\x80\xA6")) {
            n -= 3, push_str(&tail, "...");
        } else if (n > 1 && s[n - 1] == '.') {
            if (abbreviation(s, n - 1))
                break;
            n--, push_str(&tail, ".");
        } else if (n == 1 && s[0] == '.') {
            n--, push_str(&tail, ".");
        } else if (n && strchr(",;:?!%", s[n - 1]) && s[n - 1]) {
            n--, push(&tail, s + n, 1);
        } else if (ends(s, n, "''")) {
            n -= 2, push_str(&tail, "''");
        } else if (n && s[n - 1] == '"') {
            n--, push_str(&tail, "''");
        } else if (ends(s, n, "\xE2\x80\x9D")) {
            n -= 3, push_str(&tail, "''");
        } else if (n > 1 && s[n - 1] == '\'' && !clitic_len(s, n)) {
            n--, push_str(&tail, "'");
        } else if (n > 3 && ends(s, n, "\xE2\x80\x99") && !clitic_len(s, n)) {
            n -= 3, push_str(&tail, "'");
        } else if (n && s[n - 1] == ')') {
            n--, push_str(&tail, "-RRB-");
        } else if (n && s[n - 1] == ']') {
            n--, push_str(&tail, "-RSB-");
        } else if (n && s[n - 1] == '}') {
            n--, push_str(&tail, "-RCB-");
        } else if (n > 1 && s[n - 1] == '-') {
            n--, push_str(&tail, "-");
        } else {
            break;
        }
    }
    /* clitics, "cannot" */
    if (n) {
        size_t c = clitic_len(s, n);
        if (n == 6 && iends(s, n, "cannot")) {
            push(t, s, 3);
            push(t, s + 3, 3);
        } else if (c) {
            core_tokens(t, s, n - c);
            push(t, s + n - c, c);
        } else {
            core_tokens(t, s, n);
        }
    }
    for (size_t i = tail.n; i > 0; i--)
        push_str(t, tail.v[i - 1]);
    t->failed |= tail.failed;
    for (size_t i = 0; i < tail.n; i++)
        oc_free(tail.v[i]);
    oc_free(tail.v);
}

static int dropped(const char *tok) {
    for (size_t i = 0; i < COUNT(DROP); i++)
        if (!strcmp(tok, DROP[i]))
            return 1;
    return 0;
}

oc_status oc_caption_tokenize(const char *caption, char **out) {
    if (!caption || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_caption_tokenize: NULL argument");
    char *text = oc_strdup(caption);
    if (!text)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' '; /* pycocoevalcap joins each caption's lines */
    char **words;
    size_t n = oc_py_split(text, &words);
    oc_free(text);
    if (n == (size_t)-1)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    toks t = {0};
    for (size_t i = 0; i < n; i++)
        chunk_tokens(&t, words[i], strlen(words[i]));
    oc_py_words_free(words, n);
    oc_strbuf b = {0};
    oc_sb_puts(&b, "");
    for (size_t i = 0; i < t.n && !t.failed; i++) {
        char *low = oc_py_lower(t.v[i]);
        if (!low) {
            t.failed = 1;
            break;
        }
        if (*low && !dropped(low)) {
            if (b.len)
                oc_sb_puts(&b, " ");
            oc_sb_puts(&b, low);
        }
        oc_free(low);
    }
    for (size_t i = 0; i < t.n; i++)
        oc_free(t.v[i]);
    oc_free(t.v);
    if (t.failed || b.failed) {
        oc_sb_free(&b);
        return oc_err(OC_ERR_NOMEM, "out of memory");
    }
    *out = b.data;
    return OC_OK;
}
