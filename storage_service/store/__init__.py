"""MinIO behind an asyncio face: every blocking call runs in a bounded pool of
threads, every failure arrives as the gRPC status it means for the caller."""

from storage_service.store.errors import ObjectExists, ObjectMissing
from storage_service.store.multipart import MultipartUpload
from storage_service.store.objects import ObjectStore

__all__ = ["MultipartUpload", "ObjectExists", "ObjectMissing", "ObjectStore"]
