"""What a caller is shown: its own tag taken off every id, in whatever message carries one.

The walk over an event skips the message types that cannot hold an id (progress, the most
frequent event, above all); these tests pin that nothing holding one is skipped.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor

from gateway.run_ids import ID_FIELDS, ID_LISTS, RunIds, may_hold_ids
from mediagen.scaffold.callers import Caller
from mediagen.v1 import common_pb2, gateway_pb2, storage_pb2


def _holds_an_id_somewhere(descriptor: Descriptor, path: tuple[str, ...] = ()) -> bool:
    if descriptor.full_name in path:
        return False
    for field in descriptor.fields:
        if field.type == field.TYPE_STRING and field.name in ID_FIELDS | ID_LISTS:
            return True
        nested = field.message_type
        if nested is not None and _holds_an_id_somewhere(nested, (*path, descriptor.full_name)):
            return True
    return False


def test_every_message_type_that_can_hold_an_id_is_walked() -> None:
    for module in (gateway_pb2, storage_pb2, common_pb2):
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            assert may_hold_ids(descriptor) == _holds_an_id_somewhere(descriptor), descriptor.full_name


def test_progress_is_not_walked_and_stored_media_is_shown_untagged() -> None:
    assert not may_hold_ids(gateway_pb2.OutputProgress.DESCRIPTOR)
    ids = RunIds(Caller(name="alice"))
    stored = ids.stored("my-run")
    event = gateway_pb2.GatewayEvent(
        media_stored=gateway_pb2.MediaStored(
            record=storage_pb2.MediaRecord(run_id=stored, media_id=f"{stored}.0.0")
        )
    )
    shown = ids.show(event)
    assert shown.media_stored.record.run_id == "my-run"
    assert shown.media_stored.record.media_id == "my-run.0.0"
    progress = gateway_pb2.GatewayEvent(
        output_progress=gateway_pb2.OutputProgress(progress=common_pb2.Progress(queue_position=3))
    )
    assert ids.show(progress) == progress
