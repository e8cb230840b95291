"""Where photo files live: a local folder (the demo's default) or S3-compatible object storage
(AWS S3, MinIO, Ceph), chosen by the environment. Both keep the same content-addressed keys
(`ab/cd/<sha256>.jpg`, the thumbnail beside it as `<sha256>_t.jpg`), so a database moves from
one to the other by copying the files.

Settings: DOCKHAND_PHOTO_STORE=s3 with DOCKHAND_S3_BUCKET, and where it is not AWS
DOCKHAND_S3_ENDPOINT_URL; DOCKHAND_S3_PREFIX (default `photos/`), DOCKHAND_S3_REGION.
Credentials come the way boto3 finds them (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a
profile, an instance role).
"""
from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from app.inspection.photos import PhotoStore, ProcessedPhoto


class StorageUnavailable(Exception):
    """The photo storage could not be reached or refused to work: nothing was stored."""


class PhotoStorage(Protocol):
    """What the use cases and the photo view need of a store."""

    def key_for(self, sha256: str) -> str: ...
    def exists(self, key: str) -> bool: ...
    def save(self, photo: ProcessedPhoto) -> str: ...
    def open(self, key: str, thumb: bool = False) -> BinaryIO: ...
    def delete(self, key: str) -> None: ...
    def keys_older_than(self, seconds: float) -> Iterator[str]: ...


class FolderStore(PhotoStore):
    """The local folder (photos.PhotoStore) behind the same interface as object storage."""

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def open(self, key: str, thumb: bool = False) -> BinaryIO:
        """The file; FileNotFoundError when it is missing."""
        return self.path_for(key, thumb=thumb).open("rb")

    def keys_older_than(self, seconds: float) -> Iterator[str]:
        """The key of every file (full size or thumbnail) last written more than `seconds` ago."""
        cutoff = time.time() - seconds
        yield from _keys_of((("/".join(path.parts[-3:]), path.stat().st_mtime) for path in self.root.glob("??/??/*.jpg")),
                            cutoff)


class ObjectStore:
    """Photos as objects in one bucket under a prefix. Each PUT is whole or nothing (no multipart:
    a photo is at most a few MB after re-encoding), so a failed upload leaves no object."""

    def __init__(self, client: Any, bucket: str, prefix: str = "photos/") -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self._keys = PhotoStore(Path("/"))  # for its key rules only: it never touches the folder

    @classmethod
    def from_settings(cls, *, bucket: str, endpoint_url: str | None = None, region: str | None = None,
                      prefix: str = "photos/") -> "ObjectStore":
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=2, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"})
        client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config)
        return cls(client, bucket, prefix)

    def key_for(self, sha256: str) -> str:
        return self._keys.key_for(sha256)

    def _object(self, key: str, thumb: bool = False) -> str:
        path = self._keys.path_for(key, thumb=thumb)  # validates the key
        return self.prefix + "/".join(path.parts[-3:])

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._call(self.client.head_object, Bucket=self.bucket, Key=self._object(key))
            return True
        except ClientError as exc:
            if _status(exc) == 404:
                return False
            raise StorageUnavailable(str(exc)) from exc

    def save(self, photo: ProcessedPhoto) -> str:
        """Thumbnail first, then the full photo: once the full object exists, both do."""
        if hashlib.sha256(photo.full).hexdigest() != photo.sha256:
            raise ValueError("photo.sha256 does not match its content")
        key = self.key_for(photo.sha256)
        for thumb, content in ((True, photo.thumb), (False, photo.full)):
            self._put(self._object(key, thumb=thumb), content, photo.content_type)
        return key

    def open(self, key: str, thumb: bool = False) -> BinaryIO:
        """The object's bytes; FileNotFoundError when it is missing."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._call(self.client.get_object, Bucket=self.bucket, Key=self._object(key, thumb=thumb))
            return io.BytesIO(answer["Body"].read())
        except BotoCoreError as exc:  # the body cut short or timed out while it was read
            raise StorageUnavailable(str(exc)) from exc
        except ClientError as exc:
            if _status(exc) == 404 or exc.response.get("Error", {}).get("Code") == "NoSuchKey":
                raise FileNotFoundError(key) from exc
            raise StorageUnavailable(str(exc)) from exc

    def delete(self, key: str) -> None:
        from botocore.exceptions import ClientError

        for thumb in (False, True):
            try:
                self._call(self.client.delete_object, Bucket=self.bucket, Key=self._object(key, thumb=thumb))
            except ClientError as exc:  # refused (no bucket, no permission): the object stays, say so
                raise StorageUnavailable(str(exc)) from exc

    def keys_older_than(self, seconds: float) -> Iterator[str]:
        """The key of every object (full size or thumbnail) stored more than `seconds` ago."""
        from botocore.exceptions import BotoCoreError, ClientError

        cutoff = time.time() - seconds
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        try:
            listed = [(item["Key"][len(self.prefix):], item["LastModified"].timestamp())
                      for page in pages for item in page.get("Contents", [])]
            yield from _keys_of(listed, cutoff)
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(str(exc)) from exc

    def _put(self, name: str, content: bytes, content_type: str) -> None:
        """One PUT. Refused by the server (a damaged body, no bucket, no permission) is StorageUnavailable
        too: nothing was stored, and the handheld sends the photo again."""
        from botocore.exceptions import ClientError

        try:
            self._call(self.client.put_object, Bucket=self.bucket, Key=name, Body=content, ContentType=content_type,
                       ContentMD5=_md5(content))
        except ClientError as exc:
            raise StorageUnavailable(str(exc)) from exc

    @staticmethod
    def _call(method: Any, **kwargs: Any) -> Any:
        """One S3 call; the network failing under it is StorageUnavailable (a ClientError, the
        server's own answer, is left to the caller)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(**kwargs)
        except ClientError as exc:
            if _status(exc) >= 500:
                raise StorageUnavailable(str(exc)) from exc
            raise
        except BotoCoreError as exc:  # connection refused or reset, timeouts, incomplete reads
            raise StorageUnavailable(str(exc)) from exc


_KEY = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/\1\2[0-9a-f]{60}\.jpg")  # anything else is not a photo's


def _keys_of(names: Any, cutoff: float) -> Iterator[str]:
    """Each photo key once, from file names (`<sha>.jpg` or its thumbnail `<sha>_t.jpg`) older than cutoff."""
    seen = set()
    for name, modified in names:
        name = name.replace("_t.jpg", ".jpg")
        if modified < cutoff and name not in seen and _KEY.fullmatch(name):
            seen.add(name)
            yield name


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _md5(content: bytes) -> str:
    """Content-MD5: the server refuses a body that arrived damaged or cut short."""
    import base64

    return base64.b64encode(hashlib.md5(content).digest()).decode()  # noqa: S324 - an integrity check, not security


def store_from_config(config: Any) -> PhotoStorage:
    """The store the settings name: the folder PHOTO_DIR, or the bucket."""
    if config.get("PHOTO_STORE", "local") == "s3":
        if not config.get("S3_BUCKET"):
            raise RuntimeError("DOCKHAND_PHOTO_STORE=s3 needs DOCKHAND_S3_BUCKET.")
        return ObjectStore.from_settings(bucket=config["S3_BUCKET"], endpoint_url=config.get("S3_ENDPOINT_URL"),
                                         region=config.get("S3_REGION"), prefix=config.get("S3_PREFIX", "photos/"))
    return FolderStore(Path(config["PHOTO_DIR"]))
