/* bench_tokenizer: encoding speed of a tokenizer.json on ~1 MB of mixed-language text.
 *
 *   bench_tokenizer [TOKENIZER_JSON_OR_DIR] [MEGABYTES]
 *
 * The text is generated deterministically (a fixed LCG picks and perturbs sentences in
 * several scripts, code, numbers and emoji), so runs compare. Prints the load time and
 * MB/s for one call on the whole text (cold: first call, empty BPE cache; warm: best of
 * three more) and for one call per line. Times are the encoding thread's CPU time, which
 * other processes on a busy machine disturb much less than wall time (also printed).
 * Uses only the public API. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ocellus.h"

static const char *const SENTENCES[] = {
    "The quick brown fox jumps over the lazy dog.",
    "A cat sat on the mat, and the dog ran after a red ball.",
    "def f(x):\n    return x**2  # squares its argument\n",
    "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }",
    "Straße über Äpfel: Grüße aus Köln und München!",
    "Le café est très bon, n'est-ce pas ? Ça dépend.",
    "Привет, мир! Как дела? Всё хорошо, спасибо.",
    "日本語の文章です。東京は大きな都市です。",
    "中文分词测试：你好，世界！今天天气很好。",
    "한국어 문장도 조금 있습니다.",
    "مرحبا بالعالم، هذا نص عربي قصير.",
    "emoji 😀 and 👍🏽 and 👨\u200d👩\u200d👧 in text",
    "Numbers: 3.14159, -42, 1,000,000 and 2024-11-26T04:29:00Z.",
    "    indented line with    multiple     spaces\tand\ttabs",
    "URL: https://example.com/path?query=value&x=1#frag",
    "I'm sure they'll say it's fine, but we've seen what's DONE.",
};

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* About `bytes` of text, lines of one to four sentences, some words upper-cased and
 * some numbers inserted so that not every word repeats. */
static char *make_text(size_t bytes, size_t *len) {
    char *t = malloc(bytes + 4096);
    size_t n = 0;
    uint64_t seed = 12345;
    const size_t ns = sizeof SENTENCES / sizeof *SENTENCES;
    while (t && n < bytes) {
        int k = 1 + (int)(lcg(&seed) % 4);
        for (int j = 0; j < k; j++) {
            const char *s = SENTENCES[lcg(&seed) % ns];
            size_t l = strlen(s);
            memcpy(t + n, s, l);
            if (lcg(&seed) % 3 == 0) /* shout a few ASCII letters */
                for (size_t c = 0; c < l && c < 12; c++)
                    if (t[n + c] >= 'a' && t[n + c] <= 'z')
                        t[n + c] = (char)(t[n + c] - 32);
            n += l;
            n += (size_t)snprintf(t + n, 32, " %u ", (unsigned)(lcg(&seed) % 100000));
        }
        t[n++] = '\n';
    }
    *len = n;
    return t;
}

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }
static double wall(void) { return clock_s(CLOCK_MONOTONIC); }

/* Seconds to encode text in one call (per_line = 0) or one call per line. */
static double encode_time(const oc_tokenizer *tok, const char *text, size_t len, int per_line,
                          size_t *n_tokens) {
    double t0 = now();
    size_t total = 0, i = 0;
    while (i < len) {
        size_t j = len;
        if (per_line) {
            const char *nl = memchr(text + i, '\n', len - i);
            j = nl ? (size_t)(nl - text) + 1 : len;
        }
        int32_t *ids;
        size_t n;
        if (oc_tokenize(tok, text + i, j - i, 0, &ids, &n) != OC_OK) {
            fprintf(stderr, "bench_tokenizer: %s\n", oc_last_error());
            exit(3);
        }
        total += n;
        oc_free(ids);
        i = j;
    }
    *n_tokens = total;
    return now() - t0;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "tests/data/tokenizers/qwen3.json";
    double mb = argc > 2 ? atof(argv[2]) : 1.0;
    if (mb <= 0 || mb > 1024) {
        fprintf(stderr, "usage: bench_tokenizer [TOKENIZER] [MEGABYTES (default 1)]\n");
        return 2;
    }
    size_t len;
    char *text = make_text((size_t)(mb * 1e6), &len);
    if (!text)
        return 3;
    double t0 = now(), w0 = wall();
    oc_tokenizer *tok = NULL;
    if (oc_tokenizer_load(path, &tok) != OC_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", oc_last_error());
        return 3;
    }
    double load = now() - t0, load_wall = wall() - w0;
    size_t n_tok;
    double cold = encode_time(tok, text, len, 0, &n_tok), warm = 1e30, lines = 1e30;
    double w1 = wall(), warm_wall = 0;
    for (int r = 0; r < 3; r++) {
        double w = encode_time(tok, text, len, 0, &n_tok);
        warm = w < warm ? w : warm;
    }
    warm_wall = (wall() - w1) / 3;
    for (int r = 0; r < 3; r++) {
        size_t n2;
        double w = encode_time(tok, text, len, 1, &n2);
        lines = w < lines ? w : lines;
    }
    double m = (double)len / 1e6;
    printf("tokenizer %s\n", path);
    printf("text      %.2f MB, %zu tokens (%.2f bytes/token)\n", m, n_tok,
           (double)len / (double)n_tok);
    printf("load      %.3f s CPU (%.3f s wall)\n", load, load_wall);
    printf("encode    cold %.2f MB/s, warm %.2f MB/s, per line %.2f MB/s (%.0f tokens/s warm)\n",
           m / cold, m / warm, m / lines, (double)n_tok / warm);
    printf("          (warm, wall clock: %.2f MB/s)\n", m / warm_wall);
    oc_tokenizer_free(tok);
    free(text);
    return 0;
}
