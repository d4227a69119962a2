#!/usr/bin/python3
"""Makes the small images of tests/data/images-formats and what Pillow decodes them to.

Run with Debian's python3 (python3-pil 9.4, python3-numpy): /usr/bin/python3 make.py
For every image NAME.EXT it writes NAME.EXT.ref.png: the pixels transformers' load_image
gets, ImageOps.exif_transpose(Image.open(NAME.EXT)).convert("RGB"), as an 8-bit RGB PNG,
and a line "NAME.EXT W H 0" in expected.txt (the test accepts no difference).
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 23, 17
rng = np.random.default_rng(7)


def pattern():
    yy, xx = np.mgrid[0:H, 0:W]
    r = xx * 255 // (W - 1)
    g = yy * 255 // (H - 1)
    b = ((xx // 4 + yy // 4) % 2) * 200 + rng.integers(0, 56, (H, W))
    return np.stack([r, g, b], -1).astype(np.uint8)


RGB = pattern()
GREY = np.asarray(Image.fromarray(RGB).convert("L"))
ALPHA = (np.arange(W * H).reshape(H, W) * 7 % 256).astype(np.uint8)
ALPHA[0, :] = 0  # fully transparent row: PIL keeps its colour, it does not composite


def png_chunk(tag, data):
    c = struct.pack(">I", len(data)) + tag + data
    return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_raw(arr16, colour_type):
    """A 16-bit PNG written by hand (PIL cannot write 16-bit colour PNGs)."""
    h, w = arr16.shape[:2]
    rows = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


expected = []


def save_bytes(name, data, tol=0):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    im = ImageOps.exif_transpose(Image.open(os.path.join(HERE, name))).convert("RGB")
    im.save(os.path.join(HERE, name + ".ref.png"))
    expected.append(f"{name} {im.size[0]} {im.size[1]} 0")


def save(name, im, tol=0, **kw):
    buf = io.BytesIO()
    im.save(buf, format=kw.pop("format", None) or name.rsplit(".", 1)[1].upper()
            .replace("JPG", "JPEG").replace("PPM", "PPM").replace("PGM", "PPM")
            .replace("TGA", "TGA").replace("WEBP", "WEBP"), **kw)
    save_bytes(name, buf.getvalue(), tol)


# PNG: every colour type PIL opens, and 16 bits
save("rgb.png", Image.fromarray(RGB))
save("grey.png", Image.fromarray(GREY))
save("grey_alpha.png", Image.fromarray(np.stack([GREY, ALPHA], -1), "LA"))
save("rgba.png", Image.fromarray(np.dstack([RGB, ALPHA]), "RGBA"))
pal = Image.fromarray(RGB).quantize(16)
save("palette.png", pal)
save("palette_trns.png", pal, transparency=3)
save("bilevel.png", Image.fromarray(GREY).convert("1"))
g16 = (np.arange(W * H).reshape(H, W) * 181 % 65536).astype(np.uint16)
g16[0, :5] = [0, 1, 254, 255, 256]
save_bytes("grey16.png", png_raw(g16, 0))
rgb16 = (RGB.astype(np.uint16) * 257 + rng.integers(0, 256, RGB.shape)).astype(np.uint16)
save_bytes("rgb16.png", png_raw(rgb16, 2))
rgba16 = np.dstack([rgb16, (ALPHA.astype(np.uint16) * 257)])
save_bytes("rgba16.png", png_raw(rgba16, 6))

# JPEG (libjpeg-turbo, as Pillow decodes it): the pattern and a photograph's crop of odd
# size (97 x 61: partial MCUs at the right and bottom edges), 4:2:0, 4:2:2, 4:4:4,
# progressive, grey, CMYK (Pillow writes Adobe's marker and inverted values)
PHOTO = np.asarray(Image.open(os.path.join(HERE, "..", "images", "chelsea_451x300.png"))
                   .convert("RGB"))[100:161, 180:277].copy()
save("baseline.jpg", Image.fromarray(RGB), quality=90)
save("q444.jpg", Image.fromarray(RGB), quality=95, subsampling=0)
save("progressive.jpg", Image.fromarray(RGB), quality=90, progressive=True)
save("grey.jpg", Image.fromarray(GREY), quality=90)
save("cmyk.jpg", Image.fromarray(RGB).convert("CMYK"), quality=95)
save("photo420.jpg", Image.fromarray(PHOTO), quality=85, subsampling=2)
save("photo422.jpg", Image.fromarray(PHOTO), quality=85, subsampling=1)
save("photo444.jpg", Image.fromarray(PHOTO), quality=85, subsampling=0)
save("photo_progressive.jpg", Image.fromarray(PHOTO), quality=85, progressive=True)
save("photo_progressive444.jpg", Image.fromarray(PHOTO), quality=70, progressive=True,
     subsampling=0, optimize=True)
save("photo_grey.jpg", Image.fromarray(PHOTO).convert("L"), quality=85)
save("photo_cmyk.jpg", Image.fromarray(PHOTO).convert("CMYK"), quality=90)


def strip_adobe(data):
    """The same JPEG without its APP14 (Adobe) segment."""
    p = 2
    while data[p] == 0xFF and data[p + 1] != 0xEE:
        p += 2 + (data[p + 2] << 8 | data[p + 3])
    n = 2 + (data[p + 2] << 8 | data[p + 3])
    return data[:p] + data[p + n:]


buf = io.BytesIO()
Image.fromarray(PHOTO).convert("CMYK").save(buf, format="JPEG", quality=90)
save_bytes("photo_cmyk_noadobe.jpg", strip_adobe(buf.getvalue()))

# EXIF orientation 1..8 (a non-square crop, so that a wrong axis shows), applied as
# transformers' load_image does; JPEG, PNG (eXIf) and WebP (EXIF chunk)
ORIENT = Image.fromarray(PHOTO[5:28, 10:47])


def exif(orientation):
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


for k in range(1, 9):
    save(f"orient{k}.jpg", ORIENT, quality=90, exif=exif(k))
save("orient6.png", ORIENT, exif=exif(6))
save("orient8.webp", ORIENT, lossless=True, exif=exif(8))

# WebP: lossy and lossless, with alpha (fully transparent pixels included), an animation
# (the first frame counts)
RGBA = np.dstack([PHOTO, (np.arange(PHOTO.shape[0] * PHOTO.shape[1]) * 11 % 256)
                  .reshape(PHOTO.shape[:2]).astype(np.uint8)])
RGBA[0, :, 3] = 0
save("lossy.webp", Image.fromarray(PHOTO), quality=80)
save("lossless.webp", Image.fromarray(PHOTO), lossless=True)
save("lossy_alpha.webp", Image.fromarray(RGBA, "RGBA"), quality=80)
save("lossless_alpha.webp", Image.fromarray(RGBA, "RGBA"), lossless=True)
wframes = [Image.fromarray(np.roll(PHOTO, 9 * k, axis=1)) for k in range(3)]
buf = io.BytesIO()
wframes[0].save(buf, format="WEBP", save_all=True, append_images=wframes[1:], duration=100,
                quality=80)
save_bytes("anim.webp", buf.getvalue())

# BMP: 24-bit, 8-bit palette, 1-bit, 32-bit with alpha
save("rgb.bmp", Image.fromarray(RGB))
save("palette.bmp", pal)
save("bilevel.bmp", Image.fromarray(GREY).convert("1"))
save("rgba.bmp", Image.fromarray(np.dstack([RGB, ALPHA]), "RGBA"))

# BMP written by hand: what PIL cannot write (16-bit 5-5-5 and 5-6-5, top-down, 4-bit)
def bmp(bpp, rows, comp=0, masks=b"", top_down=False, palette=b""):
    stride = ((W * bpp + 31) // 32) * 4
    data = b"".join(r + b"\0" * (stride - len(r)) for r in (rows if top_down else rows[::-1]))
    off = 14 + 40 + len(masks) + len(palette)
    dib = struct.pack("<IiiHHIIiiII", 40, W, -H if top_down else H, 1, bpp, comp, len(data),
                      2835, 2835, len(palette) // 4, 0)
    return b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + dib + masks + palette + data


v16 = rng.integers(0, 65536, (H, W)).astype("<u2")
save_bytes("rgb555.bmp", bmp(16, [r.tobytes() for r in v16]))
save_bytes("rgb565.bmp", bmp(16, [r.tobytes() for r in v16], comp=3,
                             masks=struct.pack("<III", 0xF800, 0x07E0, 0x001F)))
save_bytes("top_down.bmp", bmp(24, [r[:, ::-1].tobytes() for r in RGB], top_down=True))
pal16 = b"".join(struct.pack("<BBBB", *rng.integers(0, 256, 3), 0) for _ in range(16))
v4 = rng.integers(0, 256, (H, (W + 1) // 2)).astype(np.uint8)
save_bytes("palette4.bmp", bmp(4, [r.tobytes() for r in v4], palette=pal16))

# TGA 16-bit, written by hand
save_bytes("rgb16.tga", struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, W, H, 16, 0)
           + v16.tobytes())

# GIF: an animation (the first frame counts), one with a transparent index
frames = [Image.fromarray(np.roll(RGB, 5 * k, axis=1)).quantize(32) for k in range(3)]
buf = io.BytesIO()
frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100,
               loop=0)
save_bytes("anim.gif", buf.getvalue())
save("trans.gif", pal, transparency=2)

# A GIF whose first frame covers only part of the screen: PIL fills the rest with
# palette index 0 (or the transparent index). Made by enlarging a GIF's screen.
small = Image.fromarray(RGB[:9, :11]).quantize(8)
for name, kw in (("partial.gif", {}), ("partial_trans.gif", {"transparency": 1})):
    buf = io.BytesIO()
    small.save(buf, format="GIF", **kw)
    b = bytearray(buf.getvalue())
    b[6:10] = struct.pack("<HH", W, H)
    d = b.index(b"\x2c", 13 + (3 << ((b[10] & 7) + 1)))  # the image descriptor
    b[d + 1:d + 5] = struct.pack("<HH", 5, 4)
    save_bytes(name, bytes(b))

# TGA: raw, RLE, with alpha
save("rgb.tga", Image.fromarray(RGB))
save("rle.tga", Image.fromarray(RGB), compression="tga_rle")
save("rgba.tga", Image.fromarray(np.dstack([RGB, ALPHA]), "RGBA"))

# PNM: P6, P5, P5 16-bit, and maxvals PIL rescales
save("rgb.ppm", Image.fromarray(RGB), format="PPM")
save("grey.pgm", Image.fromarray(GREY), format="PPM")
save_bytes("grey16.pgm", b"P5\n# sixteen bits\n%d %d\n65535\n" % (W, H) + g16.astype(">u2").tobytes())
save_bytes("max1000.pgm", b"P5 %d %d 1000\n" % (W, H)
           + (g16 % 1001).astype(">u2").tobytes())
save_bytes("max15.ppm", b"P6\n%d %d\n15\n" % (W, H) + (RGB // 17).tobytes())
save_bytes("max4000.ppm", b"P6\n%d %d\n4000\n" % (W, H)
           + (RGB.astype(np.uint16) * 15).astype(">u2").tobytes())

with open(os.path.join(HERE, "expected.txt"), "w") as f:
    f.write("# name width height max-abs-diff\n")
    f.write("\n".join(expected) + "\n")
