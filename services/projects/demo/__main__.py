"""python -m services.projects.demo [--no-migrate]: migrate the projects database, load the demo data, print logins."""

from __future__ import annotations

import argparse

from .. import models  # noqa: F401 - the whole schema
from ..db import db
from . import NO_ADMIN, load_demo


def main() -> None:
    parser = argparse.ArgumentParser(description="加载演示数据（可重复运行，不会重复创建）")
    parser.add_argument("--no-migrate", action="store_true", help="不运行数据库迁移（表已存在时）")
    args = parser.parse_args()
    if not args.no_migrate:
        db.upgrade()
    session = db.new_session()
    try:
        out = load_demo(session)
    finally:
        session.close()
    r = out["reviewer"]
    print(f"继续医学教育委员会（审核员）：账号 {r['account']}  密码 {r['password']}  短信手机 {r['mobile']}")
    for i in out["institutions"]:
        who = "首次登录需添加机构负责人" if i["admins"] == NO_ADMIN else f"机构负责人 {i['admins']}"
        print(f"申办机构 {i['name']}：账号 {i['account']}  密码 {i['password']}  （{who}）")
    c = out["catalogue"]
    print(f"项目目录 {c['year']} 年：新增 {c['created']}，更新 {c['updated']}，未变化 {c['unchanged']}")


if __name__ == "__main__":
    main()
