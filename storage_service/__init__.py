"""The storage service: runs and their media, persisted in MinIO.

It knows nothing of how media is made. Bytes stream in through PutMedia
(header, chunks, trailer) and out through GetMedia, never whole in memory.

Bucket layout, readable by any S3 tool::

    runs/<run_id>/run.json                    the run (id, created time, context)
    runs/<run_id>/records/o003-i000.json      the MediaRecord of output 3, item 0
    runs/<run_id>/media/o003-i000.png         the media; extension = detected format
    runs/<run_id>/idempotency/<sha256>.json   {"media_id": ...} for a used idempotency key

The media object also carries its facts as ``x-amz-meta-*`` (run, indexes,
type, format, size, dimensions, config, backend, file name, caller metadata;
the sha256 only for media written in one part). The record is the complete
and authoritative description: a media exists once its record does, and is
found from its id (``<run_id>.<output>.<item>``) without any listing.

Guarantees: an object appears only after its trailer's size and sha256 were
checked; a failed, cancelled, oversized (RESOURCE_EXHAUSTED naming
``max_media_bytes``) or mismatched (DATA_LOSS) stream leaves no object and no
unfinished multipart upload; a slot or idempotency key is written once
(conditional writes), a repeat with the same bytes returns the first record
and one with other bytes gets ALREADY_EXISTS. Idempotency keys are scoped to
their run.
"""
