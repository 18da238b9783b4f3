"""Which DICOM transfer syntaxes this environment decodes (internal): a rule and its probe."""

from __future__ import annotations

from m1vision.doctor._common import REINSTALL_FIX, _check


def codecs_check(table: list[dict]) -> dict:
    """The ``dicom_codecs`` check from :func:`m1vision.io._pixels.transfer_syntax_support`'s rows.

    ``ok`` when every syntax m1vision promises to read decodes here; ``fail`` naming those
    that do not, with what to install.

    Examples
    --------
    >>> from m1vision.doctor._codecs import codecs_check
    >>> rows = [{"name": "RLE Lossless", "uid": "1.2.840.10008.1.2.5", "family": "RLE",
    ...          "label": "lossless", "decodes": True, "plugins": ["pydicom"], "fix": None}]
    >>> check = codecs_check(rows)
    >>> check["status"], check["value"]
    ('ok', '1/1 syntaxes: RLE (lossless)')
    """
    missing = [r for r in table if not r["decodes"]]
    families: dict[str, list[str]] = {}
    for r in table:
        if r["decodes"]:
            families.setdefault(r["family"], []).append(r.get("label", r["uid"]))
    value = f"{len(table) - len(missing)}/{len(table)} syntaxes: " + "; ".join(
        f"{family} ({', '.join(labels)})" for family, labels in families.items()
    )
    decoded = "; ".join(r["name"] for r in table if r["decodes"])
    if missing:
        names = "; ".join(f"{r['name']} ({r['uid']})" for r in missing)
        fixes = sorted({r["fix"] for r in missing if r["fix"]})
        return _check(
            "dicom_codecs",
            "fail",
            value,
            f"{len(missing)} of the {len(table)} DICOM transfer syntaxes m1vision reads do not "
            f"decode here: {names}. Decoded: {decoded or 'none'}.",
            f"`{'`, `'.join(fixes)}`, or {REINSTALL_FIX}" if fixes else REINSTALL_FIX,
        )
    return _check(
        "dicom_codecs",
        "ok",
        value,
        f"every DICOM transfer syntax m1vision reads decodes here: {decoded}.",
    )


def _codecs_probe() -> tuple[list[dict], dict]:
    from m1vision.io._pixels import transfer_syntax_support

    table = transfer_syntax_support()
    return [codecs_check(table)], {"transfer_syntaxes": table}
