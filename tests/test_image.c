/* Image decoding: every format against what transformers' load_image gets from Pillow,
 * ImageOps.exif_transpose(Image.open(f)).convert("RGB") (tests/data/images-formats, made
 * by make.py there): PNG, BMP, GIF, TGA, PNM; JPEG 4:2:0, 4:2:2, 4:4:4, progressive,
 * grey, Adobe CMYK and CMYK without the marker; WebP lossy, lossless, with alpha,
 * animated; EXIF orientations 1-8 (JPEG), PNG eXIf, WebP EXIF; all byte for byte. And
 * hostile or broken input:
 * truncated, empty, missing, not an image, headers claiming huge sizes, allocation
 * failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "file.h"
#include "image.h"
#include "testutil.h"

static unsigned char *read_all(const char *path, size_t *n) {
    char *d;
    if (oc_read_file(path, 1 << 26, &d, n) != OC_OK)
        fail_msg("%s", oc_last_error());
    return (unsigned char *)d;
}

/* The pixels of images-formats/NAME against Pillow's, NAME.ref.png (an 8-bit RGB PNG,
 * whose decoding is itself checked byte for byte against Pillow's by rgb.png). */
static void check_against_pil(const char *name, uint32_t w, uint32_t h, int tol) {
    char rel[256];
    snprintf(rel, sizeof rel, "images-formats/%s", name);
    oc_image *img = NULL, *ref = NULL;
    oc_status s = oc_image_load(td(rel), NULL, &img);
    if (s != OC_OK)
        fail_msg("%s: %s", name, oc_last_error());
    assert_int_equal(oc_image_width(img), w);
    assert_int_equal(oc_image_height(img), h);
    snprintf(rel, sizeof rel, "images-formats/%s.ref.png", name);
    if (oc_image_load(td(rel), NULL, &ref) != OC_OK)
        fail_msg("%s: %s", rel, oc_last_error());
    assert_int_equal(oc_image_width(ref), w);
    assert_int_equal(oc_image_height(ref), h);
    const uint8_t *got = oc_image_rgb(img), *want = oc_image_rgb(ref);
    int max = 0;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        int d = abs((int)got[i] - (int)want[i]);
        max = d > max ? d : max;
    }
    if (max > tol)
        fail_msg("%s: differs from Pillow by up to %d", name, max);
    oc_image_free(ref);
    oc_image_free(img);
}

static void test_formats_match_pil(void **state) {
    (void)state;
    size_t n;
    char *list = (char *)read_all(td("images-formats/expected.txt"), &n);
    int count = 0, exact = 0;
    char *save = NULL;
    for (char *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        unsigned w, h;
        int tol;
        if (line[0] == '#' || sscanf(line, "%127s %u %u %d", name, &w, &h, &tol) != 4)
            continue;
        check_against_pil(name, w, h, tol);
        count++;
        exact += tol == 0;
    }
    printf("%d images decoded as Pillow does (%d byte for byte)\n", count, exact);
    assert_true(count >= 60);
    assert_int_equal(exact, count);
    oc_free(list);
}

/* load_memory and stdin give the same pixels as a path. */
static void test_memory_and_stdin(void **state) {
    (void)state;
    const char *rel = "images-formats/anim.gif";
    oc_image *a, *b, *c;
    assert_int_equal(oc_image_load(td(rel), NULL, &a), OC_OK);
    size_t n;
    unsigned char *d = read_all(td(rel), &n);
    assert_int_equal(oc_image_load_memory(d, n, "anim.gif", NULL, &b), OC_OK);
    assert_int_equal(oc_image_width(a), oc_image_width(b));
    assert_memory_equal(oc_image_rgb(a), oc_image_rgb(b), (size_t)a->w * a->h * 3);
    oc_free(d);

    FILE *saved = stdin;
    assert_non_null(freopen(td(rel), "rb", stdin));
    assert_int_equal(oc_image_load("-", NULL, &c), OC_OK);
    assert_memory_equal(oc_image_rgb(a), oc_image_rgb(c), (size_t)a->w * a->h * 3);
    (void)saved;
    oc_image_free(a);
    oc_image_free(b);
    oc_image_free(c);
}

static void test_from_rgb(void **state) {
    (void)state;
    uint8_t px[2 * 3 * 3];
    for (int i = 0; i < 18; i++)
        px[i] = (uint8_t)(i * 13);
    oc_image *img;
    assert_int_equal(oc_image_from_rgb(px, 3, 2, &img), OC_OK);
    assert_int_equal(oc_image_width(img), 3);
    assert_int_equal(oc_image_height(img), 2);
    assert_memory_equal(oc_image_rgb(img), px, 18);
    oc_image_free(img);
    assert_int_equal(oc_image_from_rgb(px, 0, 2, &img), OC_ERR_INVALID_ARG);
    assert_int_equal(oc_image_from_rgb(NULL, 1, 1, &img), OC_ERR_INVALID_ARG);
    oc_image_free(NULL);
    assert_int_equal(oc_image_width(NULL), 0);
    oc_image_limits l = oc_image_default_limits();
    assert_true(l.max_pixels == 89478485 && l.max_side == 32768 &&
                l.max_file_bytes == (uint64_t)512 << 20);
}

/* ---- broken and hostile input --------------------------------------------------- */

static void expect_fail(const void *d, size_t n, const char *name, const oc_image_limits *lim,
                        oc_status want, const char *phrase) {
    oc_image *img = (oc_image *)0x1;
    oc_status s = oc_image_load_memory(d, n, name, lim, &img);
    if (s != want)
        fail_msg("%s: got %s (%s), expected %s", name, oc_status_str(s), oc_last_error(),
                 oc_status_str(want));
    assert_ptr_equal(img, (oc_image *)0x1); /* untouched */
    if (!strstr(oc_last_error(), name) || (phrase && !strstr(oc_last_error(), phrase)))
        fail_msg("%s: message \"%s\" lacks the name or \"%s\"", name, oc_last_error(),
                 phrase ? phrase : "");
}

static void test_truncated(void **state) {
    (void)state;
    const char *files[] = {"rgb.png", "grey16.png", "baseline.jpg", "progressive.jpg",
                           "photo420.jpg", "photo_cmyk.jpg", "lossy.webp", "lossless.webp",
                           "anim.webp", "trans.gif", "rgb.bmp", "palette.bmp", "rgb.tga",
                           "rle.tga", "rgb.ppm", "grey16.pgm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "images-formats/%s", files[i]);
        size_t n;
        unsigned char *d = read_all(td(rel), &n);
        for (int pct = 20; pct <= 80; pct += 30)
            expect_fail(d, n * (size_t)pct / 100, files[i], NULL, OC_ERR_FORMAT, NULL);
        oc_free(d);
    }
    printf("last truncation message: %s\n", oc_last_error());
}

static void test_empty_missing_not_image(void **state) {
    (void)state;
    const char *dir = tmpdir("image");
    char path[512];
    snprintf(path, sizeof path, "%s/empty.png", dir);
    write_bytes(path, "", 0);
    oc_image *img;
    assert_int_equal(oc_image_load(path, NULL, &img), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "empty.png: empty file"));

    assert_int_equal(oc_image_load("/nonexistent/photo.jpg", NULL, &img), OC_ERR_IO);
    assert_non_null(strstr(oc_last_error(), "/nonexistent/photo.jpg"));

    const char text[] = "this is not an image, just some words of text";
    expect_fail(text, sizeof text, "notes.txt", NULL, OC_ERR_UNSUPPORTED,
                "not a supported image (JPEG, PNG, WebP, BMP, GIF, TGA, PNM)");
    const char ascii[] = "P3\n2 2\n255\n0 0 0 1 1 1 2 2 2 3 3 3\n";
    expect_fail(ascii, strlen(ascii), "ascii.ppm", NULL,
                OC_ERR_UNSUPPORTED, "binary PNM");
    expect_fail("P6 2 2 0\n", 9, "zero.ppm", NULL, OC_ERR_FORMAT, "bad PNM header");
    assert_int_equal(oc_image_load_memory(text, 10, NULL, NULL, NULL), OC_ERR_INVALID_ARG);
}

/* A PNG whose header claims w x h: refused from the header, before any allocation. */
static size_t png_header(uint8_t *b, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(b, sig, 8);
    const uint8_t ihdr[] = {0, 0, 0, 13, 'I', 'H', 'D', 'R',
                            (uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                            (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                            8, 2, 0, 0, 0, 0, 0, 0, 0};
    memcpy(b + 8, ihdr, sizeof ihdr);
    const uint8_t idat[] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0, 0, 0, 0};
    memcpy(b + 8 + sizeof ihdr, idat, sizeof idat);
    return 8 + sizeof ihdr + sizeof idat;
}

static void test_over_limit(void **state) {
    (void)state;
    uint8_t b[64];
    size_t n = png_header(b, 100000, 100000);
    oc_alloc_fail_at(1); /* any allocation would fail: the limit must come first */
    expect_fail(b, n, "x.png", NULL, OC_ERR_LIMIT, "100000 x 100000 pixels is over the limit");
    oc_alloc_fail_at(0);
    printf("%s\n", oc_last_error());

    n = png_header(b, 30000, 30000); /* within a side, over Pillow's 89,478,485 pixels */
    expect_fail(b, n, "y.png", NULL, OC_ERR_LIMIT, "over the limit of 89478485 pixels");

    /* a JPEG frame header claiming 60000 x 60000 */
    const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0xEA, 0x60, 0xEA, 0x60, 1, 1,
                           0x11, 0, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0, 0xFF, 0xD9};
    expect_fail(jpg, sizeof jpg, "big.jpg", NULL, OC_ERR_LIMIT, "60000 x 60000");

    /* a PGM claiming 99999 x 99999 */
    const char pgm[] = "P5 99999 99999 255\n\x01\x02";
    expect_fail(pgm, sizeof pgm - 1, "big.pgm", NULL, OC_ERR_LIMIT, "99999 x 99999");

    /* caller's limits on a real file */
    size_t fn;
    unsigned char *d = read_all(td("images-formats/rgb.png"), &fn);
    oc_image_limits lim = oc_image_default_limits();
    lim.max_side = 20;
    expect_fail(d, fn, "rgb.png", &lim, OC_ERR_LIMIT, "20 pixels a side");
    lim = oc_image_default_limits();
    lim.max_pixels = 23 * 17 - 1;
    expect_fail(d, fn, "rgb.png", &lim, OC_ERR_LIMIT, NULL);
    lim = oc_image_default_limits();
    lim.max_file_bytes = fn - 1;
    expect_fail(d, fn, "rgb.png", &lim, OC_ERR_LIMIT, "bytes");
    oc_image *img;
    assert_int_equal(oc_image_load(td("images-formats/rgb.png"), &lim, &img), OC_ERR_LIMIT);
    lim.max_file_bytes = fn;
    assert_int_equal(oc_image_load(td("images-formats/rgb.png"), &lim, &img), OC_OK);
    oc_image_free(img);
    oc_free(d);
}

/* WebP and JPEG sizes are checked against the limits before pixels are allocated. */
static void test_webp_jpeg_limits(void **state) {
    (void)state;
    const char *files[] = {"lossy.webp", "anim.webp", "photo420.jpg", "photo_progressive.jpg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "images-formats/%s", files[i]);
        size_t n;
        unsigned char *d = read_all(td(rel), &n);
        oc_image_limits lim = oc_image_default_limits();
        lim.max_pixels = 97 * 61 - 1;
        oc_alloc_fail_at(1); /* the limit comes before any allocation of ours */
        expect_fail(d, n, files[i], &lim, OC_ERR_LIMIT, "97 x 61 pixels is over the limit");
        oc_alloc_fail_at(0);
        lim = oc_image_default_limits();
        lim.max_side = 96;
        expect_fail(d, n, files[i], &lim, OC_ERR_LIMIT, "96 pixels a side");
        oc_free(d);
    }
}

/* Inputs found by fuzzing that made stb_image 2.27 write or read out of bounds, read
 * uninitialised memory or allocate gigabytes (images-formats/hostile/README). */
static void test_hostile_files(void **state) {
    (void)state;
    const char *files[] = {"dht_overflow.jpg",   "dht_overflow_fill.jpg", "huffman_assert.jpg",
                           "huffman_index1.jpg", "huffman_index2.jpg",    "huge_chunk.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "images-formats/hostile/%s", files[i]);
        size_t n;
        unsigned char *d = read_all(td(rel), &n);
        expect_fail(d, n, files[i], NULL, OC_ERR_FORMAT, NULL);
        printf("%s\n", oc_last_error());
        oc_free(d);
    }
}

/* Every allocation may fail: the call then fails cleanly (ASan builds check leaks). */
static void test_allocation_failures(void **state) {
    (void)state;
    const char *files[] = {"rgb.png", "grey16.png", "progressive.jpg", "partial_trans.gif",
                           "rle.tga", "max4000.ppm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "images-formats/%s", files[i]);
        int ok = 0;
        for (long k = 1; k < 1000 && !ok; k++) {
            oc_image *img = NULL;
            oc_alloc_fail_at(k);
            oc_status s = oc_image_load(td(rel), NULL, &img);
            oc_alloc_fail_at(0);
            if (s != OC_OK && s != OC_ERR_NOMEM)
                fail_msg("%s, allocation %ld failing: %s", files[i], k, oc_last_error());
            ok = s == OC_OK;
            oc_image_free(img);
        }
        assert_true(ok);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_match_pil),
        cmocka_unit_test(test_memory_and_stdin),
        cmocka_unit_test(test_from_rgb),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_empty_missing_not_image),
        cmocka_unit_test(test_over_limit),
        cmocka_unit_test(test_webp_jpeg_limits),
        cmocka_unit_test(test_hostile_files),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
