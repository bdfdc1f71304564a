"""CatalogueCount: how many projects (and planned 期) of a year's catalogue one host institution has, as projects
last counted them (catalogue.counted); 年度统计 lists a host that held nothing from it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import UTCDateTime

from ..db import Base

__all__ = ["CatalogueCount"]


class CatalogueCount(Base):
    __tablename__ = "catalogue_counts"
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_name: Mapped[str] = mapped_column(String(200))
    projects: Mapped[int] = mapped_column(Integer)
    planned: Mapped[int] = mapped_column(Integer)  # the projects' 举办期数 together
    counted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # an older count arriving late is ignored

    __table_args__ = (
        CheckConstraint("projects >= 0", name="projects_not_negative"),
        CheckConstraint("planned >= projects", name="planned_at_least_projects"),
    )
