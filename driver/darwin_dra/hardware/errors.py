"""Errors of hardware description files: they always name the file, the field and the reason."""

from __future__ import annotations


class HardwareFileError(ValueError):
    """A profile or inventory file that cannot be used."""

    def __init__(self, path: str, field: str, reason: str) -> None:
        self.path = path
        self.field = field
        self.reason = reason
        where = f"{path}: {field}" if field else path
        super().__init__(f"{where}: {reason}")
