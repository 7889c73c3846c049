"""Read back a wandb `.wandb` run file with wandb's own protobuf definitions.

wandb 0.31 has no public reader for offline runs (`wandb.Api()` reads only synced runs),
so the tests decode the file directly: a 7-byte header (":W&B", magic 0xBEE1, version 0)
then the LevelDB log format (32 KiB blocks of records with a 7-byte header: crc32,
little-endian length, type FULL/FIRST/MIDDLE/LAST), each record a `wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import json
import struct

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: str) -> list:
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b":W&B", "not a wandb run file"
    records, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # zero padding at the end of a block
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        payload = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            break
        if kind in (FULL, FIRST):
            pending = payload
        else:
            pending += payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def history_rows(path: str) -> list[dict]:
    """Every `wandb.log` call of the run, as {key: value} with its `_step`."""
    rows = []
    for record in read_records(path):
        if record.WhichOneof("record_type") == "history":
            row = {}
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                row[key] = json.loads(item.value_json)
            rows.append(row)
    return rows


def artifact_names(path: str) -> list[str]:
    return [r.artifact.name for r in read_records(path) if r.WhichOneof("record_type") == "artifact"]
