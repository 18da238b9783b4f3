"""Reading a batch manifest file as written, for tests: its records decoded here by hand from
the version 3 columns (no stat dropped, unlike ``Manifest.load``)."""

from __future__ import annotations

import json
from pathlib import Path


def manifest_records(path) -> dict[str, dict]:
    """``{input key: record}`` of the manifest at ``path``, records as version 2 kept them."""
    data = json.loads(Path(path).read_text())
    assert data["schema"] == "m1vision.batch_manifest" and data["version"] == 3, data["version"]
    items = data["items"]

    def record(name: str, i: int) -> dict | None:
        column = items[name]
        if column["sha256"][i] is None and column["size"][i] is None:
            return None
        rec = {"sha256": column["sha256"][i], "size": column["size"][i]}
        files = items["input_files"].get(str(i)) if name == "input" else None
        if files is not None:
            rec["files"] = files
        else:
            stat = column["stat"][4 * i : 4 * i + 4]
            rec["stat"] = None if stat == [None] * 4 else stat
        return rec

    return {
        key: {
            "kind": items["kind"][i],
            "input": record("input", i),
            "output": items["output"][i],
            "output_file": record("output_file", i),
            "status": items["status"][i],
            "error": items["error"][i],
            "result": items["result"].get(str(i), {}),
        }
        for i, key in enumerate(items["key"])
    }
