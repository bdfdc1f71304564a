"""python -m services.projects.catalogue.announce: send credits the catalogue's counts of every year and host
institution (catalogue.counted), for a catalogue imported before credits kept them (年度统计 lists the hosts that
held nothing from these counts). Safe to run again: a later count replaces an earlier one at credits."""

from __future__ import annotations

from .. import models  # noqa: F401 - the whole schema
from ..db import db
from .services import announce_all


def main() -> None:
    session = db.new_session()
    try:
        pairs = announce_all(session)
        session.commit()
    finally:
        session.close()
    print(f"已通知学分管理：{pairs} 个（年度，申办机构）的项目目录统计（由 relay 送达）。")


if __name__ == "__main__":
    main()
