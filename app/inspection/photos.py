"""Framework-free processing and storage of unit inspection photos.

Uploaded bytes (JPEG, PNG, WebP, or an iPhone's HEIC/HEIF through pillow-heif) are validated (size, format, pixel count) before any pixel data is
decoded, turned upright using the EXIF orientation, converted to sRGB and then
re-encoded as a fresh JPEG that carries no metadata at all (no EXIF/GPS, XMP,
comments or ICC profile). Files are stored on disk, content-addressed by SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from PIL import ExifTags, Image, ImageCms
from pillow_heif import register_heif_opener

register_heif_opener()  # Pillow opens HEIC/HEIF (iPhones' camera format) as "HEIF"

FULL_EDGE = 2048
THUMB_EDGE = 320
FULL_QUALITY = 85
THUMB_QUALITY = 80
CONTENT_TYPE = "image/jpeg"
MAX_DECODED_PIXELS = 16_000_000  # 64 MB as RGBA

_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")  # MPO (multi-picture JPEG) is opened via JPEG.
_ACCEPTED = frozenset((*_FORMATS, "MPO"))
# What Pillow raises for malformed input; deliberately not ``Exception``.
_BAD_INPUT = (
    OSError,  # includes UnidentifiedImageError and "image file is truncated"
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    RuntimeError,  # pillow-heif reports every libheif error so (a corrupt or over-limit HEIC)
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,  # raised only when warnings are errors
)
_TRANSPOSE = {  # EXIF Orientation value -> operation that makes the image upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))

MSG_EMPTY = "That file is empty."
MSG_NOT_PHOTO = "That file is not a photo (JPEG, PNG, WebP or HEIC)."
MSG_DAMAGED = "That photo is damaged or incomplete. Please take it again."


class PhotoRejected(ValueError):
    """An upload that cannot be accepted; ``message`` is safe to show the worker."""

    def __init__(self, message: str) -> None:
        """Store the human-readable ``message``."""
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ProcessedPhoto:
    """A cleaned, re-encoded photo ready for storage."""

    full: bytes
    thumb: bytes
    width: int
    height: int
    sha256: str
    content_type: str = CONTENT_TYPE


def _amount(value: float) -> str:
    """Format a limit compactly: 15.0 -> '15', 2.5 -> '2.5'."""
    return f"{value:.3g}"


def process_photo(
    data: bytes, *, max_bytes: int = 15 * 1024 * 1024, max_pixels: int = 50_000_000,
    max_decoded_pixels: int = MAX_DECODED_PIXELS,
) -> ProcessedPhoto:
    """Validate and re-encode an uploaded photo, raising PhotoRejected for bad input.

    Work is bounded before it starts: `max_pixels` by the header, and `max_decoded_pixels` for
    what is decoded (a big JPEG is decoded at a fraction of its size; a PNG, WebP or HEIC in full), so
    one photo costs at most about 64 MB and a fraction of a second, whatever its file says."""
    if not data:
        raise PhotoRejected(MSG_EMPTY)
    if len(data) > max_bytes:
        raise PhotoRejected(f"Photo is larger than {_amount(max_bytes / 2**20)} MB.")
    too_many = f"Photo has too many pixels (max {_amount(max_pixels / 1e6)} megapixels)."
    try:
        im = Image.open(BytesIO(data), formats=_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoRejected(too_many) from exc
    except _BAD_INPUT as exc:
        # A HEIF file's boxes are read whole on opening: a cut one fails here, and is a damaged photo.
        raise PhotoRejected(MSG_DAMAGED if _looks_heif(data) else MSG_NOT_PHOTO) from exc
    with im:
        if im.format not in _ACCEPTED:
            raise PhotoRejected(MSG_NOT_PHOTO)
        width, height = im.size
        if width * height > max_pixels:  # checked before any pixel data is decoded
            raise PhotoRejected(too_many)
        try:
            if im.format in ("JPEG", "MPO"):
                im.draft("RGB", (FULL_EDGE, FULL_EDGE))  # DCT-scaled decode of big JPEGs
            if im.size[0] * im.size[1] > max_decoded_pixels:
                raise PhotoRejected(f"Photo is too large to process (max {_amount(max_decoded_pixels / 1e6)} "
                                    "megapixels as PNG, WebP or HEIC): take it with the camera as a JPEG.")
            im.load()
            full = _to_rgb(_upright(im))
        except PhotoRejected:
            raise
        except _BAD_INPUT as exc:
            raise PhotoRejected(MSG_DAMAGED) from exc
    full.thumbnail((FULL_EDGE, FULL_EDGE), Image.Resampling.LANCZOS)
    thumb = full.copy()
    thumb.thumbnail((THUMB_EDGE, THUMB_EDGE), Image.Resampling.LANCZOS)
    full_bytes = _encode(full, FULL_QUALITY)
    return ProcessedPhoto(
        full=full_bytes,
        thumb=_encode(thumb, THUMB_QUALITY),
        width=full.width,
        height=full.height,
        sha256=hashlib.sha256(full_bytes).hexdigest(),
    )


_HEIF_BRANDS = frozenset((b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"))


def _looks_heif(data: bytes) -> bool:
    """True when `data` begins as a HEIC/HEIF file does: an ISO box `ftyp` naming a HEIF brand."""
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _upright(im: Image.Image) -> Image.Image:
    """Rotate/flip per the EXIF Orientation tag, like ``ImageOps.exif_transpose``.

    exif_transpose also re-serialises the EXIF block, which crashes on malformed tags
    and is pointless here since all EXIF is dropped; unreadable EXIF means upright.
    """
    try:
        orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    except (*_BAD_INPUT, KeyError, IndexError, TypeError):  # malformed EXIF block
        orientation = 1
    method = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return im.transpose(method) if method is not None else im.copy()


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any decoded mode to 8-bit sRGB, flattening transparency onto white."""
    if im.mode.startswith("I"):  # 16-bit greyscale PNG: scale to 8 bits, don't clip
        im = im.point(lambda v: v / 256).convert("L")
    if im.has_transparency_data:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    icc = im.info.get("icc_profile")
    if icc and im.mode in ("RGB", "CMYK", "L"):
        try:
            src = ImageCms.ImageCmsProfile(BytesIO(icc))
            return ImageCms.profileToProfile(im, src, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, *_BAD_INPUT):
            pass  # unusable or mismatched profile: fall back to a plain conversion
    return im.convert("RGB")


def _encode(im: Image.Image, quality: int) -> bytes:
    """Encode ``im`` as a baseline JPEG carrying no metadata whatsoever."""
    im.info = {}  # Pillow falls back to im.info for e.g. the JPEG comment
    out = BytesIO()
    im.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


_KEY_RE = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.jpg")


class PhotoStore:
    """Content-addressed photo files under ``root``: ``ab/cd/<sha256>.jpg`` (+ ``_t`` thumb).

    Identical photos share one file, so callers must check that no other record
    refers to a key before calling :meth:`delete`.
    """

    def __init__(self, root: Path) -> None:
        """Use ``root`` (created on first save) as the storage folder."""
        self.root = Path(root)

    @staticmethod
    def key_for(sha256: str) -> str:
        """Return the storage key for a SHA-256 hex digest."""
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.jpg"

    def path_for(self, key: str, thumb: bool = False) -> Path:
        """Return the file path for ``key``; raise ValueError unless it is a valid key."""
        match = _KEY_RE.fullmatch(key) if isinstance(key, str) else None
        if not match or not match[3].startswith(match[1] + match[2]):
            raise ValueError(f"invalid photo key: {key!r}")
        name = f"{match[3]}_t.jpg" if thumb else f"{match[3]}.jpg"
        return self.root / match[1] / match[2] / name

    def save(self, photo: ProcessedPhoto) -> str:
        """Store full image and thumbnail atomically; idempotent. Returns the key."""
        if hashlib.sha256(photo.full).hexdigest() != photo.sha256:
            raise ValueError("photo.sha256 does not match its content")
        key = self.key_for(photo.sha256)
        # Thumbnail first: once the full file exists, both are complete.
        for thumb, content in ((True, photo.thumb), (False, photo.full)):
            path = self.path_for(key, thumb=thumb)
            if not path.exists():
                _write_atomic(path, content)
        return key

    def delete(self, key: str) -> None:
        """Remove both files of ``key``; missing files are ignored."""
        for thumb in (False, True):
            self.path_for(key, thumb=thumb).unlink(missing_ok=True)


def _write_atomic(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` via a fsynced temp file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".jpg")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
