"""Writes sample-catalogue.xlsx, the workbook the demo loader imports: python -m services.projects.demo.make_sample

Numbers and dates carry SAMPLE_YEAR; the loader moves them to the current year when it imports.
"""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook

SAMPLE_YEAR = 2026
PATH = Path(__file__).with_name("sample-catalogue.xlsx")
HEADERS = ["项目编号", "项目名称", "项目负责人", "主办单位", "学分类别", "学分", "学时", "举办期数", "举办起止时间",
           "举办地点", "举办方式"]
XJTU = "西安交通大学第一附属医院"
SXSRMYY = "陕西省人民医院"
Y = SAMPLE_YEAR
ROWS = [
    [f"{Y}-01-01-001", "心血管急危重症诊治新进展", "王建华", XJTU,
     "Ⅰ类", 10, 20, 2, f"{Y}年5月—{Y}年10月", "西安市雁塔路277号", "线下"],
    [f"{Y}-01-01-002", "重症医学规范化诊疗培训班", "李明", XJTU,
     "Ⅰ类", 8, 16, 1, f"{Y}年6月", "西安交通大学第一附属医院学术报告厅", "线上线下"],
    [f"{Y}-02-03-003", "基层医院超声诊断技术提高班", "张丽", XJTU,
     "Ⅰ类", 6, 12, 3, f"{Y}年4月—{Y}年11月", "西安市雁塔路277号", "线下"],
    [f"{Y}-04-02-004", "医院感染预防与控制线上培训", "赵强", XJTU,
     "Ⅰ类", 4, 8, 1, f"{Y}年9月", "线上（腾讯会议）", "线上"],
    [f"{Y}-01-05-005", "呼吸系统疾病诊疗进展学习班", "刘芳", SXSRMYY,
     "Ⅰ类", 10, 20, 1, f"{Y}年7月", "陕西省人民医院会议中心", "线下"],
    [f"{Y}-03-01-006", "急诊急救技能培训班", "陈伟", SXSRMYY,
     "Ⅰ类", 6, 12, 2, f"{Y}年5月—{Y}年9月", "西安市友谊西路256号", "线下"],
    [f"{Y}-06-02-007", "护理管理与质量改进研修班", "杨静", SXSRMYY,
     "Ⅰ类", 5, 10, 1, f"{Y}年10月", "陕西省人民医院会议中心", "线上线下"],
    [f"{Y}-05-04-008", "临床药学与合理用药培训", "周敏", SXSRMYY,
     "Ⅰ类", 4, 8, 1, f"{Y}年11月", "线上直播", "线上"],
]


def build(path: Path = PATH) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "省级项目目录"
    ws.append(HEADERS)
    for row in ROWS:
        ws.append(row)
    for col, width in zip("ABCDEFGHIJK", (18, 30, 10, 26, 8, 6, 6, 8, 22, 30, 10), strict=True):
        ws.column_dimensions[col].width = width
    wb.save(path)
    return path


if __name__ == "__main__":
    print(build())
