"""Unit tests for app.inspection.photos (processing and on-disk storage)."""

from __future__ import annotations

import hashlib
import struct
import warnings
import zlib
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageFile, ImageOps

from app.inspection import photos
from app.inspection.photos import PhotoRejected, PhotoStore, ProcessedPhoto, process_photo

RED, BLUE = (220, 20, 20), (20, 20, 220)
GPS_IFD, ORIENTATION = 0x8825, 0x0112


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    """Save ``im`` in ``fmt`` and return the bytes."""
    out = BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def _phone_jpeg(size: tuple[int, int] = (400, 300), orientation: int = 6) -> bytes:
    """A JPEG like a phone makes: EXIF with GPS + Orientation, XMP, comment, ICC.

    Stored pixels are blue with a red top-left quadrant.
    """
    im = Image.new("RGB", size, BLUE)
    im.paste(RED, (0, 0, size[0] // 2, size[1] // 2))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneCo"  # Make
    exif[0x0110] = "Phone 12"  # Model
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (51.0, 30.0, 12.5), 3: "W", 4: (0.0, 7.0, 39.0)})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _encode(im, "JPEG", exif=exif, icc_profile=icc, comment=b"secret",
                   xmp=b"<x:xmpmeta>GPSLatitude</x:xmpmeta>")
    with Image.open(BytesIO(data)) as check:  # the fixture really carries GPS
        assert check.getexif().get_ifd(GPS_IFD)
    return data


def _jpeg_markers(data: bytes) -> list[int]:
    """List the JPEG segment markers up to start-of-scan."""
    assert data[:2] == b"\xff\xd8"
    markers, pos = [], 2
    while True:
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:  # SOS: entropy-coded data follows
            return markers
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]


def _assert_clean_jpeg(data: bytes) -> Image.Image:
    """Assert ``data`` is a JPEG with no metadata at all; return it opened."""
    # SOI-less list: only JFIF APP0, quant/huffman tables, frame header, restart interval.
    assert set(_jpeg_markers(data)) <= {0xE0, 0xDB, 0xC4, 0xC0, 0xDD, 0xDA}
    im = Image.open(BytesIO(data))
    assert im.format == "JPEG" and im.mode == "RGB"
    assert not im.getexif() and not im.getexif().get_ifd(GPS_IFD)
    assert not {"exif", "icc_profile", "xmp", "comment"} & im.info.keys()
    assert b"Exif" not in data and b"secret" not in data and b"GPS" not in data
    return im


def _png_bomb(width: int, height: int, data_rows: int | None = None) -> bytes:
    """A 1-bit PNG declaring ``width`` x ``height``; all-zero rows compress to almost nothing.

    ``data_rows`` limits the rows actually present (a truncated image) when given.
    """
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = bytes(1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height if data_rows is None else data_rows))
    idat += comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _rejected(data: bytes, **kw: int) -> str:
    """Return the PhotoRejected message for ``data``."""
    with pytest.raises(PhotoRejected) as info:
        process_photo(data, **kw)
    assert isinstance(info.value, ValueError)
    return info.value.message


# --- processing -------------------------------------------------------------


def test_phone_jpeg_is_upright_and_stripped_of_all_metadata() -> None:
    photo = process_photo(_phone_jpeg((400, 300), orientation=6))
    assert (photo.width, photo.height) == (300, 400)  # rotated upright
    assert photo.content_type == "image/jpeg"
    assert photo.sha256 == hashlib.sha256(photo.full).hexdigest()
    full = _assert_clean_jpeg(photo.full)
    assert full.size == (300, 400)
    # Orientation 6 = rotate 90 degrees clockwise: stored top-left lands top-right.
    r, g, b = full.getpixel((250, 50))
    assert r > 180 and b < 80
    r, g, b = full.getpixel((50, 50))
    assert b > 180 and r < 80
    thumb = _assert_clean_jpeg(photo.thumb)
    assert thumb.size == (240, 320)


def _phone_heic(size: tuple[int, int] = (400, 300), orientation: int = 6) -> bytes:
    """A HEIC like an iPhone makes, encoded by pillow-heif (libheif, real HEVC bytes): EXIF with GPS
    and Orientation, an ICC profile. Stored pixels are blue with a red top-left quadrant."""
    im = Image.new("RGB", size, BLUE)
    im.paste(RED, (0, 0, size[0] // 2, size[1] // 2))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (51.0, 30.0, 12.5)})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _encode(im, "HEIF", quality=90, exif=exif.tobytes(), icc_profile=icc)
    assert data[4:12] == b"ftypheic"  # an HEIC file, as an iPhone names its brand
    return data


def test_iphone_heic_is_accepted_upright_and_stripped_like_a_jpeg() -> None:
    photo = process_photo(_phone_heic((400, 300), orientation=6))
    assert (photo.width, photo.height) == (300, 400)  # rotated upright, once
    full = _assert_clean_jpeg(photo.full)
    r, g, b = full.getpixel((250, 50))  # stored top-left lands top-right
    assert r > 180 and b < 80
    r, g, b = full.getpixel((50, 50))
    assert b > 180 and r < 80
    assert _assert_clean_jpeg(photo.thumb).size == (240, 320)


def test_a_cut_heic_is_a_damaged_photo_not_another_format() -> None:
    data = _phone_heic()
    assert _rejected(data[: len(data) // 2]) == photos.MSG_DAMAGED
    assert _rejected(b"\0\0\0\x18ftypisom" + data[12:]) == photos.MSG_NOT_PHOTO  # an MP4's brand


@pytest.mark.parametrize(
    "orientation", [1, 2, 3, 4, 5, 6, 7, 8, 0, 9, 300]
)
def test_orientations_match_pillow_exif_transpose(orientation: int) -> None:
    data = _phone_jpeg((400, 300), orientation=orientation)
    photo = process_photo(data)
    expected = ImageOps.exif_transpose(Image.open(BytesIO(data)))
    assert (photo.width, photo.height) == expected.size
    out = Image.open(BytesIO(photo.full))
    for x, y in ((0.1, 0.1), (0.9, 0.1), (0.1, 0.9), (0.9, 0.9)):  # quadrant colours
        xy = (int(x * expected.width), int(y * expected.height))
        assert (out.getpixel(xy)[0] > 128) == (expected.getpixel(xy)[0] > 128)


def test_large_photo_is_scaled_to_2048_and_thumb_to_320() -> None:
    photo = process_photo(_encode(Image.new("RGB", (4000, 3000), RED), "JPEG"))
    assert (photo.width, photo.height) == (2048, 1536)
    assert Image.open(BytesIO(photo.full)).size == (2048, 1536)
    assert max(Image.open(BytesIO(photo.thumb)).size) == 320


def test_small_photo_is_not_upscaled() -> None:
    photo = process_photo(_encode(Image.new("RGB", (200, 100), RED), "JPEG"))
    assert (photo.width, photo.height) == (200, 100)
    assert Image.open(BytesIO(photo.thumb)).size == (200, 100)


def test_processing_is_deterministic() -> None:
    data = _phone_jpeg()
    assert process_photo(data) == process_photo(data)


def test_png_alpha_is_flattened_on_white() -> None:
    im = Image.new("RGBA", (100, 50), (0, 0, 0, 0))
    im.paste((*RED, 255), (0, 0, 50, 50))
    photo = process_photo(_encode(im, "PNG"))
    out = _assert_clean_jpeg(photo.full)
    assert min(out.getpixel((90, 25))) > 245  # transparent -> white, not black
    r, g, b = out.getpixel((10, 25))
    assert r > 180 and g < 60


def test_palette_png_with_transparency() -> None:
    im = Image.new("P", (40, 40), 0)
    im.putpalette([0, 0, 0, *RED])
    im.paste(1, (0, 0, 20, 40))
    photo = process_photo(_encode(im, "PNG", transparency=0))
    out = _assert_clean_jpeg(photo.full)
    assert min(out.getpixel((35, 20))) > 245
    assert out.getpixel((5, 20))[0] > 180


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_webp(mode: str) -> None:
    im = Image.new(mode, (120, 80), (*RED, 255)[: len(mode)])
    photo = process_photo(_encode(im, "WEBP", quality=90))
    assert (photo.width, photo.height) == (120, 80)
    assert _assert_clean_jpeg(photo.full).getpixel((60, 40))[0] > 180


def test_16_bit_png_is_scaled_not_clipped() -> None:
    im = Image.new("I;16", (64, 32), 0)
    im.paste(Image.new("I;16", (32, 32), 0x8000), (32, 0))
    data = _encode(im, "PNG")
    assert Image.open(BytesIO(data)).mode.startswith("I")
    out = _assert_clean_jpeg(process_photo(data).full)
    assert out.getpixel((5, 16))[0] < 10
    assert 118 < out.getpixel((60, 16))[0] < 138


def test_cmyk_jpeg_and_greyscale_and_mpo_accepted() -> None:
    cmyk = process_photo(_encode(Image.new("CMYK", (50, 40), (0, 255, 255, 0)), "JPEG"))
    r, g, b = _assert_clean_jpeg(cmyk.full).getpixel((25, 20))
    assert r > 200 and g < 60 and b < 60
    grey = process_photo(_encode(Image.new("L", (50, 40), 128), "JPEG"))
    assert _assert_clean_jpeg(grey.full).mode == "RGB"
    frame = Image.new("RGB", (64, 48), RED)
    mpo = _encode(frame, "MPO", save_all=True, append_images=[frame])
    assert Image.open(BytesIO(mpo)).format == "MPO"
    assert (process_photo(mpo).width, process_photo(mpo).height) == (64, 48)


@pytest.mark.parametrize(
    "data",
    [
        b"Hello, this is a text file.\n" * 10,
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n",
        b"GIF89a" + bytes(100),
        _encode(Image.new("RGB", (10, 10)), "GIF"),
        _encode(Image.new("RGB", (10, 10)), "BMP"),
        _encode(Image.new("RGB", (10, 10)), "TIFF"),
    ],
    ids=["text", "pdf", "fake-gif", "gif", "bmp", "tiff"],
)
def test_non_photos_rejected(data: bytes) -> None:
    assert _rejected(data) == "That file is not a photo (JPEG, PNG, WebP or HEIC)."


def test_empty_rejected() -> None:
    assert _rejected(b"") == "That file is empty."


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_truncated_image_rejected(fmt: str) -> None:
    im = Image.effect_noise((300, 200), 60).convert("RGB")
    data = _encode(im, fmt)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    message = _rejected(data[: len(data) // 2])
    assert message in (photos.MSG_DAMAGED, photos.MSG_NOT_PHOTO)


def test_truncated_jpeg_message() -> None:
    data = _encode(Image.effect_noise((300, 200), 60).convert("RGB"), "JPEG")
    assert _rejected(data[: len(data) // 2]) == photos.MSG_DAMAGED


def test_oversize_rejected_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encode(Image.new("RGB", (10, 10)), "JPEG")

    def explode(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded an oversize upload")

    monkeypatch.setattr(photos.Image, "open", explode)
    assert _rejected(data, max_bytes=len(data) - 1) .startswith("Photo is larger than")
    big = bytes(15 * 1024 * 1024 + 1)
    assert _rejected(big) == "Photo is larger than 15 MB."


def test_pixel_limit_checked_before_pixel_data_is_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _png_bomb(10_000, 6_000, data_rows=10)  # declares 60 MP, tiny file

    def explode(self: object) -> None:
        raise AssertionError("pixel data loaded before the pixel-count check")

    with monkeypatch.context() as m:
        m.setattr(ImageFile.ImageFile, "load", explode)
        assert _rejected(data) == "Photo has too many pixels (max 50 megapixels)."
    small = _encode(Image.new("RGB", (100, 100)), "PNG")
    assert _rejected(small, max_pixels=9_999) == "Photo has too many pixels (max 0.01 megapixels)."
    assert process_photo(small, max_pixels=10_000).width == 100


def test_pillow_made_bomb_under_global_limit_rejected() -> None:
    data = _encode(Image.new("1", (8000, 8000), 0), "PNG", optimize=True)  # 64 MP
    assert len(data) < 100_000
    assert _rejected(data) == "Photo has too many pixels (max 50 megapixels)."


def test_decompression_bomb_rejected() -> None:
    data = _png_bomb(20_000, 20_000)  # 400 MP: Pillow's own DecompressionBombError
    assert len(data) < 200_000
    assert _rejected(data) == "Photo has too many pixels (max 50 megapixels)."


def test_decompression_bomb_warning_as_error_rejected() -> None:
    # 100 MP is over Pillow's warning threshold (~89 MP) but under its error one.
    data = _png_bomb(10_000, 10_000, data_rows=1)
    with pytest.warns(Image.DecompressionBombWarning):
        assert _rejected(data) == "Photo has too many pixels (max 50 megapixels)."
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert "too many pixels" in _rejected(data, max_pixels=200_000_000)


@pytest.mark.filterwarnings("ignore")  # Pillow warns about some malformed EXIF
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_only_ever_raise_photo_rejected(data: bytes) -> None:
    try:
        result = process_photo(data)
    except PhotoRejected as exc:
        assert exc.message
    else:
        assert isinstance(result, ProcessedPhoto)


_SEEDS = [
    _phone_jpeg((64, 48)),
    _encode(Image.new("RGBA", (40, 30), (1, 2, 3, 100)), "PNG"),
    _encode(Image.new("I;16", (40, 30), 300), "PNG"),
    _encode(Image.new("RGB", (40, 30), RED), "WEBP"),
    _encode(Image.new("RGB", (40, 30), RED), "HEIF"),
]


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
    st.integers(0, 10**6),
)
def test_corrupted_real_images_only_ever_raise_photo_rejected(
    seed: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(seed)
    for pos, value in flips:
        data[pos % len(data)] = value
    data = data[: max(1, len(data) - cut % 64)]
    try:
        process_photo(bytes(data), max_pixels=4_000_000)
    except PhotoRejected as exc:
        assert exc.message


# --- storage ----------------------------------------------------------------


@pytest.fixture(scope="module")
def photo() -> ProcessedPhoto:
    return process_photo(_phone_jpeg())


def test_store_round_trip(tmp_path: Path, photo: ProcessedPhoto) -> None:
    store = PhotoStore(tmp_path / "photos")
    key = store.save(photo)
    sha = photo.sha256
    assert key == f"{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    assert store.path_for(key) == tmp_path / "photos" / sha[:2] / sha[2:4] / f"{sha}.jpg"
    assert store.path_for(key).read_bytes() == photo.full
    assert store.path_for(key, thumb=True).name == f"{sha}_t.jpg"
    assert store.path_for(key, thumb=True).read_bytes() == photo.thumb
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp")]


def test_store_save_is_idempotent(tmp_path: Path, photo: ProcessedPhoto) -> None:
    store = PhotoStore(tmp_path)
    key = store.save(photo)
    before = store.path_for(key).stat().st_mtime_ns
    assert store.save(photo) == key
    assert store.path_for(key).stat().st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.rglob("*.jpg")) == sorted(
        [f"{photo.sha256}.jpg", f"{photo.sha256}_t.jpg"]
    )


def test_store_delete(tmp_path: Path, photo: ProcessedPhoto) -> None:
    store = PhotoStore(tmp_path)
    key = store.save(photo)
    store.delete(key)
    assert not store.path_for(key).exists() and not store.path_for(key, thumb=True).exists()
    store.delete(key)  # already gone: no error


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "/tmp/ab/cd/" + "abcd" + "0" * 60 + ".jpg",
        "ab/cd/../../../" + "abcd" + "0" * 60 + ".jpg",
        "ab/cd/" + "abcd" + "0" * 60 + ".jpg\n",
        "AB/CD/" + "ABCD" + "0" * 60 + ".jpg",
        "ab/cd/" + "ffff" + "0" * 60 + ".jpg",  # prefix does not match the hash
        "ab\\cd\\" + "abcd" + "0" * 60 + ".jpg",
        "ab/cd/" + "abcd" + "0" * 60 + "_t.jpg",
        "ab/cd/" + "abcd" + "0" * 60,
        "",
    ],
)
def test_store_rejects_malformed_keys(tmp_path: Path, key: str) -> None:
    store = PhotoStore(tmp_path)
    with pytest.raises(ValueError):
        store.path_for(key)
    with pytest.raises(ValueError):
        store.path_for(key, thumb=True)
    with pytest.raises(ValueError):
        store.delete(key)


def test_store_refuses_photo_with_forged_hash(tmp_path: Path, photo: ProcessedPhoto) -> None:
    forged = ProcessedPhoto(photo.full, photo.thumb, photo.width, photo.height, "../" * 30)
    with pytest.raises(ValueError):
        PhotoStore(tmp_path).save(forged)
    assert not any(tmp_path.iterdir())


def test_what_is_decoded_is_bounded_whatever_the_file_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 49-megapixel PNG was decoded in full (about 1 s and 300 MB): a PNG or WebP over the decode
    budget is refused before its pixels are loaded; a 48-megapixel phone JPEG is decoded at a
    fraction of its size and accepted."""
    png = _png_bomb(7_000, 7_000, data_rows=10)  # 49 MP declared, tiny file

    def explode(self: object) -> None:
        raise AssertionError("a PNG over the decode budget was decoded")

    with monkeypatch.context() as m:
        m.setattr(ImageFile.ImageFile, "load", explode)
        assert _rejected(png) == ("Photo is too large to process (max 16 megapixels as PNG, WebP or HEIC): take it "
                                  "with the camera as a JPEG.")
    jpeg = _encode(Image.new("RGB", (8_000, 6_000), (90, 140, 200)), "JPEG", quality=70)  # 48 MP
    decoded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile):  # type: ignore[no-untyped-def]
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    done = process_photo(jpeg)
    assert max(done.width, done.height) == photos.FULL_EDGE
    assert decoded and all(w * h <= photos.MAX_DECODED_PIXELS for w, h in decoded), decoded
