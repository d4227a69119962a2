/* VQA accuracy with the answer normalisation of the official evaluation (vqaEval.py of
 * the VQA release): what it does to a prediction (processPunctuation, then
 * processDigitArticle) and to the human answers (processPunctuation, only when they are
 * not all the same), and the leave-one-out mean of min(1, matches / 3). Its quirks are
 * kept, since they decide the numbers people publish: the punctuation test looks at the
 * text before any replacement; a digit,digit comma anywhere makes every mark vanish
 * instead of turning into a space; the period rule removes at most 32 periods (the
 * script passes re.UNICODE, 32, as sub()'s count); the answers are not lower-cased. */
#include <string.h>

#include <utf8proc.h>

#include "alloc.h"
#include "error.h"
#include "ocellus.h"
#include "pytext.h"

/* vqaEval.py's punct list, in its order */
static const char PUNCT[] = ";/[]\"{}()=+\\_-><@`,?!";

/* vqaEval.py's manualMap (number words) and articles. */
static const char *const NUMBER_WORDS[][2] = {
    {"none", "0"}, {"zero", "0"}, {"one", "1"},  {"two", "2"},   {"three", "3"}, {"four", "4"},
    {"five", "5"}, {"six", "6"},  {"seven", "7"}, {"eight", "8"}, {"nine", "9"},  {"ten", "10"},
};
static const char *const ARTICLES[] = {"a", "an", "the"};

/* vqaEval.py's contractions: an answer word spelled without its apostrophe gets it
 * back. (Its keys with a capital I can never match: the words are lower-cased first.) */
static const char *const CONTRACTIONS[][2] = {
    {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"},
    {"couldnt", "couldn't"}, {"couldn'tve", "couldn't've"}, {"couldnt've", "couldn't've"},
    {"didnt", "didn't"}, {"doesnt", "doesn't"}, {"dont", "don't"}, {"hadnt", "hadn't"},
    {"hadnt've", "hadn't've"}, {"hadn'tve", "hadn't've"}, {"hasnt", "hasn't"},
    {"havent", "haven't"}, {"hed", "he'd"}, {"hed've", "he'd've"}, {"he'dve", "he'd've"},
    {"hes", "he's"}, {"howd", "how'd"}, {"howll", "how'll"}, {"hows", "how's"},
    {"Id've", "I'd've"}, {"I'dve", "I'd've"}, {"Im", "I'm"}, {"Ive", "I've"},
    {"isnt", "isn't"}, {"itd", "it'd"}, {"itd've", "it'd've"}, {"it'dve", "it'd've"},
    {"itll", "it'll"}, {"let's", "let's"}, {"maam", "ma'am"}, {"mightnt", "mightn't"},
    {"mightnt've", "mightn't've"}, {"mightn'tve", "mightn't've"}, {"mightve", "might've"},
    {"mustnt", "mustn't"}, {"mustve", "must've"}, {"neednt", "needn't"}, {"notve", "not've"},
    {"oclock", "o'clock"}, {"oughtnt", "oughtn't"}, {"ow's'at", "'ow's'at"},
    {"'ows'at", "'ow's'at"}, {"'ow'sat", "'ow's'at"}, {"shant", "shan't"},
    {"shed've", "she'd've"}, {"she'dve", "she'd've"}, {"she's", "she's"},
    {"shouldve", "should've"}, {"shouldnt", "shouldn't"}, {"shouldnt've", "shouldn't've"},
    {"shouldn'tve", "shouldn't've"}, {"somebody'd", "somebodyd"},
    {"somebodyd've", "somebody'd've"}, {"somebody'dve", "somebody'd've"},
    {"somebodyll", "somebody'll"}, {"somebodys", "somebody's"}, {"someoned", "someone'd"},
    {"someoned've", "someone'd've"}, {"someone'dve", "someone'd've"},
    {"someonell", "someone'll"}, {"someones", "someone's"}, {"somethingd", "something'd"},
    {"somethingd've", "something'd've"}, {"something'dve", "something'd've"},
    {"somethingll", "something'll"}, {"thats", "that's"}, {"thered", "there'd"},
    {"thered've", "there'd've"}, {"there'dve", "there'd've"}, {"therere", "there're"},
    {"theres", "there's"}, {"theyd", "they'd"}, {"theyd've", "they'd've"},
    {"they'dve", "they'd've"}, {"theyll", "they'll"}, {"theyre", "they're"},
    {"theyve", "they've"}, {"twas", "'twas"}, {"wasnt", "wasn't"}, {"wed've", "we'd've"},
    {"we'dve", "we'd've"}, {"weve", "we've"}, {"werent", "weren't"}, {"whatll", "what'll"},
    {"whatre", "what're"}, {"whats", "what's"}, {"whatve", "what've"}, {"whens", "when's"},
    {"whered", "where'd"}, {"wheres", "where's"}, {"whereve", "where've"}, {"whod", "who'd"},
    {"whod've", "who'd've"}, {"who'dve", "who'd've"}, {"wholl", "who'll"}, {"whos", "who's"},
    {"whove", "who've"}, {"whyll", "why'll"}, {"whyre", "why're"}, {"whys", "why's"},
    {"wont", "won't"}, {"wouldve", "would've"}, {"wouldnt", "wouldn't"},
    {"wouldnt've", "wouldn't've"}, {"wouldn'tve", "wouldn't've"}, {"yall", "y'all"},
    {"yall'll", "y'all'll"}, {"y'allll", "y'all'll"}, {"yall'd've", "y'all'd've"},
    {"y'alld've", "y'all'd've"}, {"y'all'dve", "y'all'd've"}, {"youd", "you'd"},
    {"youd've", "you'd've"}, {"you'dve", "you'd've"}, {"youll", "you'll"},
    {"youre", "you're"}, {"youve", "you've"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Python's \d: a Unicode decimal digit. */
static int digit_at(const char *s, size_t n) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
    return k > 0 && utf8proc_category(c) == UTF8PROC_CATEGORY_ND;
}

/* Is a digit the character before position i? (Digits take up to 4 bytes.) */
static int digit_before(const char *s, size_t i) {
    for (size_t k = 1; k <= 4 && k <= i; k++)
        if (((unsigned char)s[i - k] & 0xC0) != 0x80)
            return digit_at(s + i - k, k);
    return 0;
}

/* re.search(r"(\d)(\,)(\d)", s) */
static int comma_between_digits(const char *s) {
    size_t n = strlen(s);
    for (size_t i = 1; i + 1 < n; i++)
        if (s[i] == ',' && digit_before(s, i) && digit_at(s + i + 1, n - i - 1))
            return 1;
    return 0;
}

/* vqaEval.processPunctuation: each mark removed when the original text has it next to a
 * space (or a digit,digit comma anywhere), else replaced by a space; then periods not
 * followed by a digit removed (the first 32 of them). */
static char *process_punctuation(const char *in) {
    char *out = oc_strdup(in);
    if (!out)
        return NULL;
    int comma = comma_between_digits(in);
    for (const char *p = PUNCT; *p; p++) {
        char pair1[3] = {*p, ' ', 0}, pair2[3] = {' ', *p, 0};
        int drop = comma || strstr(in, pair1) || strstr(in, pair2);
        size_t o = 0;
        for (size_t i = 0; out[i]; i++) {
            if (out[i] != *p)
                out[o++] = out[i];
            else if (!drop)
                out[o++] = ' ';
        }
        out[o] = 0;
    }
    size_t o = 0, removed = 0, len = strlen(out);
    for (size_t i = 0; i < len; i++) {
        if (out[i] == '.' && removed < 32 && !digit_at(out + i + 1, len - i - 1)) {
            removed++;
            continue;
        }
        out[o++] = out[i];
    }
    out[o] = 0;
    return out;
}

static const char *map_word(const char *w) {
    for (size_t i = 0; i < COUNT(NUMBER_WORDS); i++)
        if (!strcmp(w, NUMBER_WORDS[i][0]))
            return NUMBER_WORDS[i][1];
    return w;
}

static int is_article(const char *w) {
    for (size_t i = 0; i < COUNT(ARTICLES); i++)
        if (!strcmp(w, ARTICLES[i]))
            return 1;
    return 0;
}

static const char *contraction(const char *w) {
    for (size_t i = 0; i < COUNT(CONTRACTIONS); i++)
        if (!strcmp(w, CONTRACTIONS[i][0]))
            return CONTRACTIONS[i][1];
    return w;
}

/* vqaEval.processDigitArticle: lower-case, split, number words to digits, articles
 * dropped, contractions restored, joined by single spaces. */
static char *process_digit_article(const char *in) {
    char *low = oc_py_lower(in);
    if (!low)
        return NULL;
    char **w;
    size_t n = oc_py_split(low, &w);
    oc_free(low);
    if (n == (size_t)-1)
        return NULL;
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += strlen(w[i]) + 16;
    char *out = oc_malloc(cap);
    if (out) {
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            const char *word = map_word(w[i]);
            if (is_article(word))
                continue;
            word = contraction(word);
            size_t k = strlen(word);
            if (o)
                out[o++] = ' ';
            memcpy(out + o, word, k);
            o += k;
        }
        out[o] = 0;
    }
    oc_py_words_free(w, n);
    return out;
}

oc_status oc_vqa_normalize(const char *answer, char **out) {
    if (!answer || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_vqa_normalize: NULL argument");
    char *a = oc_strdup(answer);
    if (!a)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    for (char *p = a; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    char *stripped = oc_py_strip(a);
    oc_free(a);
    char *punct = stripped ? process_punctuation(stripped) : NULL;
    oc_free(stripped);
    char *norm = punct ? process_digit_article(punct) : NULL;
    oc_free(punct);
    if (!norm)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    *out = norm;
    return OC_OK;
}

int oc_answer_matches(const char *prediction, const char *answer) {
    if (!prediction || !answer)
        return 0;
    const char *s[2] = {prediction, answer};
    size_t a[2], e[2];
    for (int k = 0; k < 2; k++) {
        a[k] = 0;
        while (s[k][a[k]] == ' ' || (s[k][a[k]] >= '\t' && s[k][a[k]] <= '\r'))
            a[k]++;
        e[k] = strlen(s[k]);
        while (e[k] > a[k] && (s[k][e[k] - 1] == '.' || s[k][e[k] - 1] == ' ' ||
                               (s[k][e[k] - 1] >= '\t' && s[k][e[k] - 1] <= '\r')))
            e[k]--;
    }
    if (e[0] - a[0] != e[1] - a[1])
        return 0;
    for (size_t i = 0; i < e[0] - a[0]; i++) {
        unsigned char x = (unsigned char)s[0][a[0] + i], y = (unsigned char)s[1][a[1] + i];
        if ((x >= 'A' && x <= 'Z' ? x + 32 : x) != (y >= 'A' && y <= 'Z' ? y + 32 : y))
            return 0;
    }
    return 1;
}

oc_status oc_vqa_accuracy(const char *prediction, const char *const *answers, size_t n,
                          double *accuracy) {
    if (!prediction || !answers || !accuracy || n == 0)
        return oc_err(OC_ERR_INVALID_ARG, "oc_vqa_accuracy: NULL argument or no answers");
    if (n == 1) {
        *accuracy = oc_answer_matches(prediction, answers[0]);
        return OC_OK;
    }
    char *res;
    OC_TRY(oc_vqa_normalize(prediction, &res));
    int differ = 0;
    for (size_t i = 1; i < n && !differ; i++)
        differ = strcmp(answers[i], answers[0]) != 0;
    /* 1 where the (processed) answer equals the processed prediction */
    unsigned char *match = oc_malloc(n);
    oc_status s = match ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    size_t matches = 0;
    for (size_t i = 0; s == OC_OK && i < n; i++) {
        char *g = differ ? process_punctuation(answers[i]) : NULL;
        if (differ && !g) {
            s = oc_err(OC_ERR_NOMEM, "out of memory");
            break;
        }
        match[i] = strcmp(differ ? g : answers[i], res) == 0;
        matches += match[i];
        oc_free(g);
    }
    if (s == OC_OK) {
        double sum = 0; /* Python's sum(): in order */
        for (size_t i = 0; i < n; i++) {
            double acc = (double)(matches - match[i]) / 3;
            sum += acc < 1 ? acc : 1;
        }
        *accuracy = sum / (double)n;
    }
    oc_free(match);
    oc_free(res);
    return s;
}
